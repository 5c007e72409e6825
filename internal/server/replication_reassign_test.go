package server_test

// Partition reassignment on three in-process nodes, driven as an operator would
// (AlterPartitionReassignments through any broker): the adding replica opens as a
// follower and catches up, the leader's ISR expansion completes the move, the removed
// replica closes and deletes its directory, and every acknowledged record is still
// there, once, in order.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// reassignTo moves partition 0 of topic to replicas through node via and waits until
// every running node's image has the move completed.
func (c *qcluster) reassignTo(via *qnode, topic string, replicas ...int32) {
	c.t.Helper()
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, 0, replicas)
	resp, err := kadm.NewClient(via.client(c.t)).AlterPartitionAssignments(ctxT(c.t), req)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		c.t.Fatalf("reassign %s-0 to %v: %v", topic, replicas, err)
	}
	c.waitAll(fmt.Sprintf("the move to %v completes", replicas), func(im *metadata.Image) bool {
		p := im.Topic(topic).Partition(0)
		return slices.Equal(p.Replicas(), replicas) && len(p.AddingReplicas())+len(p.RemovingReplicas()) == 0 &&
			slices.Equal(slices.Sorted(slices.Values(p.ISR())), slices.Sorted(slices.Values(replicas)))
	})
}

// produceValues produces n records to partition 0 of topic through via, acks=all and
// idempotent, and returns their values in offset order.
func produceValues(t *testing.T, cl *kgo.Client, topic string, from, n int) []string {
	t.Helper()
	var vals []string
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("record-%04d", i)
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		vals = append(vals, v)
	}
	return vals
}

// consumeValues reads partition 0 of topic from the start up to n records.
func consumeValues(t *testing.T, via *qnode, topic string, n int) []string {
	t.Helper()
	cl := via.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// A partition on {1,2} led by 1 moves to {2,3}: 3 catches up, the move completes with 2
// leading, 1 deletes its copy, the logs of 2 and 3 are byte-identical and every
// acknowledged record is read back once, in order, before and after more produces.
func TestReassignmentMovesReplicas(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	n1, n2, n3 := c.nodes[1], c.nodes[2], c.nodes[3]
	c.createAssigned(n1, "moved", map[string]string{"min.insync.replicas": "2"}, []int32{1, 2})
	c.waitAll("ISR {1,2}", isrIs("moved", 1, 2))
	prod := n2.client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := produceValues(t, prod, "moved", 0, 50)
	dir1 := n1.srv.Broker().Partition("moved", 0).Log().Dir()

	c.reassignTo(n3, "moved", 2, 3)
	if l := n1.srv.Broker().Image().Topic("moved").Partition(0).Leader; l != 2 {
		t.Fatalf("leader %d after the move, want 2 (1 was removed)", l)
	}
	c.waitReplicas("1 no longer hosts it; 3 has everything", "moved", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[1] == nil && ps[3] != nil && ps[3].LogEndOffset() == 50 && ps[2] != nil && ps[2].Role() == partition.RoleLeader
	})
	c.waitDeleted(dir1)
	want = append(want, produceValues(t, prod, "moved", 50, 20)...)
	c.waitReplicas("2 and 3 agree", "moved", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[2].HighWatermark() == 70 && ps[3].LogEndOffset() == 70
	})
	if a, b := logBytes(t, c.nodes[2].srv.Broker().Partition("moved", 0), 70), logBytes(t, c.nodes[3].srv.Broker().Partition("moved", 0), 70); !bytes.Equal(a, b) {
		t.Fatal("the logs of 2 and 3 differ after the move")
	}
	if got := consumeValues(t, n1, "moved", len(want)); !slices.Equal(got, want) {
		t.Fatalf("read back %d records, want %d: %v", len(got), len(want), got)
	}
}

// A partition with one replica gains a second: it is reopened as a replica keeping its
// high watermark (everything was committed), and the new replica catches up.
func TestReassignmentAddsAReplica(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	n1 := c.nodes[1]
	c.createAssigned(n1, "grown", nil, []int32{1})
	prod := n1.client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := produceValues(t, prod, "grown", 0, 30)
	c.reassignTo(n1, "grown", 1, 2)
	c.waitReplicas("both replicas have everything, committed", "grown", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[1] != nil && ps[1].Replicated() && ps[1].HighWatermark() == 30 && ps[2] != nil && ps[2].LogEndOffset() == 30
	})
	want = append(want, produceValues(t, prod, "grown", 30, 10)...)
	if got := consumeValues(t, c.nodes[2], "grown", len(want)); !slices.Equal(got, want) {
		t.Fatalf("read back %v", got)
	}
}

// waitDeleted waits until the partition directory dir is gone (the hoster deletes it
// on a worker; the test looks again every 20 ms, as waitReplicas does).
func (c *qcluster) waitDeleted(dir string) {
	c.t.Helper()
	ctx := ctxT(c.t)
	for {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("%s is still there", dir)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The leader's throttle alone (leader.replication.throttled.rate on the leader, the
// partition in its topic's leader.replication.throttled.replicas) holds back an adding
// replica's catch-up after its first fetch; removing the rate lets the move complete.
func TestReassignmentLeaderThrottle(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	n1 := c.nodes[1]
	c.createAssigned(n1, "held", map[string]string{"leader.replication.throttled.replicas": "0:1"}, []int32{1})
	prod := n1.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	val := bytes.Repeat([]byte("x"), 1024)
	for range 3000 { // 3 MB: three fetches of replica.fetch.max.bytes
		prod.Produce(ctxT(t), &kgo.Record{Topic: "held", Partition: 0, Value: val}, nil)
	}
	if err := prod.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	setRate := func(v *string) {
		t.Helper()
		op := kadm.SetConfig
		if v == nil {
			op = kadm.DeleteConfig
		}
		resp, err := kadm.NewClient(n1.client(t)).AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Op: op, Name: "leader.replication.throttled.rate", Value: v}}, 1)
		if err == nil {
			for _, r := range resp {
				err = errors.Join(err, r.Err)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		// Broker 1's own config (BROKER resource "1").
		c.waitAll("the rate", func(im *metadata.Image) bool {
			got, ok := im.BrokerConfigs("1")["leader.replication.throttled.rate"]
			return (v == nil && !ok) || (v != nil && got == *v)
		})
	}
	one := "1"
	setRate(&one)
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign("held", 0, []int32{1, 2})
	if resp, err := kadm.NewClient(n1.client(t)).AlterPartitionAssignments(ctxT(t), req); err != nil || resp.Error() != nil {
		t.Fatalf("reassign: %v %v", err, resp.Error())
	}
	c.waitReplicas("2's first fetch", "held", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[2] != nil && ps[2].LogEndOffset() > 0
	})
	leader := n1.srv.Broker().Partition("held", 0)
	if got := c.nodes[2].srv.Broker().Partition("held", 0).LogEndOffset(); got >= leader.LogEndOffset() ||
		!n1.srv.Broker().ReplicationThrottles().Leader.Exceeded(time.Now()) {
		t.Fatalf("after the first fetch 2 has %d of %d records; the leader quota is exceeded: %v", got, leader.LogEndOffset(),
			n1.srv.Broker().ReplicationThrottles().Leader.Exceeded(time.Now()))
	}
	// The leader's replication quota as an operator sees it (Kafka's LeaderReplication byte-rate).
	fams := scrape(t, startHTTP(t, n1.srv))
	if v, ok := sample(fams, "kafka_server_leaderreplication_byte_rate"); !ok || v <= 1 {
		t.Fatalf("kafka_server_leaderreplication_byte_rate %v (present %v) under an exceeded 1 B/s quota", v, ok)
	}
	wantSample(t, fams, 1, "vltava_replication_leader_throttled_rate")
	wantSample(t, fams, -1, "vltava_replication_follower_throttled_rate")
	// A throttle is a matter of time: unthrottled, 2 would have the rest within
	// milliseconds (its fetches long-poll 100 ms); for a second it gets nothing more.
	p2 := c.nodes[2].srv.Broker().Partition("held", 0)
	first := p2.LogEndOffset()
	for deadline := time.After(time.Second); ; {
		if got := p2.LogEndOffset(); got != first {
			t.Fatalf("the held replica moved from %d to %d records under a 1 B/s leader throttle", first, got)
		}
		wait := p2.WaitAppend()
		select {
		case <-wait:
			continue
		case <-deadline:
		}
		break
	}
	if p := n1.srv.Broker().Image().Topic("held").Partition(0); len(p.AddingReplicas()) != 1 {
		t.Fatalf("the move is not under way: adding %v", p.AddingReplicas())
	}
	setRate(nil)
	c.waitAll("the move completes", func(im *metadata.Image) bool {
		p := im.Topic("held").Partition(0)
		return len(p.AddingReplicas()) == 0 && len(p.ISR()) == 2
	})
}

// sarama's ClusterAdmin, which sends both APIs to the broker Metadata names as the
// controller: a move is listed while under way, completes, and a cancel of a move held
// back by a throttle puts the partition back.
func TestReassignmentWithSarama(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	n1 := c.nodes[1]
	c.createAssigned(n1, "s", map[string]string{"follower.replication.throttled.replicas": "*"}, []int32{1, 2})
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	adm, err := sarama.NewClusterAdmin([]string{n1.srv.Addrs()[0]}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.AlterPartitionReassignments("s", [][]int32{{2, 3}}); err != nil {
		t.Fatalf("sarama AlterPartitionReassignments: %v", err)
	}
	c.waitAll("the move completes", func(im *metadata.Image) bool {
		p := im.Topic("s").Partition(0)
		return slices.Equal(p.Replicas(), []int32{2, 3}) && len(p.ISR()) == 2
	})
	st, err := adm.ListPartitionReassignments("s", []int32{0})
	if err != nil || len(st["s"]) != 0 {
		t.Fatalf("sarama ListPartitionReassignments after the move: %v %+v", err, st)
	}

	// Held back: broker 1 fetches at 1 B/s (its own config, BROKER resource "1").
	prod := n1.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	val := bytes.Repeat([]byte("y"), 1024)
	for range 3000 {
		prod.Produce(ctxT(t), &kgo.Record{Topic: "s", Partition: 0, Value: val}, nil)
	}
	if err := prod.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	one := "1"
	if err := adm.AlterConfig(sarama.BrokerResource, "1", map[string]*string{"follower.replication.throttled.rate": &one}, false); err != nil {
		t.Fatalf("sarama AlterConfig: %v", err)
	}
	c.waitAll("the rate", func(im *metadata.Image) bool {
		return im.BrokerConfigs("1")["follower.replication.throttled.rate"] == "1"
	})
	if err := adm.AlterPartitionReassignments("s", [][]int32{{2, 3, 1}}); err != nil {
		t.Fatalf("sarama AlterPartitionReassignments: %v", err)
	}
	st, err = adm.ListPartitionReassignments("s", []int32{0})
	if err != nil || st["s"][0] == nil || !slices.Equal(st["s"][0].AddingReplicas, []int32{1}) || !slices.Equal(st["s"][0].Replicas, []int32{2, 3, 1}) {
		t.Fatalf("sarama ListPartitionReassignments under way: %v %+v", err, st["s"])
	}
	if err := adm.AlterPartitionReassignments("s", [][]int32{nil}); err != nil {
		t.Fatalf("sarama cancel: %v", err)
	}
	c.waitAll("cancelled", func(im *metadata.Image) bool {
		p := im.Topic("s").Partition(0)
		return slices.Equal(p.Replicas(), []int32{2, 3}) && len(p.AddingReplicas()) == 0
	})
	if err := adm.AlterPartitionReassignments("s", [][]int32{nil}); err == nil || !errors.Is(err, sarama.ErrNoReassignmentInProgress) {
		t.Fatalf("a second cancel: %v, want NO_REASSIGNMENT_IN_PROGRESS", err)
	}
}

// Moving __consumer_offsets' partition off its leader moves the group coordinator with
// it: a committed offset is fetched back through every node after the move.
func TestReassignmentMovesOffsetsCoordinator(t *testing.T) {
	c := startUnfenced(t, 3, map[string]string{"offsets.topic.num.partitions": "1", "offsets.topic.replication.factor": "2"})
	n1 := c.nodes[1]
	adm := kadm.NewClient(n1.client(t))
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "x"); err != nil {
		t.Fatal(err)
	}
	// The coordinator may be another node, one whose image has not applied x yet (it would
	// answer the commit UNKNOWN_TOPIC_OR_PARTITION, as Kafka's does).
	c.waitAll("x", func(im *metadata.Image) bool { return im.Topic("x") != nil })
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "x", Partition: 0, At: 7, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctxT(t), "g", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	c.waitAll("the offsets topic", func(im *metadata.Image) bool { return im.Topic(broker.ConsumerOffsetsTopic) != nil })
	p := n1.srv.Broker().Image().Topic(broker.ConsumerOffsetsTopic).Partition(0)
	var target []int32
	for _, id := range []int32{1, 2, 3} {
		if id != p.Leader {
			target = append(target, id)
		}
	}
	c.reassignTo(n1, broker.ConsumerOffsetsTopic, target...)
	for _, qn := range c.running() {
		f, err := kadm.NewClient(qn.client(t)).FetchOffsets(ctxT(t), "g")
		if err == nil {
			err = f.Error()
		}
		if o, ok := f.Lookup("x", 0); err != nil || !ok || o.At != 7 {
			t.Fatalf("offsets of g through node %d after moving %v -> %v: %v %v %+v", qn.id, p.Replicas(), target, err, ok, o)
		}
	}
}

// A broker's own dynamic config (BROKER resource "2", which kadm sends to broker 2) applies
// to that broker only and is described there as DYNAMIC_BROKER_CONFIG over the cluster
// default; the cluster default resource does not list it; a broker refuses another's
// resource, as Kafka's does (the client sends it to the broker it names).
func TestPerBrokerDynamicConfig(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	adm := kadm.NewClient(c.nodes[1].client(t))
	alter := func(op kadm.IncrementalOp, key string, v *string, brokers ...int32) {
		t.Helper()
		resp, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Op: op, Name: key, Value: v}}, brokers...)
		if err == nil {
			for _, r := range resp {
				err = errors.Join(err, r.Err)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const key = "log.cleaner.io.max.bytes.per.second"
	def, own := "5000000", "1000000"
	alter(kadm.SetConfig, key, &def)
	alter(kadm.SetConfig, key, &own, 2)
	c.waitAll("both configs", func(im *metadata.Image) bool {
		return im.BrokerConfigs("")[key] == def && im.BrokerConfigs("2")[key] == own
	})
	describe := func(id int32) kadm.Config {
		t.Helper()
		rcs, err := kadm.NewClient(c.nodes[id].client(t)).DescribeBrokerConfigs(ctxT(t), id)
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("describe broker %d: %v %+v", id, err, rcs)
		}
		for _, cf := range rcs[0].Configs {
			if cf.Key == key {
				return cf
			}
		}
		t.Fatalf("broker %d does not describe %s", id, key)
		return kadm.Config{}
	}
	if cf := describe(2); cf.MaybeValue() != own || cf.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("broker 2's %s: %q from %v, want %s from DYNAMIC_BROKER_CONFIG", key, cf.MaybeValue(), cf.Source, own)
	}
	for _, id := range []int32{1, 3} {
		if cf := describe(id); cf.MaybeValue() != def || cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("broker %d's %s: %q from %v, want the cluster default %s", id, key, cf.MaybeValue(), cf.Source, def)
		}
	}
	defaults, err := adm.DescribeBrokerConfigs(ctxT(t))
	if err != nil || len(defaults) != 1 {
		t.Fatalf("describe the cluster default: %v %+v", err, defaults)
	}
	for _, cf := range defaults[0].Configs {
		if cf.Key == key && cf.MaybeValue() != def {
			t.Fatalf("the cluster default resource lists %s=%q, want %s", key, cf.MaybeValue(), def)
		}
	}
	// Broker 2's resource sent to broker 1 is refused.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "2"
	rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	rc.Name, rc.Value = key, &def
	rr.Configs = append(rr.Configs, rc)
	req.Resources = append(req.Resources, rr)
	r, err := c.nodes[1].client(t).Broker(1).Request(ctxT(t), req) // kadm would send it to broker 2
	if err != nil || r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("broker 2's resource at broker 1: %v %+v, want INVALID_REQUEST", err, r)
	}
	// Deleted, broker 2 takes the cluster default again.
	alter(kadm.DeleteConfig, key, nil, 2)
	c.waitAll("broker 2's config deleted", func(im *metadata.Image) bool { return im.BrokerConfigs("2")[key] == "" })
	if cf := describe(2); cf.MaybeValue() != def {
		t.Fatalf("broker 2's %s after the delete: %q, want the cluster default %s", key, cf.MaybeValue(), def)
	}
}
