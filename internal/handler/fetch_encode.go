package handler

// A fetch response is encoded without copying its records: the frame is the encoded
// fields with a hole where each partition's record bytes go, and the connection writes
// the fields and the record buffers together (writev). On a connection that can send
// from files (ServeSendfile: a plain TCP socket), records are not even read: their
// file ranges are pinned, and the connection sends them with sendfile(2) between the
// fields. The encoding is Kafka's FetchResponse v4-16, checked byte for byte against
// kmsg's in fetch_encode_test.go. Of the tagged fields it writes KIP-951's CurrentLeader
// (v12+) and NodeEndpoints (v16); the fetch handler sets no field this encoder does not
// write (diverging epochs, snapshot IDs): one that did would close the connection, found
// at once by the tests.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/wire"
)

// hole is record bytes that belong at offset at of the encoded fields: pieces of
// memory, or the bytes of pinned file ranges.
type hole struct {
	at     int
	data   [][]byte
	pinned []log.PinnedRange
}

// FilePiece is record bytes of a response to be sent from a file, after the response's
// Vec[:At] and before Vec[At].
type FilePiece struct {
	At int
	log.PinnedRange
}

// errFrameTooLarge is a response that would not fit the 32-bit frame length.
var errFrameTooLarge = errors.New("fetch response larger than a frame can be")

// encodeFetchResponse encodes the fetch response fetchRecords built, with the records
// r holds; a response it cannot encode closes the connection (ok false), its records
// given back.
func (h *Handler) encodeFetchResponse(corr int32, r *Request, fr *kmsg.FetchResponse) (*Response, bool) {
	if !plainFetch(fr) {
		// fetchRecords builds none: a field this encoder does not write was set.
		releaseRecords(h, r.records, r.pooled, r.charged)
		h.b.Logger().Error("fetch response with fields the encoder does not write; closing the connection")
		return nil, false
	}
	resp, err := h.encodeFetch(corr, fr, r.records, r.pooled, r.charged)
	if err != nil {
		h.b.Logger().Error("fetch response not sent; closing the connection", "err", err)
		return nil, false
	}
	return resp, true
}

// encodeFetch encodes a fetch response whose k-th partition's record bytes are
// recs[k] (or its RecordBatches if recs has no entry for it), without copying them:
// the frame is the encoded fields with the record pieces (Vec) and file ranges (Files)
// between them. The response owns pooled and charged (the fetch budget) and gives them
// back on Release; on error they are given back now. The frame length is checked, not
// wrapped: no frame passes 2^31-1 bytes.
func (h *Handler) encodeFetch(corr int32, fr *kmsg.FetchResponse, recs []partRecords, pooled [][]byte, charged int64) (*Response, error) {
	bp := h.pool.Get().(*[]byte)
	b := wire.AppendResponseHeader((*bp)[:0], corr, fr.IsFlexible())
	b, holes := appendFetchFieldsRecs(b, fr, recs, nil)
	*bp = b
	resp := &Response{h: h, buf: bp, pooled: pooled, charged: charged}
	size := int64(len(b) - 4)
	for _, hl := range holes {
		for _, d := range hl.data {
			size += int64(len(d))
		}
		size += pinnedLen(hl.pinned)
	}
	if size > math.MaxInt32 {
		for _, hl := range holes {
			for _, p := range hl.pinned {
				p.Close()
			}
		}
		resp.Release()
		return nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, size)
	}
	if len(holes) == 0 {
		wire.FinishFrame(b, 0)
		resp.Bytes = b
		return resp, nil
	}
	resp.Vec = make([][]byte, 0, 2*len(holes)+1)
	prev := 0
	for _, hl := range holes {
		resp.Vec = append(resp.Vec, b[prev:hl.at])
		prev = hl.at
		resp.Vec = append(resp.Vec, hl.data...)
		for _, p := range hl.pinned {
			resp.Files = append(resp.Files, FilePiece{At: len(resp.Vec), PinnedRange: p})
		}
	}
	resp.Vec = append(resp.Vec, b[prev:])
	binary.BigEndian.PutUint32(b, uint32(size))
	return resp, nil
}

// releaseRecords gives back the records of a response that will not be sent.
func releaseRecords(h *Handler, recs []partRecords, pooled [][]byte, charged int64) {
	for _, rec := range recs {
		for _, p := range rec.pinned {
			p.Close()
		}
	}
	for _, b := range pooled {
		h.bufs.Put(b)
	}
	h.fetchBudget.release(charged)
}

// plainFetch reports whether r uses only the fields appendFetchFields writes.
func plainFetch(r *kmsg.FetchResponse) bool {
	if r.Version < 4 || r.Version > 16 || (len(r.Brokers) > 0 && r.Version < 16) || r.UnknownTags.Len() > 0 {
		return false
	}
	for i := range r.Brokers {
		if r.Brokers[i].UnknownTags.Len() > 0 {
			return false
		}
	}
	for i := range r.Topics {
		t := &r.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 || (hasDivergingEpoch(p) && r.Version < 12) ||
				p.DivergingEpoch.UnknownTags.Len() > 0 || (hasCurrentLeader(p) && r.Version < 12) ||
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
	return appendFetchFieldsRecs(dst, r, nil, holes)
}

// appendFetchFieldsRecs is appendFetchFields where the record bytes of the response's
// k-th partition (counting across topics) are recs[k] if that is not empty, and its
// RecordBatches otherwise.
func appendFetchFieldsRecs(dst []byte, r *kmsg.FetchResponse, recs []partRecords, holes []hole) ([]byte, []hole) {
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
			var rec partRecords
			if k < len(recs) {
				rec = recs[k]
			}
			k++
			switch {
			case len(rec.pieces) > 0 || len(rec.pinned) > 0:
				n := pinnedLen(rec.pinned)
				for _, d := range rec.pieces {
					n += int64(len(d))
				}
				if flex {
					dst = binary.AppendUvarint(dst, uint64(n)+1)
				} else {
					dst = be.AppendUint32(dst, uint32(n))
				}
				holes = append(holes, hole{at: len(dst), data: rec.pieces, pinned: rec.pinned})
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
					holes = append(holes, hole{at: len(dst), data: [][]byte{p.RecordBatches}})
				}
			}
			if flex {
				// Tagged fields in tag order: DivergingEpoch (tag 0, KIP-320, a
				// follower's fetch) of 13 bytes, CurrentLeader (tag 1, KIP-951) of 9.
				div, cur := hasDivergingEpoch(p), hasCurrentLeader(p)
				n := byte(0)
				if div {
					n++
				}
				if cur {
					n++
				}
				dst = append(dst, n)
				if div {
					dst = append(dst, 0, 13)
					dst = be.AppendUint32(dst, uint32(p.DivergingEpoch.Epoch))
					dst = be.AppendUint64(dst, uint64(p.DivergingEpoch.EndOffset))
					dst = append(dst, 0)
				}
				if cur {
					dst = append(dst, 1, 9)
					dst = be.AppendUint32(dst, uint32(p.CurrentLeader.LeaderID))
					dst = be.AppendUint32(dst, uint32(p.CurrentLeader.LeaderEpoch))
					dst = append(dst, 0)
				}
			}
		}
		if flex {
			dst = append(dst, 0)
		}
	}
	switch {
	case flex && len(r.Brokers) > 0:
		// One tagged field: NodeEndpoints (tag 0, v16, KIP-951), sized.
		var nb []byte
		nb = binary.AppendUvarint(nb, uint64(len(r.Brokers))+1)
		for _, b := range r.Brokers {
			nb = be.AppendUint32(nb, uint32(b.NodeID))
			nb = binary.AppendUvarint(nb, uint64(len(b.Host))+1)
			nb = append(nb, b.Host...)
			nb = be.AppendUint32(nb, uint32(b.Port))
			if b.Rack == nil {
				nb = append(nb, 0)
			} else {
				nb = binary.AppendUvarint(nb, uint64(len(*b.Rack))+1)
				nb = append(nb, *b.Rack...)
			}
			nb = append(nb, 0)
		}
		dst = append(dst, 1, 0)
		dst = binary.AppendUvarint(dst, uint64(len(nb)))
		dst = append(dst, nb...)
	case flex:
		dst = append(dst, 0)
	}
	return dst, holes
}

// hasDivergingEpoch reports whether a partition carries KIP-320's DivergingEpoch.
func hasDivergingEpoch(p *kmsg.FetchResponseTopicPartition) bool {
	return p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1
}

// hasCurrentLeader reports whether a partition carries KIP-951's CurrentLeader.
func hasCurrentLeader(p *kmsg.FetchResponseTopicPartition) bool {
	return p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1
}

func pinnedLen(rs []log.PinnedRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len
	}
	return n
}
