package handler

// A fetch response is encoded without copying its records: the frame is the encoded
// fields with a hole where each partition's record bytes go, and the connection writes
// the fields and the record buffers together (writev). On a connection that can send
// from files (ServeSendfile: a plain TCP socket), records are not even read: their
// file ranges are pinned, and the connection sends them with sendfile(2) between the
// fields. The encoding is Kafka's FetchResponse v4-16, checked byte for byte against
// kmsg's in fetch_encode_test.go; a response using fields this encoder does not write
// (tagged fields, node endpoints) goes through kmsg instead.

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/wire"
)

// hole is record bytes that belong at offset at of the encoded fields: data, or the
// bytes of the pinned file ranges.
type hole struct {
	at     int
	data   []byte
	pinned []log.PinnedRange
}

// FilePiece is record bytes of a response to be sent from a file, after the response's
// Vec[:At] and before Vec[At].
type FilePiece struct {
	At int
	log.PinnedRange
}

// encodePinnedFetch encodes a fetch response whose partitions may have pinned ranges
// in place of RecordBatches (ServeSendfile).
func (h *Handler) encodePinnedFetch(corr int32, r *Request, fr *kmsg.FetchResponse) (*Response, bool) {
	if plainFetch(fr) {
		return h.encodeFetchPinned(corr, fr, r.pinned, r.pooled), true
	}
	// Not a response fetchRecords builds today: kmsg encodes it, from memory.
	err := h.readPinned(r, fr, r.pinned)
	resp := h.encode(corr, fr, fr.IsFlexible())
	for _, b := range r.pooled {
		h.bufs.Put(b)
	}
	if err != nil {
		resp.Release()
		h.b.Logger().Warn("fetch read", "err", err)
		return nil, false
	}
	return resp, true
}

// readPinned reads the pinned ranges of each partition of fr into its RecordBatches (in
// pooled buffers, added to r.pooled) and closes them.
func (h *Handler) readPinned(r *Request, fr *kmsg.FetchResponse, pinned [][]log.PinnedRange) error {
	var err error
	k := 0
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			if k < len(pinned) && len(pinned[k]) > 0 {
				buf := h.bufs.Get(int(pinnedLen(pinned[k])))
				r.pooled = append(r.pooled, buf)
				off := 0
				for _, p := range pinned[k] {
					if _, rerr := p.File.ReadAt(buf[off:off+int(p.Len)], p.Pos); rerr != nil && err == nil {
						err = fmt.Errorf("read %s at %d: %w", p.File.Name(), p.Pos, rerr)
					}
					off += int(p.Len)
					p.Close()
				}
				fr.Topics[i].Partitions[j].RecordBatches = buf
			}
			k++
		}
	}
	return err
}

// encodeFetchPinned is encodeFetch for a response whose partitions may have pinned
// ranges in place of RecordBatches.
func (h *Handler) encodeFetchPinned(corr int32, fr *kmsg.FetchResponse, pinned [][]log.PinnedRange, pooled [][]byte) *Response {
	bp := h.pool.Get().(*[]byte)
	b := wire.AppendResponseHeader((*bp)[:0], corr, fr.IsFlexible())
	b, holes := appendFetchFieldsPinned(b, fr, pinned, nil)
	*bp = b
	resp := &Response{h: h, buf: bp, pooled: pooled}
	if len(holes) == 0 {
		wire.FinishFrame(b, 0)
		resp.Bytes = b
		return resp
	}
	size := int64(len(b) - 4)
	resp.Vec = make([][]byte, 0, 2*len(holes)+1)
	prev := 0
	for _, hl := range holes {
		resp.Vec = append(resp.Vec, b[prev:hl.at])
		prev = hl.at
		if hl.pinned == nil {
			resp.Vec = append(resp.Vec, hl.data)
			size += int64(len(hl.data))
			continue
		}
		for _, p := range hl.pinned {
			resp.Files = append(resp.Files, FilePiece{At: len(resp.Vec), PinnedRange: p})
			size += p.Len
		}
	}
	resp.Vec = append(resp.Vec, b[prev:])
	binary.BigEndian.PutUint32(b, uint32(size))
	return resp
}

// plainFetch reports whether r uses only the fields appendFetchFields writes.
func plainFetch(r *kmsg.FetchResponse) bool {
	if r.Version < 4 || r.Version > 16 || len(r.Brokers) > 0 || r.UnknownTags.Len() > 0 {
		return false
	}
	for i := range r.Topics {
		t := &r.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 || p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 ||
				p.DivergingEpoch.UnknownTags.Len() > 0 || p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 ||
				p.CurrentLeader.UnknownTags.Len() > 0 || p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 ||
				p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for k := range p.AbortedTransactions {
				if p.AbortedTransactions[k].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// appendFetchFields appends r's encoding to dst, leaving out each partition's record
// bytes (their length prefixes are written) and returning where they belong.
func appendFetchFields(dst []byte, r *kmsg.FetchResponse, holes []hole) ([]byte, []hole) {
	return appendFetchFieldsPinned(dst, r, nil, holes)
}

// appendFetchFieldsPinned is appendFetchFields where the record bytes of the response's
// k-th partition (counting across topics) are pinned[k] if that is not empty, and its
// RecordBatches otherwise.
func appendFetchFieldsPinned(dst []byte, r *kmsg.FetchResponse, pinned [][]log.PinnedRange, holes []hole) ([]byte, []hole) {
	v := r.Version
	k := 0 // partitions so far
	flex := v >= 12
	be := binary.BigEndian
	arrayLen := func(n int) {
		if flex {
			dst = binary.AppendUvarint(dst, uint64(n)+1)
		} else {
			dst = be.AppendUint32(dst, uint32(n))
		}
	}
	dst = be.AppendUint32(dst, uint32(r.ThrottleMillis))
	if v >= 7 {
		dst = be.AppendUint16(dst, uint16(r.ErrorCode))
		dst = be.AppendUint32(dst, uint32(r.SessionID))
	}
	arrayLen(len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		if v <= 12 {
			if flex {
				dst = binary.AppendUvarint(dst, uint64(len(t.Topic))+1)
			} else {
				dst = be.AppendUint16(dst, uint16(len(t.Topic)))
			}
			dst = append(dst, t.Topic...)
		} else {
			dst = append(dst, t.TopicID[:]...)
		}
		arrayLen(len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = be.AppendUint32(dst, uint32(p.Partition))
			dst = be.AppendUint16(dst, uint16(p.ErrorCode))
			dst = be.AppendUint64(dst, uint64(p.HighWatermark))
			dst = be.AppendUint64(dst, uint64(p.LastStableOffset))
			if v >= 5 {
				dst = be.AppendUint64(dst, uint64(p.LogStartOffset))
			}
			switch {
			case p.AbortedTransactions == nil && flex:
				dst = append(dst, 0)
			case p.AbortedTransactions == nil:
				dst = be.AppendUint32(dst, 0xffffffff)
			default:
				arrayLen(len(p.AbortedTransactions))
				for _, a := range p.AbortedTransactions {
					dst = be.AppendUint64(dst, uint64(a.ProducerID))
					dst = be.AppendUint64(dst, uint64(a.FirstOffset))
					if flex {
						dst = append(dst, 0)
					}
				}
			}
			if v >= 11 {
				dst = be.AppendUint32(dst, uint32(p.PreferredReadReplica))
			}
			var pins []log.PinnedRange
			if k < len(pinned) {
				pins = pinned[k]
			}
			k++
			switch {
			case len(pins) > 0:
				n := pinnedLen(pins)
				if flex {
					dst = binary.AppendUvarint(dst, uint64(n)+1)
				} else {
					dst = be.AppendUint32(dst, uint32(n))
				}
				holes = append(holes, hole{at: len(dst), pinned: pins})
			case p.RecordBatches == nil && flex:
				dst = append(dst, 0)
			case p.RecordBatches == nil:
				dst = be.AppendUint32(dst, 0xffffffff)
			default:
				if flex {
					dst = binary.AppendUvarint(dst, uint64(len(p.RecordBatches))+1)
				} else {
					dst = be.AppendUint32(dst, uint32(len(p.RecordBatches)))
				}
				if len(p.RecordBatches) > 0 {
					holes = append(holes, hole{at: len(dst), data: p.RecordBatches})
				}
			}
			if flex {
				dst = append(dst, 0) // no tagged fields
			}
		}
		if flex {
			dst = append(dst, 0)
		}
	}
	if flex {
		dst = append(dst, 0)
	}
	return dst, holes
}

func pinnedLen(rs []log.PinnedRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len
	}
	return n
}
