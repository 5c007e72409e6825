package server_test

// DescribeProducers (KIP-664) as an admin client uses it: kadm asks each partition's
// leader; a single node answers from its idempotent producer state, after a restart
// too; in a cluster a follower answers with the same state as the leader (its producer
// state follows the log), and a node that hosts no replica answers
// NOT_LEADER_OR_FOLLOWER, as Kafka's ReplicaManager does.

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/partition"
)

// produceIdempotent writes n records, one batch each, with timestamps ts0, ts0+1, ...
// to partition 0 of topic through seed, and returns the producer's ID and epoch.
func produceIdempotent(t *testing.T, cl *kgo.Client, topic string, n int, ts0 int64) (int64, int16) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte("v"), Timestamp: time.UnixMilli(ts0 + int64(i))}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	id, epoch, err := cl.ProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return id, epoch
}

// describeProducersRaw sends one DescribeProducers for topic's partitions to the broker
// at seed and returns the partitions' answers.
func describeProducersRaw(t *testing.T, cl *kgo.Client, topic string, partitions ...int32) []kmsg.DescribeProducersResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != topic || len(resp.Topics[0].Partitions) != len(partitions) {
		t.Fatalf("DescribeProducers of %s %v answered %+v", topic, partitions, resp.Topics)
	}
	return resp.Topics[0].Partitions
}

// wantProducer checks that ps describe exactly the producer id at epoch, last sequence
// lastSeq written at lastTS, with no transaction.
func wantProducer(t *testing.T, what string, ps []kmsg.DescribeProducersResponseTopicPartitionActiveProducer, id int64, epoch int16, lastSeq int32, lastTS int64) {
	t.Helper()
	want := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
	want.ProducerID, want.ProducerEpoch, want.LastSequence, want.LastTimestamp = id, int32(epoch), lastSeq, lastTS
	want.CoordinatorEpoch, want.CurrentTxnStartOffset = -1, -1
	if len(ps) != 1 || !reflect.DeepEqual(ps[0], want) {
		t.Fatalf("%s: producers %+v, want %+v", what, ps, want)
	}
}

func TestDescribeProducersSingleNode(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "dp", 2, nil)
	// Recent, or producer.id.expiration.ms would expire the producer when it restarts.
	ts0 := time.Now().UnixMilli()
	id, epoch := produceIdempotent(t, n.client(kgo.RecordPartitioner(kgo.ManualPartitioner())), "dp", 3, ts0)

	check := func(when string) {
		t.Helper()
		got, err := n.admin().DescribeProducers(ctxT(t), kadm.TopicsSet{"dp": {0: {}, 1: {}}})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		p0, p1 := got["dp"].Partitions[0], got["dp"].Partitions[1]
		if p0.Err != nil || p1.Err != nil || len(p1.ActiveProducers) != 0 {
			t.Fatalf("%s: %+v", when, got)
		}
		d := p0.ActiveProducers[id]
		if len(p0.ActiveProducers) != 1 || d.ProducerEpoch != epoch || d.LastSequence != 2 || d.LastTimestamp != ts0+2 ||
			d.CoordinatorEpoch != -1 || d.CurrentTxnStartOffset != -1 {
			t.Fatalf("%s: producer %d described as %+v", when, id, p0.ActiveProducers)
		}
	}
	check("after producing")
	n.restart() // the state comes back from the clean-close snapshot
	check("after a restart")

	cl := n.client()
	for _, c := range []struct {
		topic string
		part  int32
		want  *kerr.Error
	}{
		{"dp", 2, kerr.UnknownTopicOrPartition},
		{"dp", -1, kerr.UnknownTopicOrPartition},
		{"nope", 0, kerr.UnknownTopicOrPartition},
		{"bad name!", 0, kerr.InvalidTopicException},
	} {
		if p := describeProducersRaw(t, cl, c.topic, c.part)[0]; p.Partition != c.part || kerr.ErrorForCode(p.ErrorCode) != c.want || len(p.ActiveProducers) != 0 {
			t.Fatalf("%s-%d: %+v, want %v", c.topic, c.part, p, c.want)
		}
	}
}

func TestDescribeProducersReplicated(t *testing.T) {
	rc := startReplicated(t, "dp", nil)
	L, F, S := rc.L, rc.F, rc.S
	ts0 := time.Now().UnixMilli()
	id, epoch := produceIdempotent(t, L.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner())), "dp", 4, ts0)

	// kadm asks the leader, whichever broker it starts from.
	got, err := kadm.NewClient(F.client(t)).DescribeProducers(ctxT(t), kadm.TopicsSet{"dp": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0 := got["dp"].Partitions[0]
	if p0.Err != nil || p0.Leader != L.id || len(p0.ActiveProducers) != 1 {
		t.Fatalf("described %+v, want the leader %d's answer", p0, L.id)
	}
	if d := p0.ActiveProducers[id]; d.ProducerEpoch != epoch || d.LastSequence != 3 || d.LastTimestamp != ts0+3 {
		t.Fatalf("producer %d described as %+v", id, p0.ActiveProducers)
	}

	// A follower answers from its own replica once it has the batches.
	rc.waitReplicas("F has the batches", "dp", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[F.id] != nil && ps[F.id].LogEndOffset() == 4
	})
	p := describeProducersRaw(t, F.client(t), "dp", 0)[0]
	if p.ErrorCode != 0 {
		t.Fatalf("follower: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	wantProducer(t, "follower", p.ActiveProducers, id, epoch, 3, ts0+3)

	// A broker with no replica of the partition: NOT_LEADER_OR_FOLLOWER.
	rc.createAssigned(L, "dp2", nil, []int32{L.id, F.id})
	if p := describeProducersRaw(t, S.client(t), "dp2", 0)[0]; kerr.ErrorForCode(p.ErrorCode) != kerr.NotLeaderForPartition {
		t.Fatalf("a broker without a replica answered %+v", p)
	}
}
