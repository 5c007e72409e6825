package handler

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
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
			if version >= 12 && rng.IntN(3) == 0 { // KIP-951: a partition this node does not lead
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = rng.Int32(), rng.Int32()
			}
			if version >= 12 && rng.IntN(3) == 0 { // KIP-320: a follower whose log diverged
				p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = rng.Int32(), rng.Int64()
			}
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
	}
	if version >= 16 {
		for i := rng.IntN(3); i > 0; i-- {
			b := kmsg.FetchResponseBroker{NodeID: rng.Int32(), Host: string(bytes.Repeat([]byte{'h'}, rng.IntN(200))), Port: rng.Int32()}
			if rng.IntN(2) == 0 {
				b.Rack = kmsg.StringPtr(string(bytes.Repeat([]byte{'r'}, rng.IntN(150))))
			}
			r.Brokers = append(r.Brokers, b)
		}
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
				for _, d := range h.data {
					got = append(got, d...)
				}
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
		t.Fatal("a v12 response with node endpoints (v16's) is plain")
	}
}

// TestFetchFieldsPinnedMatchKmsg: with some partitions' records elsewhere than in
// RecordBatches (in files, pinned, in one or more ranges each; or in pieces of memory),
// the fields with those bytes put back in their holes are still exactly kmsg's encoding.
func TestFetchFieldsPinnedMatchKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f, err := os.Create(filepath.Join(t.TempDir(), "records"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var end int64
	for version := int16(4); version <= 16; version++ {
		for i := 0; i < 100; i++ {
			r := randomFetchResponse(rng, version)
			want := r.AppendTo(nil)
			var recs []partRecords
			for ti := range r.Topics {
				for pi := range r.Topics[ti].Partitions {
					p := &r.Topics[ti].Partitions[pi]
					var rec partRecords
					inFiles := rng.IntN(2) == 0
					if len(p.RecordBatches) > 0 && rng.IntN(3) > 0 {
						rest := p.RecordBatches
						for len(rest) > 0 {
							n := min(len(rest), rng.IntN(len(p.RecordBatches))+1)
							if !inFiles {
								rec.pieces = append(rec.pieces, rest[:n])
								rest = rest[n:]
								continue
							}
							end += int64(rng.IntN(10)) // ranges need not be adjacent
							if _, err := f.WriteAt(rest[:n], end); err != nil {
								t.Fatal(err)
							}
							rec.pinned = append(rec.pinned, log.PinnedRange{File: f, Pos: end, Len: int64(n)})
							end += int64(n)
							rest = rest[n:]
						}
						p.RecordBatches = []byte{}
					}
					recs = append(recs, rec)
				}
			}
			fields, holes := appendFetchFieldsRecs(nil, r, recs, nil)
			var got []byte
			prev := 0
			for _, h := range holes {
				got = append(got, fields[prev:h.at]...)
				for _, d := range h.data {
					got = append(got, d...)
				}
				for _, p := range h.pinned {
					buf := make([]byte, p.Len)
					if _, err := p.File.ReadAt(buf, p.Pos); err != nil {
						t.Fatal(err)
					}
					got = append(got, buf...)
				}
				prev = h.at
			}
			got = append(got, fields[prev:]...)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d: encoding with records elsewhere differs from kmsg's", version)
			}
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
