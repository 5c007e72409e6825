package handler

// A fetch response is encoded without copying its records: the frame is the encoded
// fields with a hole where each partition's record bytes go, and the connection writes
// the fields and the record buffers together (writev). The encoding is Kafka's
// FetchResponse v4-16, checked byte for byte against kmsg's in fetch_encode_test.go; a
// response using fields this encoder does not write (tagged fields, node endpoints)
// goes through kmsg instead.

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// hole is record bytes that belong at offset at of the encoded fields.
type hole struct {
	at   int
	data []byte
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
	v := r.Version
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
			switch {
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
