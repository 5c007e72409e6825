package handler

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func randomFetchResponse(rng *rand.Rand, version int16) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.Version = version
	r.ThrottleMillis = rng.Int32()
	r.ErrorCode = int16(rng.IntN(100))
	r.SessionID = rng.Int32()
	for i := rng.IntN(4); i > 0; i-- {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'t'}, rng.IntN(300)))
		fill(rng, t.TopicID[:])
		for j := rng.IntN(4); j > 0; j-- {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition, p.ErrorCode = rng.Int32(), int16(rng.IntN(100))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = rng.Int64(), rng.Int64(), rng.Int64()
			p.PreferredReadReplica = rng.Int32()
			switch rng.IntN(3) {
			case 0:
				p.AbortedTransactions = nil
			case 1:
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			default:
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 1, FirstOffset: 2}, {ProducerID: 3, FirstOffset: 4}}
			}
			switch rng.IntN(3) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			default:
				p.RecordBatches = make([]byte, rng.IntN(200)+1)
				fill(rng, p.RecordBatches)
			}
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

// TestFetchFieldsMatchKmsg: the encoded fields with the record bytes put back in their
// holes are exactly kmsg's encoding, for every version served.
func TestFetchFieldsMatchKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for version := int16(4); version <= 16; version++ {
		for i := 0; i < 200; i++ {
			r := randomFetchResponse(rng, version)
			if !plainFetch(r) {
				t.Fatalf("v%d: a response the handler builds is not plain", version)
			}
			want := r.AppendTo(nil)
			fields, holes := appendFetchFields(nil, r, nil)
			var got []byte
			prev := 0
			for _, h := range holes {
				got = append(got, fields[prev:h.at]...)
				got = append(got, h.data...)
				prev = h.at
			}
			got = append(got, fields[prev:]...)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d: encoding differs from kmsg's", version)
			}
		}
	}
	r := randomFetchResponse(rng, 12)
	r.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1}}
	if plainFetch(r) {
		t.Fatal("a response with node endpoints is plain")
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
