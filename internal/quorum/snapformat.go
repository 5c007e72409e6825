// Snapshot formats: the snapshot file, the snapshot data raft carries in MsgSnap, and the
// address list that also travels in conf change contexts. All integers are big-endian.
//
// Snapshot file, <index>-<term>.snap (both zero-padded to 20 digits), written whole to
// <name>.tmp, fsynced, renamed into place and the directory fsynced, so after a crash it
// is either absent or complete; a bad CRC is corruption, not a torn write:
//
//	offset  size  field
//	0       4     magic "VQSN"
//	4       2     version (1)
//	6       8     index: the last log index the snapshot covers
//	14      8     term of that entry
//	22      ...   ConfState: four id lists, each a u32 count then count u64 ids, in this
//	              order: voters, learners, voters_outgoing, learners_next; then
//	              auto_leave u8 (0 or 1)
//	...     8     data length d
//	...     d     data (the snapshot data below)
//	...     4     CRC32C (Castagnoli) of every byte before it
//
// Snapshot data (raft's Snapshot.Data, sent to followers in MsgSnap):
//
//	0       1     version (2; 1 has no state index)
//	1       8     state index: the last index given to the state machine, which the
//	              state's bytes are as of (0: the snapshot's index). The entries after
//	              it, up to the snapshot's index, carry no state: membership changes
//	              (a snapshot is taken right after one) and a new leader's empty entry.
//	9       ...   peers: the address list below
//	...     ...   the state machine's bytes (StateMachine.Snapshot), to the end
//
// Address list (peers in snapshot data; a conf change's context):
//
//	0       2     count
//	then count times: id u64, address length u16, address bytes (host:port)
package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	snapMagic   = "VQSN"
	snapVersion = 1
	// snapMaxIDs bounds each ConfState id list (a corrupt count is not allocated).
	snapMaxIDs = 1 << 16
	// maxAddrLen bounds a peer address (a host name and a port).
	maxAddrLen = 1024
)

var errShort = errors.New("truncated")

// snapshotFile is a decoded snapshot file.
type snapshotFile struct {
	index, term uint64
	conf        *raftpb.ConfState
	data        []byte // snapshot data: peers and the state machine's bytes
}

func appendIDs(dst []byte, ids []uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ids)))
	for _, id := range ids {
		dst = binary.BigEndian.AppendUint64(dst, id)
	}
	return dst
}

// encodeSnapshotHeader returns the file's bytes before the data, with the data length.
func encodeSnapshotHeader(index, term uint64, cs *raftpb.ConfState, dataLen int) []byte {
	b := append([]byte(snapMagic), 0, snapVersion)
	b = binary.BigEndian.AppendUint64(b, index)
	b = binary.BigEndian.AppendUint64(b, term)
	b = appendIDs(b, cs.GetVoters())
	b = appendIDs(b, cs.GetLearners())
	b = appendIDs(b, cs.GetVotersOutgoing())
	b = appendIDs(b, cs.GetLearnersNext())
	if cs.GetAutoLeave() {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint64(b, uint64(dataLen))
}

// encodeSnapshotFile returns a whole snapshot file (tests and fuzzing; the writer streams
// the same bytes).
func encodeSnapshotFile(f snapshotFile) []byte {
	b := encodeSnapshotHeader(f.index, f.term, f.conf, len(f.data))
	b = append(b, f.data...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// reader decodes big-endian fields, remembering the first short read.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) ids() []uint64 {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if n > snapMaxIDs || uint64(n)*8 > uint64(len(r.b)) {
		r.err = fmt.Errorf("id list of %d entries", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = r.u64()
	}
	return ids
}

// decodeSnapshotFile decodes and checks a whole snapshot file.
func decodeSnapshotFile(b []byte) (snapshotFile, error) {
	var f snapshotFile
	if len(b) < len(snapMagic)+2+4 {
		return f, errors.New("snapshot file too short")
	}
	if string(b[:4]) != snapMagic {
		return f, fmt.Errorf("snapshot file has magic %q, want %q", b[:4], snapMagic)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != snapVersion {
		return f, fmt.Errorf("snapshot file version %d is not supported (want %d)", v, snapVersion)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return f, errors.New("snapshot file CRC mismatch")
	}
	r := reader{b: body[6:]}
	f.index = r.u64()
	f.term = r.u64()
	cs := &raftpb.ConfState{}
	cs.Voters = r.ids()
	cs.Learners = r.ids()
	cs.VotersOutgoing = r.ids()
	cs.LearnersNext = r.ids()
	switch r.u8() {
	case 0:
		cs.AutoLeave = new(false)
	case 1:
		cs.AutoLeave = new(true)
	default:
		if r.err == nil {
			r.err = errors.New("auto_leave is neither 0 nor 1")
		}
	}
	f.conf = cs
	n := r.u64()
	if r.err == nil && n != uint64(len(r.b)) {
		r.err = fmt.Errorf("data length %d, %d bytes left", n, len(r.b))
	}
	f.data = r.take(len(r.b))
	if r.err != nil {
		return snapshotFile{}, fmt.Errorf("snapshot file: %w", r.err)
	}
	return f, nil
}

// appendPeers appends an address list, ids in ascending order.
func appendPeers(dst []byte, peers map[uint64]string) []byte {
	ids := make([]uint64, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ids)))
	for _, id := range ids {
		dst = binary.BigEndian.AppendUint64(dst, id)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(peers[id])))
		dst = append(dst, peers[id]...)
	}
	return dst
}

func (r *reader) peers() map[uint64]string {
	n := r.u16()
	if r.err != nil {
		return nil
	}
	peers := make(map[uint64]string, min(int(n), 64))
	for range n {
		id := r.u64()
		a := r.take(int(r.u16()))
		if r.err != nil {
			return nil
		}
		if id == 0 {
			r.err = errors.New("peer id 0")
			return nil
		}
		peers[id] = string(a)
	}
	return peers
}

// checkPeers refuses an address list the encoding cannot hold.
func checkPeers(peers map[uint64]string) error {
	if len(peers) > math.MaxUint16 {
		return fmt.Errorf("%d peers, at most %d", len(peers), math.MaxUint16)
	}
	for id, a := range peers {
		if id == 0 {
			return errors.New("peer id 0")
		}
		if len(a) > maxAddrLen {
			return fmt.Errorf("address of node %d is %d bytes, at most %d", id, len(a), maxAddrLen)
		}
	}
	return nil
}

// encodePeers encodes an address list on its own (a conf change context).
func encodePeers(peers map[uint64]string) []byte { return appendPeers(nil, peers) }

// decodePeers decodes an address list that is the whole of b.
func decodePeers(b []byte) (map[uint64]string, error) {
	r := reader{b: b}
	p := r.peers()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the address list", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("address list: %w", r.err)
	}
	return p, nil
}

// snapDataVersion is the snapshot data's version.
const snapDataVersion = 2

// encodeSnapshotData returns raft's snapshot data whose state is as of the snapshot's
// own index.
func encodeSnapshotData(peers map[uint64]string, state []byte) []byte {
	return encodeSnapshotDataAt(peers, 0, state)
}

// encodeSnapshotDataAt returns raft's snapshot data: the peers' addresses and the state
// machine's bytes as of stateIndex (0: the snapshot's index).
func encodeSnapshotDataAt(peers map[uint64]string, stateIndex uint64, state []byte) []byte {
	b := make([]byte, 0, 11+len(peers)*32+len(state))
	b = append(b, snapDataVersion)
	b = binary.BigEndian.AppendUint64(b, stateIndex)
	b = appendPeers(b, peers)
	return append(b, state...)
}

// decodeSnapshotData splits raft's snapshot data; state aliases b.
func decodeSnapshotData(b []byte) (peers map[uint64]string, state []byte, err error) {
	peers, state, _, err = decodeSnapshotDataAt(b)
	return peers, state, err
}

// decodeSnapshotDataAt is decodeSnapshotData with the state index (0: the snapshot's).
func decodeSnapshotDataAt(b []byte) (peers map[uint64]string, state []byte, stateIndex uint64, err error) {
	r := reader{b: b}
	switch v := r.u8(); {
	case r.err != nil:
	case v == 2:
		stateIndex = r.u64()
	case v != 1:
		return nil, nil, 0, fmt.Errorf("snapshot data version %d is not supported (want %d)", v, snapDataVersion)
	}
	peers = r.peers()
	if r.err != nil {
		return nil, nil, 0, fmt.Errorf("snapshot data: %w", r.err)
	}
	return peers, r.b, stateIndex, nil
}
