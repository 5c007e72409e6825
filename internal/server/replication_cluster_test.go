package server_test

// Replication across three in-process nodes. Until the active controller places
// replicas, the test writes the placement into the metadata log itself: every broker's
// registration, and a topic whose partition has replicas [L, F, S], ISR [L, F, S] and
// leader L (L the quorum's leader, which hands out producer IDs), with
// min.insync.replicas=2. Then:
//
//   - an idempotent acks=all producer writes to L; the three logs are byte-identical up
//     to the high watermark;
//   - with S stopped (the ISR still names it: no controller shrinks it), acks=1 appends
//     move L's log end but not its high watermark, a consumer never reads past it, and
//     an acks=all produce times out with REQUEST_TIMED_OUT;
//   - leadership moves to S (a PartitionChangeRecord), which comes back: L becomes its
//     follower and truncates by leader epoch what S never had, the producer moves to S
//     (NOT_LEADER_OR_FOLLOWER) and goes on, and every acknowledged record is there, once,
//     in order, on all three.
//
// The other tests here: ISR changes through AlterPartition, offset commits on a
// replicated __consumer_offsets, a restarted leader's high watermark, replicas added to
// a partition. Fetching is replication_fetch_test.go's.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// replicationOverrides are quick follower fetches and heartbeats, so that a stopped
// broker's controlled shutdown and a silent broker's fencing take a second or two, then
// over.
func replicationOverrides(over map[string]string) map[string]string {
	ov := map[string]string{"replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50",
		"broker.heartbeat.interval.ms": "100", "broker.session.timeout.ms": "2000"}
	for k, v := range over {
		ov[k] = v
	}
	return ov
}

// startUnfenced starts n nodes with replicationOverrides(over) and waits until the
// controller has unfenced every broker (they register themselves).
func startUnfenced(t *testing.T, n int, over map[string]string, opts ...func(*qcluster)) *qcluster {
	t.Helper()
	c := startQuorumCluster(t, n, replicationOverrides(over), opts...)
	c.leader()
	var ids []int32
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.waitAll("every broker is unfenced", unfenced(ids...))
	return c
}

// startUnfencedWithCuts is startUnfenced with every node's outgoing connections dialled
// through a cutSwitch of its own, returned by node ID.
func startUnfencedWithCuts(t *testing.T, n int, over map[string]string) (*qcluster, map[int32]*cutSwitch) {
	t.Helper()
	cuts := map[int32]*cutSwitch{}
	for id := int32(1); id <= int32(n); id++ {
		cuts[id] = &cutSwitch{}
	}
	c := startUnfenced(t, n, over, func(c *qcluster) {
		c.dial = func(id int32) func(ctx context.Context, addr string) (net.Conn, error) { return cuts[id].dial }
	})
	return c, cuts
}

// followersOf returns the running nodes other than lead, in c.running's order.
func (c *qcluster) followersOf(lead *qnode) []*qnode {
	var out []*qnode
	for _, qn := range c.running() {
		if qn != lead {
			out = append(out, qn)
		}
	}
	return out
}

// createAssigned creates topic through node via (forwarded to the controller) with the
// explicit replicas of each partition, in order, and configs; it returns the topic's ID
// once every running node's image has it.
func (c *qcluster) createAssigned(via *qnode, topic string, configs map[string]string, assignment ...[]int32) uuid.UUID {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, rs := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cf := kmsg.NewCreateTopicsRequestTopicConfig()
		cf.Name, cf.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cf)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(c.t), via.client(c.t).SeedBrokers()[0])
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		c.t.Fatalf("create %s through node %d: %v %+v", topic, via.id, err, resp)
	}
	c.waitAll("the topic is created", func(im *metadata.Image) bool { return im.Topic(topic) != nil })
	return via.srv.Broker().Image().Topic(topic).ID
}

// alterTopicConfig sets topic's key to value through node via (IncrementalAlterConfigs,
// forwarded to the controller) and waits until every running node's image has it.
func (c *qcluster) alterTopicConfig(via *qnode, topic, key, value string) {
	c.t.Helper()
	resp, err := kadm.NewClient(via.client(c.t)).AlterTopicConfigs(ctxT(c.t),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		c.t.Fatalf("set %s=%s on %s: %v", key, value, topic, err)
	}
	c.waitAll("the config change", func(im *metadata.Image) bool {
		t := im.Topic(topic)
		return t != nil && t.Configs[key] == value
	})
}

// isrIs is a condition on an image: partition 0 of topic has the ISR want, in any order.
func isrIs(topic string, want ...int32) func(*metadata.Image) bool {
	want = slices.Sorted(slices.Values(want))
	return func(im *metadata.Image) bool {
		t := im.Topic(topic)
		return t != nil && slices.Equal(slices.Sorted(slices.Values(t.Partition(0).ISR())), want)
	}
}

// waitReplicas waits until cond holds of the partition as hosted on every running node
// (nil where a node does not host it yet), waking on its appends and high watermark.
func (c *qcluster) waitReplicas(what, topic string, idx int32, cond func(ps map[int32]*partition.Partition) bool) {
	c.t.Helper()
	ctx := ctxT(c.t)
	for {
		ps := map[int32]*partition.Partition{}
		var waits []<-chan struct{}
		for _, qn := range c.running() {
			p := qn.srv.Broker().Partition(topic, idx)
			ps[qn.id] = p
			if p != nil {
				waits = append(waits, p.Wait(), p.WaitAppend())
			}
		}
		if cond(ps) {
			return
		}
		// Partitions open and change roles off these channels: look again shortly too.
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(20 * time.Millisecond))}}
		for _, ch := range waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			c.t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}

// logBytes returns p's log from its start up to (not including) offset end.
func logBytes(t *testing.T, p *partition.Partition, end int64) []byte {
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

// recordValues returns the record values of the batches in b, with their offsets.
func recordValues(t *testing.T, b []byte) (offs []int64, vals []string) {
	t.Helper()
	for rest := b; len(rest) > 0; {
		bt, r, err := batch.Next(rest, len(rest))
		if err != nil {
			t.Fatal(err)
		}
		rest = r
		recs, err := batch.Records(bt, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			offs, vals = append(offs, rec.Offset), append(vals, string(rec.Value))
		}
	}
	return offs, vals
}

// replicatedCluster is three nodes and the partition 0 of topic, replicated on all:
// L leads it (and the quorum), F and S follow.
type replicatedCluster struct {
	*qcluster
	L, F, S *qnode
	topic   string
	id      uuid.UUID
	cuts    map[int32]*cutSwitch // each node's controller channel
}

// crashable restarts qn so that crash can stop it as a crash looks to the cluster: its
// own broker.session.timeout.ms, which bounds its controlled shutdown, becomes short
// (the controller's, on another node, stays as the test set it). It waits until qn is
// back in the partition's ISR (the leader's AlterPartition, through the controller).
func (rc *replicatedCluster) crashable(qn *qnode) {
	rc.t.Helper()
	rc.stop(qn.id)
	qn.over["broker.session.timeout.ms"] = "300"
	rc.start(qn.id, nil)
	rc.waitAll("the restarted broker is unfenced and in the ISR again", func(im *metadata.Image) bool {
		return unfenced(qn.id)(im) && isrIs(rc.topic, rc.L.id, rc.F.id, rc.S.id)(im)
	})
	// The leader applies the ISR it sent off the image, a moment later.
	rc.waitReplicas("the leader applies the ISR", rc.topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[rc.L.id] != nil && len(ps[rc.L.id].ISR()) == 3
	})
}

// crash stops qn (made crashable) with its controller channel cut: its controlled
// shutdown gives up after its own short session timeout, so the controller keeps it
// registered, unfenced and in its ISRs until the controller's broker.session.timeout.ms
// passes, as after a crash.
func (rc *replicatedCluster) crash(qn *qnode) {
	rc.cuts[qn.id].set(true)
	rc.stop(qn.id)
	rc.cuts[qn.id].set(false)
}

// startReplicated starts three nodes and creates topic with one partition on all three,
// min.insync.replicas=2: an ordinary topic with the replicas [L, F, S] (L the quorum's
// leader) through CreateTopics; __consumer_offsets as the broker creates it, placed by
// the controller with offsets.topic.replication.factor=3 (L, F and S are then named
// after the placement).
func startReplicated(t *testing.T, topic string, over map[string]string) *replicatedCluster {
	t.Helper()
	if topic == broker.ConsumerOffsetsTopic {
		over = maps.Clone(over)
		over["offsets.topic.replication.factor"] = "3"
	}
	c, cuts := startUnfencedWithCuts(t, 3, over)
	lead := c.leader()
	others := c.followersOf(lead)
	rc := &replicatedCluster{qcluster: c, L: lead, F: others[0], S: others[1], topic: topic, cuts: cuts}
	if topic == broker.ConsumerOffsetsTopic {
		if err := lead.srv.Broker().EnsureOffsetsTopic(); err != nil {
			t.Fatal(err)
		}
		c.waitAll("the topic is created", func(im *metadata.Image) bool { return im.Topic(topic) != nil })
		c.alterTopicConfig(lead, topic, "min.insync.replicas", "2")
		mp := lead.srv.Broker().Image().Topic(topic).Partition(0)
		if len(mp.Replicas()) != 3 {
			t.Fatalf("%s placed on %v, want three replicas", topic, mp.Replicas())
		}
		var rest []*qnode
		for _, r := range mp.Replicas() {
			if r != mp.Leader {
				rest = append(rest, c.nodes[r])
			}
		}
		rc.L, rc.F, rc.S = c.nodes[mp.Leader], rest[0], rest[1]
		rc.id = lead.srv.Broker().Image().Topic(topic).ID
	} else {
		rc.id = c.createAssigned(lead, topic, map[string]string{"min.insync.replicas": "2"}, []int32{rc.L.id, rc.F.id, rc.S.id})
	}
	c.waitReplicas("replicas take their roles", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for id, p := range ps {
			want := partition.RoleFollower
			if id == rc.L.id {
				want = partition.RoleLeader
			}
			if p == nil || !p.Replicated() || p.Role() != want {
				return false
			}
		}
		return true
	})
	return rc
}

func TestReplicationAcksAllAndLeaderChange(t *testing.T) {
	// The controller fences a silent broker after 6 s: a crashed S stays in the ISR
	// until then.
	rc := startReplicated(t, "replicated", map[string]string{"broker.session.timeout.ms": "6000"})
	c, L, F, S, topic, id := rc.qcluster, rc.L, rc.F, rc.S, rc.topic, rc.id
	others := []*qnode{F, S}
	rc.crashable(S)

	// An idempotent acks=all producer (franz-go's defaults) writes through L.
	var acked []string
	pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	produce := func(from, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("acked-%04d", i))})
		}
		if err := pc.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d..%d: %v", from, from+n-1, err)
		}
		for _, r := range rs {
			acked = append(acked, string(r.Value))
		}
	}
	for i := 0; i < 10; i++ {
		produce(i*20, 20)
	}
	n := int64(len(acked))
	lp := L.srv.Broker().Partition(topic, 0)
	if hw := lp.HighWatermark(); hw != n {
		t.Fatalf("after %d acknowledged records the leader's high watermark is %d", n, hw)
	}
	c.waitReplicas("followers catch up", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for _, p := range ps {
			if p.LogEndOffset() != n || p.HighWatermark() != n {
				return false
			}
		}
		return true
	})
	want := logBytes(t, lp, n)
	for _, qn := range others {
		if got := logBytes(t, qn.srv.Broker().Partition(topic, 0), n); !bytes.Equal(got, want) {
			t.Fatalf("node %d's log differs from the leader's up to the high watermark (%d vs %d bytes)", qn.id, len(got), len(want))
		}
	}

	// S crashes. The ISR still names it (the controller has not fenced it yet, the
	// leader shrinks the ISR only after replica.lag.time.max.ms, 30 s), so the high
	// watermark waits for it.
	rc.crash(S)
	if im := L.srv.Broker().Image(); !isrIs(topic, L.id, F.id, S.id)(im) || im.Broker(S.id).Fenced {
		t.Fatalf("S left the ISR or was fenced at once: ISR %v", im.Topic(topic).Partition(0).ISR())
	}
	// Its high watermark is checkpointed at shutdown, in Kafka's file.
	hws, _, err := partition.ReadHighWatermarks(vfs.OS(), S.dir)
	if err != nil || partition.CheckpointedHighWatermark(hws, topic, 0) != n {
		t.Fatalf("S's replication-offset-checkpoint: %v %v, want %s 0 %d", hws, err, topic, n)
	}
	uncommitted := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for i := 0; i < 5; i++ {
		if err := uncommitted.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprintf("acks1-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("acks=1 produce: %v", err)
		}
	}
	if leo, hw := lp.LogEndOffset(), lp.HighWatermark(); leo != n+5 || hw != n {
		t.Fatalf("with S down, acks=1 appends: log end %d, high watermark %d; want %d, %d", leo, hw, n+5, n)
	}
	// A consumer's fetch stops at the high watermark.
	fr := fetchRaw(t, L, id, 0)
	if fr.HighWatermark != n {
		t.Fatalf("fetch high watermark %d, want %d", fr.HighWatermark, n)
	}
	if offs, _ := recordValues(t, fr.RecordBatches); len(offs) != int(n) || offs[len(offs)-1] != n-1 {
		t.Fatalf("a consumer read offsets %d..%d of a log whose high watermark is %d", offs[0], offs[len(offs)-1], n)
	}
	// acks=all cannot complete: REQUEST_TIMED_OUT after timeout_ms.
	if code := produceAcksAll(t, L, topic, 300); code != kerr.RequestTimedOut.Code {
		t.Fatalf("acks=all with a stopped ISR member: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if im := L.srv.Broker().Image(); !isrIs(topic, L.id, F.id, S.id)(im) {
		t.Fatalf("the checks above ran with S out of the ISR already (%v): lengthen the controller's session timeout", im.Topic(topic).Partition(0).ISR())
	}

	// S comes back, a new incarnation: once the controller has given up on the old one
	// (fenced, out of the ISR) it registers, catches up from L and joins the ISR again
	// (AlterPartition), and the high watermark covers L's whole log.
	c.start(S.id, nil)
	c.waitAll("S joins the ISR again", func(im *metadata.Image) bool {
		return unfenced(S.id)(im) && isrIs(topic, L.id, F.id, S.id)(im)
	})
	tail := lp.LogEndOffset()
	c.waitReplicas("S has L's log", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for _, p := range ps {
			if p == nil || p.LogEndOffset() != tail || p.HighWatermark() != tail {
				return false
			}
		}
		return true
	})

	// Leadership moves: L stops (a controlled shutdown, and the quorum's leader moves
	// too); the controller elects F, the first of the rest of the ISR in replica order.
	epoch := F.srv.Broker().Partition(topic, 0).LeaderEpoch()
	c.stop(L.id)
	c.waitReplicas("F leads, S follows it", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for id, p := range ps {
			want := partition.RoleFollower
			if id == F.id {
				want = partition.RoleLeader
			}
			if p == nil || p.Role() != want || p.LeaderEpoch() <= epoch {
				return false
			}
		}
		return true
	})

	// The idempotent producer goes on, now on F (NOT_LEADER_OR_FOLLOWER from L's
	// successor, or L gone: it looks the leader up again).
	for i := 0; i < 5; i++ {
		produce(200+i*20, 20)
	}
	fp := F.srv.Broker().Partition(topic, 0)
	total := fp.LogEndOffset()
	c.waitReplicas("all replicas have every acknowledged record", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for _, p := range ps {
			if p.LogEndOffset() != total || p.HighWatermark() != total {
				return false
			}
		}
		return true
	})
	want = logBytes(t, fp, total)
	if got := logBytes(t, S.srv.Broker().Partition(topic, 0), total); !bytes.Equal(got, want) {
		t.Fatalf("S's log differs from the new leader's (%d vs %d bytes)", len(got), len(want))
	}
	// Every acknowledged record is there, once, in order (the acks=1 records and the
	// timed-out batch, committed once S caught up, sit between them).
	offs, vals := recordValues(t, want)
	var got []string
	for i, v := range vals {
		if offs[i] != int64(i) {
			t.Fatalf("offset %d where %d was due", offs[i], i)
		}
		if strings.HasPrefix(v, "acked-") {
			got = append(got, v)
		}
	}
	if !slices.Equal(got, acked) {
		t.Fatalf("the log holds the acknowledged records %d times over %d acknowledged: %v", len(got), len(acked), got)
	}
}

// fetchRaw fetches partition idx of topic id from offset 0 on exactly qn, as a consumer.
func fetchRaw(t *testing.T, qn *qnode, id uuid.UUID, idx int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	cl := qn.client(t)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 13, -1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = idx, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch from node %d: %v", qn.id, kerr.ErrorForCode(p.ErrorCode))
	}
	return p
}

// produceAcksAll produces one record with acks=all and timeout_ms to partition 0 on
// exactly qn and returns the partition's error code.
func produceAcksAll(t *testing.T, qn *qnode, topic string, timeoutMs int32) int16 {
	t.Helper()
	cl := qn.client(t)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 11, -1, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte("timed-out"), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		t.Fatal(err)
	}
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestReplicationISRShrinksAndExpands: a follower that stops fetching (crashed, its
// broker not yet fenced) leaves the ISR after replica.lag.time.max.ms by the leader's
// AlterPartition through the controller, after which acks=all completes with the ISR
// that is left; back and caught up, it joins again. With min.insync.replicas above the
// ISR, acks=all is refused before the append with NOT_ENOUGH_REPLICAS.
func TestReplicationISRShrinksAndExpands(t *testing.T) {
	rc := startReplicated(t, "isr", map[string]string{"replica.lag.time.max.ms": "600", "broker.session.timeout.ms": "6000"})
	c, L, F, S := rc.qcluster, rc.L, rc.F, rc.S
	rc.crashable(S)
	pc := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("all three")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rc.crash(S)
	// Waits for S until it is out of the ISR, then completes with L and F.
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("two of three")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with S stopped: %v", err)
	}
	c.waitAll("S leaves the ISR", isrIs(rc.topic, L.id, F.id))
	if b := L.srv.Broker().Image().Broker(S.id); b == nil || b.Fenced {
		t.Fatalf("S was fenced before the leader shrank the ISR: %+v", b)
	}
	if hw := L.srv.Broker().Partition(rc.topic, 0).HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after two acknowledged records", hw)
	}

	c.start(S.id, nil)
	c.waitAll("S joins the ISR again", isrIs(rc.topic, L.id, F.id, S.id))

	// min.insync.replicas=3 with S stopped again: refused before the append.
	c.alterTopicConfig(L, rc.topic, "min.insync.replicas", "3")
	rc.crash(S)
	// A follower that has all of the leader's log stays caught up (as in Kafka, until
	// the controller fences its broker): an append leaves S behind.
	ac := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := ac.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("acks=1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.waitAll("S leaves the ISR again", isrIs(rc.topic, L.id, F.id))
	lp := L.srv.Broker().Partition(rc.topic, 0)
	c.waitReplicas("the leader applies the ISR", rc.topic, 0, func(map[int32]*partition.Partition) bool { return len(lp.ISR()) == 2 })
	leo := lp.LogEndOffset()
	if code := produceAcksAll(t, L, rc.topic, 5000); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR 2 < min.insync.replicas 3: %v", kerr.ErrorForCode(code))
	}
	if lp.LogEndOffset() != leo {
		t.Fatalf("a refused acks=all batch was appended: log end %d, was %d", lp.LogEndOffset(), leo)
	}
}

// TestReplicationOffsetCommitWaitsForISR: with __consumer_offsets replicated, an offset
// commit is answered once the in-sync replicas have it: with an ISR member crashed (not
// yet fenced by the controller nor dropped from the ISR by the leader) it fails after
// request.timeout.ms instead of being acknowledged from the leader's log alone.
func TestReplicationOffsetCommitWaitsForISR(t *testing.T) {
	rc := startReplicated(t, broker.ConsumerOffsetsTopic, map[string]string{
		"offsets.topic.num.partitions": "1", "request.timeout.ms": "1500", "broker.session.timeout.ms": "30000"})
	L, S := rc.L, rc.S
	rc.crashable(S)
	// The client gives up on a retriable error after a few seconds, not kgo's 30.
	adm := kadm.NewClient(L.client(t, kgo.RetryTimeout(4*time.Second)))
	commit := func() error {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: broker.ConsumerOffsetsTopic, Partition: 0, At: 0, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctxT(t), "g", offs)
		if err != nil {
			return err
		}
		return resp.Error()
	}
	if err := commit(); err != nil {
		t.Fatalf("commit with every replica up: %v", err)
	}
	hw := L.srv.Broker().Partition(broker.ConsumerOffsetsTopic, 0).HighWatermark()
	rc.crash(S)
	if err := commit(); err == nil {
		t.Fatal("an offset commit was acknowledged while an ISR member could not have it")
	}
	if got := L.srv.Broker().Partition(broker.ConsumerOffsetsTopic, 0).HighWatermark(); got != hw {
		t.Fatalf("high watermark moved from %d to %d with an ISR member stopped", hw, got)
	}
	if !isrIs(rc.topic, L.id, rc.F.id, S.id)(L.srv.Broker().Image()) {
		t.Fatal("S left the ISR during the test: lengthen the controller's session timeout")
	}
}

// TestReplicationRestartKeepsHighWatermark: a leader restarted with uncommitted records
// at the end of its log shows consumers only what was committed: its high watermark
// comes back from replication-offset-checkpoint, not from the log end. S, in the ISR,
// crashes after the first records, so nothing more commits; L restarts (its leadership
// moves to F meanwhile, and it comes back as F's follower, F's log being its own).
func TestReplicationRestartKeepsHighWatermark(t *testing.T) {
	rc := startReplicated(t, "restart-hw", map[string]string{"broker.session.timeout.ms": "30000"})
	c, L, S, topic := rc.qcluster, rc.L, rc.S, rc.topic
	rc.crashable(S)
	pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 5
	for i := 0; i < n; i++ {
		if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc.crash(S)
	lp := L.srv.Broker().Partition(topic, 0)
	ac := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for i := 0; i < 3; i++ {
		if err := ac.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("uncommitted")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if leo, hw := lp.LogEndOffset(), lp.HighWatermark(); leo != n+3 || hw != n {
		t.Fatalf("log end %d, high watermark %d; want %d, %d", leo, hw, n+3, n)
	}

	// L restarts (the quorum goes on with the others once L is back).
	c.leader() // S may have led the quorum: L's controlled shutdown needs a controller
	c.stop(L.id)
	c.start(L.id, nil)
	c.waitReplicas("L hosts its replica again", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id] != nil && ps[L.id].Replicated()
	})
	lp = L.srv.Broker().Partition(topic, 0)
	if leo, hw := lp.LogEndOffset(), lp.HighWatermark(); leo != n+3 || hw != n {
		t.Fatalf("after the restart: log end %d, high watermark %d; want %d, %d", leo, hw, n+3, n)
	}
	got := rc.fetchV(t, L, 16, "", -1, -1, -1)
	if offs, vals := recordValues(t, got.RecordBatches); got.ErrorCode != 0 || got.HighWatermark != n || len(offs) != n || vals[n-1] != "committed" {
		t.Fatalf("a consumer after the restart: %v, high watermark %d, %d records", kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, len(offs))
	}
}

// Replicas added to a partition (reopened as a replica, keeping its high watermark):
// TestReassignmentAddsAReplica in replication_reassign_test.go.

// TestReplicationCommittedOffsetSurvivesFailover: an offset commit acknowledged by the
// coordinator on L is there when the coordinator moves to F, although F, a follower
// until then, had not yet learned the high watermark that covers it (followers learn it
// on their next fetch, which long-polls): the new coordinator loads its partition to
// the log end, as Kafka's does, not to the high watermark.
func TestReplicationCommittedOffsetSurvivesFailover(t *testing.T) {
	rc := startReplicated(t, broker.ConsumerOffsetsTopic, map[string]string{
		"offsets.topic.num.partitions": "1", "replica.fetch.wait.max.ms": "20000", "broker.session.timeout.ms": "30000"})
	c, L, F, S := rc.qcluster, rc.L, rc.F, rc.S
	rc.crashable(S)
	commit := func(at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: broker.ConsumerOffsetsTopic, Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := kadm.NewClient(L.client(t)).CommitOffsets(ctxT(t), "g", offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %d: %v", at, err)
		}
	}
	commit(1)
	commit(2) // acknowledged once L's high watermark passed it
	lp := L.srv.Broker().Partition(broker.ConsumerOffsetsTopic, 0)
	fp := F.srv.Broker().Partition(broker.ConsumerOffsetsTopic, 0)
	if fp.LogEndOffset() != lp.LogEndOffset() || fp.HighWatermark() >= lp.HighWatermark() {
		t.Fatalf("F has log end %d and high watermark %d, L %d and %d: the test wants F behind on the high watermark only",
			fp.LogEndOffset(), fp.HighWatermark(), lp.LogEndOffset(), lp.HighWatermark())
	}
	// S crashes (still in the ISR), so F's high watermark cannot move once it leads; L
	// stops, and the controller moves its leadership to F, next in the ISR.
	rc.crash(S)
	c.leader() // S may have led the quorum: L's controlled shutdown needs a controller
	c.stop(L.id)
	c.waitReplicas("F leads", rc.topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[F.id].Role() == partition.RoleLeader
	})
	fetched, err := kadm.NewClient(F.client(t)).FetchOffsets(ctxT(t), "g")
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets from F: %v", err)
	}
	if o, ok := fetched.Lookup(broker.ConsumerOffsetsTopic, 0); !ok || o.At != 2 {
		t.Fatalf("after the failover the committed offset is %+v (found %v), 2 was acknowledged", o, ok)
	}
}
