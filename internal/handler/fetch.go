package handler

// Fetch v4-16 for consumers. Topic IDs replace names from v13. Each partition is read
// from the high watermark's side of its log as whole batches, copied from the segment
// files without decoding. Sessions follow KIP-227 (fetch_session.go). A partition this
// node does not lead answers NOT_LEADER_OR_FOLLOWER, from v12 with its leader and from
// v16 with the leader's endpoint (KIP-951, leader.go), unless this node follows it and
// the consumer sends its client metadata (v11+): a follower serves it up to its high
// watermark, and a leader with the rack-aware replica.selector.class may send a consumer
// to a follower in its client.rack (KIP-392, broker/replica_select.go). A follower's
// own fetch is fetch_replica.go's.
//
// Limits, as Kafka applies them (KIP-74, ReplicaManager.readFromLog): the response's
// records are bounded by the smaller of the request's max_bytes and the broker's
// fetch.max.bytes, each partition's by the smaller of its partition_max_bytes and what
// the response has left, except that the first batch of the first partition with
// records goes whole even if larger, so a consumer is never stuck behind a large batch.
// Non-positive limits are not "unlimited": 0 leaves room for that one batch only, and a
// negative limit fails the read of a partition that has records to read
// (UNKNOWN_SERVER_ERROR, as Kafka's LogSegment.read refuses a negative size), after
// which the response counts as having 0 bytes left. min_bytes counts only up to the
// response limit. No frame can pass the 32-bit frame length: a response's records are
// also bounded by what fits in one.
//
// If fewer than min_bytes are ready, the request waits for an append to any of its
// partitions, up to max_wait_ms, computing only how many bytes are ready (file ranges,
// fetch_read.go); the records are read, or pinned for sendfile, once, when it answers,
// within the broker-wide fetch memory budget (fetch_budget.go).

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metrics"
)

// fetchWant is one partition a fetch asks for, with the client's parameters (copied:
// a session's own copy may change once its lock is released).
type fetchWant struct {
	key         tp
	topicID     [16]byte
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	errCode     int16 // set when the topic cannot be resolved at all
	// A follower's (fetch_replica.go): where its last fetched epoch is (-1: not
	// given), and its log start offset.
	lastFetchedEpoch int32
	logStartOffset   int64
}

func (h *Handler) fetch(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	return h.fetchRecords(ctx, r, kr.(*kmsg.FetchRequest))
}

// fetchRecords answers a fetch. The kmsg response carries no record bytes: they are in
// r.records, one entry per response partition in order (pooled buffers, which r.pooled
// holds and r.charged accounts for, or, when r.pin allows, file ranges pinned for
// sendfile); the encoder puts them in place.
func (h *Handler) fetchRecords(ctx context.Context, r *Request, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	byID := req.Version >= 13
	im := h.b.Image()

	var sess *fetchSession // an incremental fetch's session
	createSession := false
	switch {
	case req.Version < 7 || req.SessionEpoch == -1:
		if req.Version >= 7 && req.SessionID != 0 {
			h.sessions.remove(req.SessionID)
		}
	case req.SessionEpoch == 0:
		// A full fetch closes the session it names; its own is created, if the cache
		// has or can make room, once it is answered.
		if req.SessionID != 0 {
			h.sessions.remove(req.SessionID)
		}
		createSession = true
	default:
		if sess = h.sessions.get(req.SessionID); sess == nil {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return resp
		}
	}

	topicName := func(name string, id [16]byte) (string, int16) {
		if !byID {
			return name, 0
		}
		t := im.TopicByID(uuid.UUID(id))
		if t == nil {
			return "", kerr.UnknownTopicID.Code
		}
		return t.Name, 0
	}
	var wants []fetchWant
	ids := map[string][16]byte{}
	for _, rt := range req.Topics {
		name, code := topicName(rt.Topic, rt.TopicID)
		if code == 0 && byID {
			ids[name] = rt.TopicID
		}
		for _, rp := range rt.Partitions {
			lastEpoch := int32(-1)
			if req.Version >= 12 {
				lastEpoch = rp.LastFetchedEpoch
			}
			wants = append(wants, fetchWant{key: tp{name, rp.Partition}, topicID: rt.TopicID, fetchOffset: rp.FetchOffset,
				maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch, errCode: code,
				lastFetchedEpoch: lastEpoch, logStartOffset: rp.LogStartOffset})
		}
	}

	var epoch int32 // the session's epoch once this request has moved it on
	if sess != nil {
		var forgotten []tp
		for _, ft := range req.ForgottenTopics {
			if name, code := topicName(ft.Topic, ft.TopicID); code == 0 {
				for _, p := range ft.Partitions {
					forgotten = append(forgotten, tp{name, p})
				}
			}
		}
		var ok bool
		if wants, epoch, ok = h.startIncremental(sess, req.SessionEpoch, wants, forgotten, ids); !ok {
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			return resp
		}
		if byID {
			fillTopicIDs(wants, im)
		}
	}

	fc := h.newFetchCtx(r, req, wants)
	fc.wait(ctx)
	if sess != nil && !sess.atEpoch(epoch) {
		// Another request of the session came meanwhile: this one is a duplicate.
		resp.ErrorCode, resp.SessionID = kerr.InvalidFetchSessionEpoch.Code, sess.id
		return resp
	}
	fc.materialize(ctx)
	fc.recordThrottled()

	include := func(int) bool { return true }
	if sess != nil {
		keep, ok := finishIncremental(sess, epoch, wants, fc.results)
		if !ok {
			fc.unpin()
			resp.ErrorCode, resp.SessionID = kerr.InvalidFetchSessionEpoch.Code, sess.id
			return resp
		}
		include = func(i int) bool { return keep[i] }
		resp.SessionID = sess.id
	}

	// Assemble, grouping consecutive partitions of a topic.
	leaders := leaderEndpoints{im: h.b.Image(), listener: h.clientListener()}
	for i, w := range wants {
		res := &fc.results[i]
		if !include(i) {
			continue
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != w.key.topic || resp.Topics[n-1].TopicID != w.topicID {
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: w.key.topic, TopicID: w.topicID})
			n++
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = w.key.partition
		rp.ErrorCode = res.errCode
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = res.highWatermark, res.lastStable, res.logStartOffset
		// The bytes are in r.records; Kafka sends empty records, never null (python3-kafka
		// fails on null).
		rp.RecordBatches = []byte{}
		rp.PreferredReadReplica = -1
		if req.Version >= 11 {
			rp.PreferredReadReplica = res.preferred
		}
		if res.diverging && req.Version >= 12 {
			rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = res.divergingEpoch, res.divergingEnd
		}
		if res.leader != nil && req.Version >= 12 {
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = res.leader.LeaderID, res.leader.LeaderEpoch
			if req.Version >= 16 {
				leaders.add(res.leader.LeaderID)
			}
		}
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, rp)
		r.records = append(r.records, res.records)
	}
	leaders.each(func(b *metadata.Broker, l *metadata.Listener) {
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: b.ID, Host: l.Host, Port: int32(l.Port), Rack: rackOf(b)})
	})
	h.countFetched(wants, fc.results)
	if createSession {
		if s := h.sessions.create(sessionFrom(wants, fc.results)); s != nil {
			resp.SessionID = s.id
		}
	}
	return resp
}

// countFetched counts each partition of the fetch in its topic's BrokerTopicMetrics:
// the request, a failure, and the record bytes sent. Partitions of topics that do not
// exist are counted nowhere, as in Kafka.
func (h *Handler) countFetched(wants []fetchWant, results []fetchResult) {
	var ts *metrics.TopicStats
	for i := range wants {
		res := &results[i]
		if res.p == nil {
			continue
		}
		if ts == nil || i == 0 || wants[i-1].key.topic != wants[i].key.topic {
			ts = h.m.Topics.Topic(wants[i].key.topic)
		}
		ts.Fetched(res.size, fetchFailure(res.errCode))
	}
}

// fetchFailure reports whether a partition's error counts as a failed fetch in
// BrokerTopicMetrics. As in Kafka's ReplicaManager, the errors a client is expected to
// meet and recover from (leadership moved, an offset out of range, a failed log dir,
// which the log dir metrics report) do not.
func fetchFailure(code int16) bool {
	switch code {
	case 0, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.NotLeaderForPartition.Code,
		kerr.UnknownLeaderEpoch.Code, kerr.FencedLeaderEpoch.Code, kerr.ReplicaNotAvailable.Code,
		kerr.KafkaStorageError.Code, kerr.OffsetOutOfRange.Code, kerr.InconsistentTopicID.Code:
		return false
	}
	return true
}

// startIncremental checks an incremental fetch's epoch against its session, applies
// its changes, moves the epoch on (so a duplicate of this request is refused from now
// on, as in Kafka) and returns what to fetch: the session's partitions in its order,
// then the request's partitions of unknown topic IDs (answered, never added). The
// session's lock is held only for this.
func (h *Handler) startIncremental(s *fetchSession, epoch int32, reqWants []fetchWant, forgotten []tp, ids map[string][16]byte) ([]fetchWant, int32, bool) {
	s.mu.Lock()
	if s.epoch != epoch {
		s.mu.Unlock()
		return nil, 0, false
	}
	var unresolved []fetchWant
	for _, w := range reqWants {
		switch sp := s.parts[w.key]; {
		case w.errCode != 0:
			unresolved = append(unresolved, w)
		case sp != nil:
			sp.fetchOffset, sp.maxBytes, sp.leaderEpoch = w.fetchOffset, w.maxBytes, w.leaderEpoch
		default:
			s.add(w.key, &sessionPartition{fetchOffset: w.fetchOffset, maxBytes: w.maxBytes, leaderEpoch: w.leaderEpoch,
				highWatermark: -1, lastStable: -1, logStartOffset: -1})
		}
	}
	s.forget(forgotten)
	wants := make([]fetchWant, 0, len(s.order)+len(unresolved))
	for _, k := range s.order {
		sp := s.parts[k]
		wants = append(wants, fetchWant{key: k, topicID: ids[k.topic], fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes, leaderEpoch: sp.leaderEpoch})
	}
	wants = append(wants, unresolved...)
	s.epoch = nextEpoch(s.epoch)
	epoch, size := s.epoch, len(s.parts)
	s.mu.Unlock()
	h.sessions.touch(s, size)
	return wants, epoch, true
}

// fillTopicIDs gives session partitions the request did not name their topic IDs.
func fillTopicIDs(wants []fetchWant, im *metadata.Image) {
	for i := range wants {
		if wants[i].topicID == ([16]byte{}) {
			if t := im.Topic(wants[i].key.topic); t != nil {
				wants[i].topicID = t.ID
			}
		}
	}
}

func (s *fetchSession) atEpoch(epoch int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch == epoch
}

// finishIncremental records in the session what an incremental fetch answers and
// returns which of its partitions go in the response: those with records, an error,
// or watermarks that changed since last sent. Partitions that returned records move to
// the end of the session's order, so under a byte limit the others get their turn (as
// Kafka does). ok is false if the session moved on past epoch meanwhile.
func finishIncremental(s *fetchSession, epoch int32, wants []fetchWant, results []fetchResult) (keep []bool, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return nil, false
	}
	keep = make([]bool, len(wants))
	moved := false
	for i, w := range wants {
		res := &results[i]
		sp := s.parts[w.key]
		if w.errCode != 0 || sp == nil {
			keep[i] = true
			continue
		}
		keep[i] = res.size > 0 || res.errCode != 0 || res.preferred >= 0 || res.highWatermark != sp.highWatermark ||
			res.lastStable != sp.lastStable || res.logStartOffset != sp.logStartOffset
		sp.highWatermark, sp.lastStable, sp.logStartOffset = res.highWatermark, res.lastStable, res.logStartOffset
		if res.errCode != 0 {
			sp.highWatermark = -1 // sent again once the error clears, as Kafka does
		}
		moved = moved || res.size > 0
	}
	if moved {
		sent := make(map[tp]bool)
		for i, w := range wants {
			if results[i].size > 0 && w.errCode == 0 {
				sent[w.key] = true
			}
		}
		order := make([]tp, 0, len(s.order))
		for _, k := range s.order {
			if !sent[k] {
				order = append(order, k)
			}
		}
		for _, k := range s.order {
			if sent[k] {
				order = append(order, k)
			}
		}
		s.order = order
	}
	return keep, true
}

// sessionFrom is the partitions a full fetch puts in its new session, with what it
// answered for each; unknown topic IDs stay out.
func sessionFrom(wants []fetchWant, results []fetchResult) ([]tp, map[tp]*sessionPartition) {
	order := make([]tp, 0, len(wants))
	parts := make(map[tp]*sessionPartition, len(wants))
	for i, w := range wants {
		if w.errCode != 0 {
			continue
		}
		res := &results[i]
		sp := &sessionPartition{fetchOffset: w.fetchOffset, maxBytes: w.maxBytes, leaderEpoch: w.leaderEpoch,
			highWatermark: res.highWatermark, lastStable: res.lastStable, logStartOffset: res.logStartOffset}
		if res.errCode != 0 {
			sp.highWatermark = -1
		}
		if parts[w.key] == nil {
			order = append(order, w.key)
		}
		parts[w.key] = sp
	}
	return order, parts
}

// errNegativeFetchLimit is a read asked for with a negative byte limit (Kafka's
// LogSegment.read: IllegalArgumentException, answered UNKNOWN_SERVER_ERROR).
var errNegativeFetchLimit = errors.New("fetch: negative byte limit")

// waitAny blocks until one of chans is closed, the deadline passes or ctx ends; it
// reports whether a channel fired.
func waitAny(ctx context.Context, chans []<-chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
		return false
	}
	return selectAny(ctx, t.C, chans)
}
