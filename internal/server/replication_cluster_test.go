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
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
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
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/vfs"
)

// propose commits records through the quorum leader lead.
func (c *qcluster) propose(lead *qnode, rs ...metadata.Record) {
	c.t.Helper()
	data, err := metadata.AppendBatch(nil, rs)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := lead.srv.Broker().Quorum().Propose(ctxT(c.t), data); err != nil {
		c.t.Fatalf("propose %T: %v", rs[0], err)
	}
}

// register registers qn as a broker through the quorum leader's writer (a node that
// does not lead the quorum cannot register itself until requests are forwarded to the
// controller).
func (c *qcluster) register(lead, qn *qnode) { c.registerRack(lead, qn, "") }

// registerRack registers qn in broker.rack rack.
func (c *qcluster) registerRack(lead, qn *qnode, rack string) {
	c.t.Helper()
	host, ps, err := net.SplitHostPort(qn.srv.Addrs()[0])
	if err != nil {
		c.t.Fatal(err)
	}
	port, _ := strconv.Atoi(ps)
	reg := broker.Registration{ID: qn.id, IncarnationID: uuid.New(), ClusterID: lead.srv.Broker().ClusterID(), Rack: rack,
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: host, Port: uint16(port), SecurityProtocol: metadata.ProtocolPlaintext}}}
	if _, err := lead.srv.Broker().Writer().RegisterBroker(ctxT(c.t), reg); err != nil {
		c.t.Fatalf("register node %d: %v", qn.id, err)
	}
}

// registerAfterFailover registers qn through the quorum's leader, whichever node that
// turns out to be once the quorum settles after a leader's restart.
func (c *qcluster) registerAfterFailover(qn *qnode) {
	c.t.Helper()
	ctx := ctxT(c.t)
	for {
		lead := c.leader()
		l, changed := lead.srv.Broker().Quorum().Leader()
		if l.LeaderID == uint64(lead.id) {
			host, ps, _ := net.SplitHostPort(qn.srv.Addrs()[0])
			port, _ := strconv.Atoi(ps)
			reg := broker.Registration{ID: qn.id, IncarnationID: uuid.New(), ClusterID: lead.srv.Broker().ClusterID(),
				Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: host, Port: uint16(port), SecurityProtocol: metadata.ProtocolPlaintext}}}
			_, err := lead.srv.Broker().Writer().RegisterBroker(ctx, reg)
			if err == nil {
				return
			}
			if !errors.Is(err, quorum.ErrNotLeader) {
				c.t.Fatalf("register node %d: %v", qn.id, err)
			}
		}
		select { // the view of a node that just restarted, or just lost its lead, moves on
		case <-changed:
		case <-ctx.Done():
			c.t.Fatalf("register node %d: %v", qn.id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
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
}

// startReplicated starts three nodes with the overrides over and creates topic with one
// partition on all three, min.insync.replicas=2, as the controller would place it.
func startReplicated(t *testing.T, topic string, over map[string]string) *replicatedCluster {
	t.Helper()
	ov := map[string]string{"replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50"}
	for k, v := range over {
		ov[k] = v
	}
	c := startQuorumCluster(t, 3, ov)
	lead := c.leader()
	var others []*qnode
	for _, qn := range c.running() {
		if qn != lead {
			others = append(others, qn)
		}
	}
	rc := &replicatedCluster{qcluster: c, L: lead, F: others[0], S: others[1], topic: topic, id: uuid.New()}
	for _, qn := range others {
		c.register(lead, qn)
	}
	two := "2"
	replicas := []int32{rc.L.id, rc.F.id, rc.S.id}
	c.propose(lead,
		&metadata.TopicRecord{Name: topic, ID: rc.id},
		&metadata.PartitionRecord{TopicID: rc.id, Partition: 0, Replicas: replicas, ISR: replicas, Leader: rc.L.id})
	c.propose(lead, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: topic, Name: "min.insync.replicas", Value: &two})
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
	rc := startReplicated(t, "replicated", nil)
	c, L, F, S, topic, id := rc.qcluster, rc.L, rc.F, rc.S, rc.topic, rc.id
	lead, others := L, []*qnode{F, S}

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

	// S stops. The ISR still names it, so the high watermark waits for it.
	c.stop(S.id)
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

	// Leadership moves to S, which comes back with only the committed records.
	im := lead.srv.Broker().Image()
	mp := im.Topic(topic).Partition(0)
	c.propose(lead, &metadata.PartitionChangeRecord{TopicID: id, Partition: 0, PartitionEpoch: mp.PartitionEpoch,
		Set: metadata.SetLeader, Leader: S.id})
	c.start(S.id, nil)
	c.register(lead, S) // its client listener moved
	c.waitReplicas("S leads, L and F follow it", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for id, p := range ps {
			want := partition.RoleFollower
			if id == S.id {
				want = partition.RoleLeader
			}
			if p == nil || p.Role() != want || p.LeaderEpoch() != mp.LeaderEpoch+1 {
				return false
			}
		}
		return true
	})
	// L truncated what S never had (the acks=1 records and the timed-out batch).
	c.waitReplicas("L truncates to S's log", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id].LogEndOffset() == n
	})

	// The idempotent producer goes on, now on S.
	for i := 0; i < 5; i++ {
		produce(200+i*20, 20)
	}
	total := int64(len(acked))
	c.waitReplicas("all replicas have every acknowledged record", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for _, p := range ps {
			if p.LogEndOffset() != total || p.HighWatermark() != total {
				return false
			}
		}
		return true
	})
	sp := S.srv.Broker().Partition(topic, 0)
	want = logBytes(t, sp, total)
	for _, qn := range []*qnode{L, F} {
		if got := logBytes(t, qn.srv.Broker().Partition(topic, 0), total); !bytes.Equal(got, want) {
			t.Fatalf("node %d's log differs from the new leader's (%d vs %d bytes)", qn.id, len(got), len(want))
		}
	}
	offs, vals := recordValues(t, want)
	if len(vals) != len(acked) {
		t.Fatalf("the log holds %d records, %d were acknowledged", len(vals), len(acked))
	}
	for i := range vals {
		if vals[i] != acked[i] || offs[i] != int64(i) {
			t.Fatalf("offset %d holds %q, the %dth acknowledged record is %q", offs[i], vals[i], i, acked[i])
		}
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

// isrController stands in for the active controller's AlterPartition (until it is
// wired): it checks the epochs against the image, commits the new ISR as a
// PartitionChangeRecord through the quorum leader and answers with the committed state.
type isrController struct {
	c    *qcluster
	lead *qnode
}

func (ic *isrController) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	b := ic.lead.srv.Broker()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.TopidID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			t := b.Image().TopicByID(rt.TopicID)
			mp := t.Partition(rp.Partition)
			switch {
			case rp.LeaderEpoch != mp.LeaderEpoch:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.PartitionEpoch != mp.PartitionEpoch:
				sp.ErrorCode = kerr.InvalidUpdateVersion.Code
			default:
				var isr []int32
				for _, m := range rp.NewEpochISR {
					isr = append(isr, m.BrokerID)
				}
				data, err := metadata.AppendBatch(nil, []metadata.Record{&metadata.PartitionChangeRecord{TopicID: rt.TopicID,
					Partition: rp.Partition, PartitionEpoch: mp.PartitionEpoch, Set: metadata.SetISR, ISR: isr}})
				if err != nil {
					return nil, err
				}
				if _, err := b.Quorum().Propose(ctx, data); err != nil {
					return nil, err
				}
				np := b.Image().TopicByID(rt.TopicID).Partition(rp.Partition)
				sp.LeaderID, sp.LeaderEpoch, sp.PartitionEpoch, sp.ISR = np.Leader, np.LeaderEpoch, np.PartitionEpoch, np.ISR()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// TestReplicationISRShrinksAndExpands: a follower that stops fetching leaves the ISR
// after replica.lag.time.max.ms by an AlterPartition, after which acks=all completes
// with the ISR that is left; back and caught up, it joins again. With
// min.insync.replicas above the ISR, acks=all is refused before the append with
// NOT_ENOUGH_REPLICAS.
func TestReplicationISRShrinksAndExpands(t *testing.T) {
	rc := startReplicated(t, "isr", map[string]string{"replica.lag.time.max.ms": "600"})
	c, L, F, S := rc.qcluster, rc.L, rc.F, rc.S
	L.srv.Broker().SetISRSender(&isrController{c: c, lead: L})
	isrIs := func(want ...int32) func(*metadata.Image) bool {
		return func(im *metadata.Image) bool {
			got := slices.Sorted(slices.Values(im.Topic(rc.topic).Partition(0).ISR()))
			slices.Sort(want)
			return slices.Equal(got, want)
		}
	}
	pc := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("all three")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	c.stop(S.id)
	// Waits for S until it is out of the ISR, then completes with L and F.
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("two of three")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with S stopped: %v", err)
	}
	c.waitAll("S leaves the ISR", isrIs(L.id, F.id))
	if hw := L.srv.Broker().Partition(rc.topic, 0).HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after two acknowledged records", hw)
	}

	c.start(S.id, nil)
	c.register(L, S)
	c.waitAll("S joins the ISR again", isrIs(L.id, F.id, S.id))

	// min.insync.replicas=3 with S stopped again: refused before the append.
	three := "3"
	c.propose(L, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: rc.topic, Name: "min.insync.replicas", Value: &three})
	c.stop(S.id)
	// A follower that has all of the leader's log stays caught up (as in Kafka, until
	// the controller fences its broker): an append leaves S behind.
	ac := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := ac.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("acks=1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.waitAll("S leaves the ISR again", isrIs(L.id, F.id))
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
// commit is answered once the in-sync replicas have it: with an ISR member stopped (and
// no controller to shrink the ISR) it fails after request.timeout.ms instead of being
// acknowledged from the leader's log alone.
func TestReplicationOffsetCommitWaitsForISR(t *testing.T) {
	rc := startReplicated(t, broker.ConsumerOffsetsTopic, map[string]string{
		"offsets.topic.num.partitions": "1", "request.timeout.ms": "1500"})
	c, L, S := rc.qcluster, rc.L, rc.S
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
	c.stop(S.id)
	if err := commit(); err == nil {
		t.Fatal("an offset commit was acknowledged while an ISR member could not have it")
	}
	if got := L.srv.Broker().Partition(broker.ConsumerOffsetsTopic, 0).HighWatermark(); got != hw {
		t.Fatalf("high watermark moved from %d to %d with an ISR member stopped", hw, got)
	}
}

// TestReplicationRestartKeepsHighWatermark: a leader restarted with uncommitted records
// at the end of its log shows consumers only what was committed: its high watermark
// comes back from replication-offset-checkpoint, not from the log end. The partition's
// ISR names a broker that never fetches (registered, never started), so after the first
// records nothing more commits.
func TestReplicationRestartKeepsHighWatermark(t *testing.T) {
	c := startQuorumCluster(t, 3, map[string]string{"replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50"})
	L := c.leader()
	var F *qnode
	for _, qn := range c.running() {
		if qn != L {
			c.register(L, qn)
			F = qn
		}
	}
	ghost := &broker.Registration{ID: 9, IncarnationID: uuid.New(), ClusterID: L.srv.Broker().ClusterID(),
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 1, SecurityProtocol: metadata.ProtocolPlaintext}}}
	if _, err := L.srv.Broker().Writer().RegisterBroker(ctxT(t), *ghost); err != nil {
		t.Fatal(err)
	}
	const topic = "restart-hw"
	rc := &replicatedCluster{qcluster: c, L: L, F: F, topic: topic, id: uuid.New()}
	c.propose(L, &metadata.TopicRecord{Name: topic, ID: rc.id},
		&metadata.PartitionRecord{TopicID: rc.id, Partition: 0, Replicas: []int32{L.id, F.id, 9}, ISR: []int32{L.id, F.id}, Leader: L.id})
	c.waitReplicas("L leads", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id] != nil && ps[L.id].Role() == partition.RoleLeader
	})
	pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 5
	for i := 0; i < n; i++ {
		if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The ghost joins the ISR: nothing commits from here on.
	mp := L.srv.Broker().Image().Topic(topic).Partition(0)
	c.propose(L, &metadata.PartitionChangeRecord{TopicID: rc.id, Partition: 0, PartitionEpoch: mp.PartitionEpoch,
		Set: metadata.SetISR, ISR: []int32{L.id, F.id, 9}})
	lp := L.srv.Broker().Partition(topic, 0)
	c.waitReplicas("L applies the ISR", topic, 0, func(map[int32]*partition.Partition) bool { return len(lp.ISR()) == 3 })
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

	// L restarts (the quorum goes on with the other two); it leads the partition again.
	c.stop(L.id)
	c.start(L.id, nil)
	c.registerAfterFailover(L)
	c.waitReplicas("L leads again", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id] != nil && ps[L.id].Role() == partition.RoleLeader
	})
	lp = L.srv.Broker().Partition(topic, 0)
	if leo, hw := lp.LogEndOffset(), lp.HighWatermark(); leo != n+3 || hw != n {
		t.Fatalf("after the restart: log end %d, high watermark %d; want %d, %d", leo, hw, n+3, n)
	}
	got := rc.fetchV(t, L, 16, "", -1, -1, -1)
	if offs, vals := recordValues(t, got.RecordBatches); got.HighWatermark != n || len(offs) != n || vals[n-1] != "committed" {
		t.Fatalf("a consumer after the restart: high watermark %d, %d records", got.HighWatermark, len(offs))
	}
}

// TestReplicationReplicasAdded: a partition with one replica that the metadata then
// places on three brokers (replicas added, the ISR still its first) is reopened as a
// replica, keeping its high watermark; the new replicas copy its log, join the ISR by
// AlterPartition, and acks=all then waits for them.
func TestReplicationReplicasAdded(t *testing.T) {
	c := startQuorumCluster(t, 3, map[string]string{"replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50"})
	L := c.leader()
	var others []*qnode
	for _, qn := range c.running() {
		if qn != L {
			c.register(L, qn)
			others = append(others, qn)
		}
	}
	L.srv.Broker().SetISRSender(&isrController{c: c, lead: L})
	const topic = "grows"
	id := uuid.New()
	c.propose(L, &metadata.TopicRecord{Name: topic, ID: id},
		&metadata.PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{L.id}, ISR: []int32{L.id}, Leader: L.id})
	c.waitReplicas("L hosts it alone", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id] != nil && !ps[L.id].Replicated()
	})
	pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 5
	for i := 0; i < n; i++ {
		if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	all := []int32{L.id, others[0].id, others[1].id}
	c.propose(L, &metadata.PartitionChangeRecord{TopicID: id, Partition: 0, PartitionEpoch: 0,
		Set: metadata.SetReplicas, Replicas: all})
	c.waitReplicas("L is a replica and leads", topic, 0, func(ps map[int32]*partition.Partition) bool {
		p := ps[L.id]
		return p != nil && p.Replicated() && p.Role() == partition.RoleLeader
	})
	if hw := L.srv.Broker().Partition(topic, 0).HighWatermark(); hw != n {
		t.Fatalf("reopened as a replica, the high watermark is %d, was %d", hw, n)
	}
	c.waitAll("the new replicas join the ISR", func(im *metadata.Image) bool {
		return len(im.Topic(topic).Partition(0).ISR()) == 3
	})
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(n))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.waitReplicas("every replica has every record", topic, 0, func(ps map[int32]*partition.Partition) bool {
		for _, p := range ps {
			if p == nil || p.LogEndOffset() != n+1 || p.HighWatermark() != n+1 {
				return false
			}
		}
		return true
	})
	want := logBytes(t, L.srv.Broker().Partition(topic, 0), n+1)
	for _, qn := range others {
		if got := logBytes(t, qn.srv.Broker().Partition(topic, 0), n+1); !bytes.Equal(got, want) {
			t.Fatalf("node %d's copy differs from the leader's", qn.id)
		}
	}
}

// TestReplicationCommittedOffsetSurvivesFailover: an offset commit acknowledged by the
// coordinator on L is there when the coordinator moves to F, although F, a follower
// until then, had not yet learned the high watermark that covers it (followers learn it
// on their next fetch, which long-polls): the new coordinator loads its partition to
// the log end, as Kafka's does, not to the high watermark.
func TestReplicationCommittedOffsetSurvivesFailover(t *testing.T) {
	rc := startReplicated(t, broker.ConsumerOffsetsTopic, map[string]string{
		"offsets.topic.num.partitions": "1", "replica.fetch.wait.max.ms": "20000"})
	c, L, F, S := rc.qcluster, rc.L, rc.F, rc.S
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
	// S stops, so F's high watermark cannot move once it leads; F takes over.
	c.stop(S.id)
	mp := L.srv.Broker().Image().Topic(rc.topic).Partition(0)
	c.propose(L, &metadata.PartitionChangeRecord{TopicID: rc.id, Partition: 0, PartitionEpoch: mp.PartitionEpoch,
		Set: metadata.SetLeader, Leader: F.id})
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
