package replication

// Test doubles: a broker that serves a replica's requests from real partitions over
// in-memory logs (what the handler will do once replication is wired in), and the
// replicas themselves.

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

const topic = "t"

var topicID = [16]byte{1, 2, 3}

var tkey = Key{topic, 0}

// code maps the partition's errors as the handler does (handler/errors.go).
func code(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, partition.ErrUnknownLeaderEpoch):
		return kerr.UnknownLeaderEpoch.Code
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrClosed), errors.Is(err, partition.ErrUnknownReplica):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrStorage):
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// serveReplica answers a replica's request from the partition p (nil: not hosted here).
func serveReplica(p *partition.Partition, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		id, epoch := r.ReplicaID, int64(-1)
		if r.Version >= 15 {
			id, epoch = r.ReplicaState.ID, r.ReplicaState.Epoch
		}
		for _, t := range r.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, fp := range t.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = fp.Partition
				if p == nil {
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
					rt.Partitions = append(rt.Partitions, sp)
					continue
				}
				res, err := p.ReadForFollower(partition.FollowerRead{ReplicaID: id, BrokerEpoch: epoch,
					CurrentLeaderEpoch: fp.CurrentLeaderEpoch, FetchOffset: fp.FetchOffset, LastFetchedEpoch: fp.LastFetchedEpoch,
					LogStartOffset: fp.LogStartOffset, MaxBytes: int64(fp.PartitionMaxBytes)})
				sp.ErrorCode = code(err)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
				if err == nil && res.Diverging {
					sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = res.DivergingEpoch, res.DivergingEndOffset
				}
				if err == nil && len(res.Ranges) > 0 {
					buf := make([]byte, log.RangesLen(res.Ranges))
					if err := log.ReadRanges(buf, res.Ranges); err != nil {
						return nil, err
					}
					sp.RecordBatches = buf
				}
				rt.Partitions = append(rt.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.OffsetForLeaderEpochRequest:
		resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
			rt.Topic = t.Topic
			for _, ep := range t.Partitions {
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition, sp.LeaderEpoch, sp.EndOffset = ep.Partition, -1, -1
				if err := leaderCheck(p, ep.CurrentLeaderEpoch); err != nil {
					sp.ErrorCode = code(err)
				} else {
					sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(ep.LeaderEpoch)
				}
				rt.Partitions = append(rt.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.ListOffsetsRequest:
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, lp := range t.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.Offset, sp.Timestamp = lp.Partition, -1, -1
				if err := leaderCheck(p, lp.CurrentLeaderEpoch); err != nil {
					sp.ErrorCode = code(err)
				} else if lp.Timestamp == -2 {
					sp.Offset = p.LogStartOffset()
				} else {
					sp.Offset = p.LogEndOffset() // a replica asks for the log end
				}
				rt.Partitions = append(rt.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected request %T", req)
}

func leaderCheck(p *partition.Partition, current int32) error {
	if p == nil || p.Role() != partition.RoleLeader {
		return partition.ErrNotLeader
	}
	_, epoch, _, _ := p.ReplicaState()
	switch {
	case current >= 0 && current < epoch:
		return partition.ErrFencedLeaderEpoch
	case current > epoch:
		return partition.ErrUnknownLeaderEpoch
	}
	return nil
}

// replica is one broker's replica of the partition, over its own MemFS.
type replica struct {
	id   int32
	fsys *vfs.MemFS
	p    *partition.Partition
	sent []partition.ISRChange
}

func openReplica(t testing.TB, id int32, fsys *vfs.MemFS, now func() time.Time, hw int64, minISR int32) *replica {
	t.Helper()
	r := &replica{id: id, fsys: fsys}
	l, err := log.Open(fsys, "/data/t-0", log.Config{SegmentBytes: 4096}, now)
	if err != nil {
		t.Fatalf("open replica %d: %v", id, err)
	}
	p, err := partition.OpenReplica(topic, 0, l, partition.Config{MaxMessageBytes: 1 << 20, MinInsyncReplicas: minISR,
		TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1}, now,
		partition.ReplicaOptions{ReplicaConfig: partition.ReplicaConfig{LocalID: id, LagTimeMax: 10 * time.Second},
			HighWatermark: hw, SendISRChange: func(c partition.ISRChange) { r.sent = append(r.sent, c) }})
	if err != nil {
		t.Fatalf("open replica %d: %v", id, err)
	}
	r.p = p
	return r
}

func record(t testing.TB, pid int64, seq int32, value string) batch.Batch {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{Idempotent: pid >= 0, ProducerID: pid, BaseSequence: seq},
		[]batch.Record{{Timestamp: 1_700_000_000_000, Value: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBytes returns p's batches below end, as bytes.
func logBytes(t testing.TB, p *partition.Partition, end int64) []byte {
	t.Helper()
	rs, err := p.Log().Read(p.LogStartOffset(), end, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, log.RangesLen(rs))
	if err := log.ReadRanges(buf, rs); err != nil {
		t.Fatal(err)
	}
	return buf
}

// discard is a logger for simulations, which would otherwise fill the test output.
var discard = slog.New(slog.DiscardHandler)
