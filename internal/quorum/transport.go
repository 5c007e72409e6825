// The transport: how raft messages reach peers, and their wire format.
//
// Messages go one way, in Kafka's framing so Vltava's controller listener can route them
// like any request: a frame is int32 size, then request header v1 (api_key int16 = 1000
// "VltavaRaft", api_version int16 = 0, correlation_id int32, client_id int16-prefixed
// "vltava-raft-<node id>"), then the body. No response frame is ever sent. The body is a
// batch of raft messages:
//
//	0   2   cluster id length c (int16, at most 255)
//	2   c   cluster id (cluster.id): a member refuses frames of another cluster
//	then    count n (u32), 1 <= n <= maxBatchMessages
//	then n times: length u32 (1 <= length <= the bytes left), a raftpb.Message in
//	protobuf encoding
//
// A body that does not decode, comes from another cluster, or holds a message no honest
// peer sends (wrong receiver, a local-only type, entries that do not follow their index,
// a snapshot without metadata), is a bad frame: the receiver closes the connection. Peers
// of the same cluster are trusted as Kafka trusts its PLAINTEXT controller listener; the
// checks catch garbage and misrouted frames, not malice.
//
// The one answer: before closing the connection on a frame of another cluster, the
// receiver writes a rejection, a response frame (int32 size, correlation_id int32,
// error_code int16 = INCONSISTENT_CLUSTER_ID (104), cluster id int16-prefixed: the
// receiver's), as Kafka's voters answer a node of another cluster. The sender reads it
// and counts it; once a majority of the configured voters have rejected it, its data dir
// belongs to another cluster and it stops (see core.rejected). A single peer's rejection
// is not enough: that peer may be the stray one.
package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	// APIKey is the private request key raft frames carry, VltavaRaft.
	APIKey int16 = 1000
	// APIVersion is the only version of APIKey.
	APIVersion int16 = 0
	// ClientIDPrefix starts a raft frame's client id; the sender's node id follows.
	ClientIDPrefix = "vltava-raft-"
	// maxBatchMessages bounds the messages of one frame.
	maxBatchMessages = 1 << 16
)

// Transport carries raft messages to peers. Send must not block: a message that cannot
// be queued is dropped (raft resends) and reported through the Reporter. A MsgSnap's
// outcome must always be reported (ReportSnapshot), or raft never sends that peer another.
type Transport interface {
	// Start begins delivery; r receives the reports.
	Start(r Reporter) error
	Send(msgs []*raftpb.Message)
	// SetPeer sets a peer's address (new or changed); RemovePeer forgets the peer.
	SetPeer(id uint64, addr string)
	RemovePeer(id uint64)
	// Stop stops delivery and waits for the transport's goroutines.
	Stop()
}

// Reporter receives a transport's reports; its methods may be called from any goroutine
// and do not block.
type Reporter interface {
	// ReportUnreachable says a message to id was dropped or could not be sent.
	ReportUnreachable(id uint64)
	// ReportSnapshot says whether a MsgSnap to id was written out (ok) or dropped.
	ReportSnapshot(id uint64, ok bool)
	// ReportRejected says peer id, of cluster clusterID, rejected this member's frames
	// as of another cluster (INCONSISTENT_CLUSTER_ID).
	ReportRejected(id uint64, clusterID string)
}

var errBadBatch = errors.New("bad raft message batch")

// maxClusterIDLen bounds the cluster id in a frame (Kafka's are 22 characters).
const maxClusterIDLen = 255

// inconsistentClusterID is Kafka's INCONSISTENT_CLUSTER_ID error code.
const inconsistentClusterID int16 = 104

// ClusterMismatchError is Deliver's error for a frame of another cluster: a bad frame
// (the connection is closed) that is answered first with Rejection.
type ClusterMismatchError struct {
	Sender, Receiver string // the cluster ids of the frame and of this member
}

func (e *ClusterMismatchError) Error() string {
	return fmt.Sprintf("%v: frame of cluster %q, this is cluster %q", errBadBatch, e.Sender, e.Receiver)
}

func (e *ClusterMismatchError) Unwrap() error { return errBadBatch }

// Rejection returns the response frame (with its size) that answers the frame whose
// Deliver failed with err, when err is a *ClusterMismatchError; nil otherwise, when the
// connection is closed without an answer.
func Rejection(correlationID int32, err error) []byte {
	var cm *ClusterMismatchError
	if !errors.As(err, &cm) || len(cm.Receiver) > maxClusterIDLen {
		return nil
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(4+2+2+len(cm.Receiver)))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(inconsistentClusterID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(cm.Receiver)))
	return append(b, cm.Receiver...)
}

// maxRejectionBytes bounds a rejection frame (without its size).
const maxRejectionBytes = 4 + 2 + 2 + maxClusterIDLen

// parseRejection decodes a rejection frame (without its size) and returns the
// rejecting member's cluster id.
func parseRejection(frame []byte) (string, error) {
	if len(frame) < 8 || int16(binary.BigEndian.Uint16(frame[4:])) != inconsistentClusterID {
		return "", fmt.Errorf("unexpected response of %d bytes to a raft frame", len(frame))
	}
	c := int(binary.BigEndian.Uint16(frame[6:]))
	if c > maxClusterIDLen || 8+c != len(frame) {
		return "", fmt.Errorf("rejection with a cluster id of %d bytes in %d", c, len(frame))
	}
	return string(frame[8:]), nil
}

// appendBatch appends a frame body holding msgs.
func appendBatch(dst []byte, clusterID string, msgs []*raftpb.Message) ([]byte, error) {
	if len(clusterID) > maxClusterIDLen {
		return nil, fmt.Errorf("cluster id of %d bytes", len(clusterID))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clusterID)))
	dst = append(dst, clusterID...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msgs)))
	for _, m := range msgs {
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		if dst, err = (proto.MarshalOptions{}).MarshalAppend(dst, m); err != nil {
			return nil, fmt.Errorf("encode raft message: %w", err)
		}
		n := len(dst) - at - 4
		if n > math.MaxInt32 {
			return nil, errors.New("raft message too large")
		}
		binary.BigEndian.PutUint32(dst[at:], uint32(n))
	}
	return dst, nil
}

// appendFrame appends a whole frame (size, request header, batch) from node from.
func appendFrame(dst []byte, correlationID int32, from uint64, clusterID string, msgs []*raftpb.Message) ([]byte, error) {
	start := len(dst)
	clientID := ClientIDPrefix + strconv.FormatUint(from, 10)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(APIKey))
	dst = binary.BigEndian.AppendUint16(dst, uint16(APIVersion))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	dst, err := appendBatch(dst, clusterID, msgs)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

// decodeBatch decodes a frame body and checks it comes from clusterID and each message
// is one a peer would send to self.
func decodeBatch(body []byte, clusterID string, self uint64) ([]*raftpb.Message, error) {
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errBadBatch, len(body))
	}
	c := int(binary.BigEndian.Uint16(body))
	if c > maxClusterIDLen || 2+c > len(body) {
		return nil, fmt.Errorf("%w: cluster id of %d bytes", errBadBatch, c)
	}
	if from := string(body[2 : 2+c]); from != clusterID {
		return nil, &ClusterMismatchError{Sender: from, Receiver: clusterID}
	}
	body = body[2+c:]
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", errBadBatch, len(body))
	}
	n := binary.BigEndian.Uint32(body)
	body = body[4:]
	if n < 1 || n > maxBatchMessages || uint64(n)*4 > uint64(len(body)) {
		return nil, fmt.Errorf("%w: %d messages in %d bytes", errBadBatch, n, len(body))
	}
	msgs := make([]*raftpb.Message, 0, n)
	for range n {
		if len(body) < 4 {
			return nil, fmt.Errorf("%w: truncated", errBadBatch)
		}
		l := binary.BigEndian.Uint32(body)
		body = body[4:]
		if l < 1 || uint64(l) > uint64(len(body)) {
			return nil, fmt.Errorf("%w: message of %d bytes, %d left", errBadBatch, l, len(body))
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(body[:l], m); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadBatch, err)
		}
		body = body[l:]
		if err := checkMessage(m, self); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadBatch, err)
		}
		msgs = append(msgs, m)
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last message", errBadBatch, len(body))
	}
	return msgs, nil
}

// checkMessage refuses what an honest peer never sends self: it keeps malformed input
// away from raft, which panics on some of it.
func checkMessage(m *raftpb.Message, self uint64) error {
	from := m.GetFrom()
	if m.GetTo() != self {
		return fmt.Errorf("message for node %d, this is node %d", m.GetTo(), self)
	}
	if from == 0 || from == self || raft.IsLocalMsgTarget(from) {
		return fmt.Errorf("message from node %d", from)
	}
	switch m.GetType() {
	case raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp, raftpb.MsgPreVote,
		raftpb.MsgPreVoteResp, raftpb.MsgSnap, raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp,
		raftpb.MsgTimeoutNow, raftpb.MsgTransferLeader:
	default:
		return fmt.Errorf("message type %v is not sent between members", m.GetType())
	}
	if len(m.GetResponses()) > 0 {
		return errors.New("message carries local responses")
	}
	if len(m.GetEntries()) > 0 && m.GetType() != raftpb.MsgApp {
		return fmt.Errorf("%v carries entries", m.GetType())
	}
	prevTerm := m.GetLogTerm()
	for i, e := range m.GetEntries() {
		if m.GetIndex() > math.MaxUint64-uint64(len(m.GetEntries())) || e.GetIndex() != m.GetIndex()+1+uint64(i) {
			return fmt.Errorf("entry %d of a MsgApp after index %d has index %d", i, m.GetIndex(), e.GetIndex())
		}
		if e.GetTerm() < prevTerm || e.GetTerm() > m.GetTerm() {
			return fmt.Errorf("entry %d has term %d (previous %d, message %d)", e.GetIndex(), e.GetTerm(), prevTerm, m.GetTerm())
		}
		prevTerm = e.GetTerm()
		switch e.GetType() {
		case raftpb.EntryNormal, raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		default:
			return fmt.Errorf("entry %d has type %d", e.GetIndex(), e.GetType())
		}
	}
	if m.GetType() == raftpb.MsgSnap {
		s := m.GetSnapshot()
		md := s.GetMetadata()
		if md == nil || md.GetIndex() == 0 || md.GetTerm() == 0 || md.GetConfState() == nil {
			return errors.New("MsgSnap without snapshot metadata")
		}
		if _, _, err := decodeSnapshotData(s.GetData()); err != nil {
			return err
		}
	} else if !raft.IsEmptySnap(m.GetSnapshot()) {
		return fmt.Errorf("%v carries a snapshot", m.GetType())
	}
	return nil
}

// messageSize estimates a message's encoded bytes, for batching.
func messageSize(m *raftpb.Message) int { return proto.Size(m) + 4 }
