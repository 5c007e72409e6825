package controller

// The Controller with its goroutines, inside testing/synctest bubbles: time is virtual
// (sessions expire as the bubble's clock moves), the log is the shared fake, and a
// bubble cannot end while a goroutine of the controller still runs, so Close must stop
// them all.

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

func startController(t *testing.T, log *sharedLog, id uint64) *Controller {
	t.Helper()
	cfg := testConfig()
	cfg.NodeID = int32(id)
	c, err := New(cfg, log.node(id), log.sms[id].Image, quorum.SystemClock(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// brokerClient plays a broker against a controller: it registers and heartbeats with
// its node's image offset.
type brokerClient struct {
	t     *testing.T
	c     *Controller
	id    int32
	epoch int64
	image func() *metadata.Image
}

func (b *brokerClient) register() {
	b.t.Helper()
	resp := b.c.Handle(context.Background(), registration(b.id, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		b.t.Fatalf("register %d: %s", b.id, codeName(resp.ErrorCode))
	}
	b.epoch = resp.BrokerEpoch
}

func (b *brokerClient) beat(mod ...func(*kmsg.BrokerHeartbeatRequest)) *kmsg.BrokerHeartbeatResponse {
	r := heartbeat(b.id, b.epoch, int64(b.image().Offset().Index))
	for _, m := range mod {
		m(r)
	}
	return b.c.Handle(context.Background(), r).(*kmsg.BrokerHeartbeatResponse)
}

func TestControllerRegistrationAndFencing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1)
		c := startController(t, log, 1)
		synctest.Wait()
		if c.Active() {
			t.Fatal("active without leading the quorum")
		}
		if resp := c.Handle(context.Background(), registration(1, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse); resp.ErrorCode != kerr.NotController.Code {
			t.Fatalf("registration on a standby: %s", codeName(resp.ErrorCode))
		}
		log.setLeader(1, 1)
		synctest.Wait()
		if !c.Active() || log.sms[1].Image().ClusterID() != testClusterID {
			t.Fatalf("active %v, cluster ID %q", c.Active(), log.sms[1].Image().ClusterID())
		}
		brokers := make([]*brokerClient, 3)
		for i := range brokers {
			brokers[i] = &brokerClient{t: t, c: c, id: int32(i + 1), image: log.sms[1].Image}
			brokers[i].register()
			if !log.sms[1].Image().Broker(brokers[i].id).Fenced {
				t.Fatal("a broker registered unfenced")
			}
			if hb := brokers[i].beat(); hb.IsFenced || !hb.IsCaughtUp {
				t.Fatalf("broker %d caught up but: %+v", i+1, hb)
			}
		}
		resp := c.Handle(context.Background(), createTopic("t", 6, 3)).(*kmsg.CreateTopicsResponse)
		if resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create: %s", codeName(resp.Topics[0].ErrorCode))
		}
		// Brokers 2 and 3 heartbeat every 2 s; broker 1 stops.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				brokers[1].beat()
				brokers[2].beat()
				select {
				case <-time.After(2 * time.Second):
				case <-ctx.Done():
				}
			}
		}()
		time.Sleep(8 * time.Second)
		synctest.Wait()
		if log.sms[1].Image().Broker(1).Fenced {
			t.Fatal("broker 1 fenced before its session timeout")
		}
		time.Sleep(2 * time.Second) // past 9 s and the next session check
		synctest.Wait()
		im := log.sms[1].Image()
		if !im.Broker(1).Fenced || im.Broker(2).Fenced || im.Broker(3).Fenced {
			t.Fatalf("fenced: %v %v %v, want only broker 1", im.Broker(1).Fenced, im.Broker(2).Fenced, im.Broker(3).Fenced)
		}
		for i, p := range im.Topic("t").Partitions {
			if p.Leader == 1 || p.Leader == metadata.NoLeader || slices.Contains(p.ISR(), 1) {
				t.Fatalf("partition %d after broker 1 was fenced: leader %d isr %v", i, p.Leader, p.ISR())
			}
		}
		cancel()
		<-done
		if log.refused() != 0 {
			t.Fatal("a node refused an entry")
		}
	})
}

func TestControllerControlledShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1)
		log.setLeader(1, 1)
		c := startController(t, log, 1)
		synctest.Wait()
		a := &brokerClient{t: t, c: c, id: 1, image: log.sms[1].Image}
		b := &brokerClient{t: t, c: c, id: 2, image: log.sms[1].Image}
		for _, x := range []*brokerClient{a, b} {
			x.register()
			x.beat()
		}
		c.Handle(context.Background(), createTopic("t", 4, 2))
		shutdown := func(r *kmsg.BrokerHeartbeatRequest) { r.WantShutdown = true }
		if hb := a.beat(shutdown); hb.ShouldShutdown || hb.IsFenced {
			t.Fatalf("first shutdown heartbeat: %+v", hb)
		}
		for i, p := range log.sms[1].Image().Topic("t").Partitions {
			if p.Leader != 2 || !slices.Equal(p.ISR(), []int32{2}) {
				t.Fatalf("partition %d during broker 1's controlled shutdown: leader %d isr %v", i, p.Leader, p.ISR())
			}
		}
		b.beat() // broker 2 has seen the leaderships move
		if hb := a.beat(shutdown); !hb.ShouldShutdown {
			t.Fatalf("after the others caught up: %+v", hb)
		}
	})
}

// Losing leadership with a change in flight: its request is answered NOT_CONTROLLER,
// its entry never applies, and the new leader's controller takes over. Two controllers
// share the log; only the leader's acts.
func TestControllerLeadershipMoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1, 2)
		log.setLeader(1, 1)
		c1 := startController(t, log, 1)
		c2 := startController(t, log, 2)
		synctest.Wait()
		if !c1.Active() || c2.Active() {
			t.Fatalf("active: %v %v, want only node 1", c1.Active(), c2.Active())
		}
		b := &brokerClient{t: t, c: c1, id: 1, image: log.sms[1].Image}
		b.register()
		b.beat()
		if r := c2.Handle(context.Background(), createTopic("x", 1, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != kerr.NotController.Code {
			t.Fatalf("create on the standby: %s", codeName(r.Topics[0].ErrorCode))
		}
		log.setManual(true)
		answer := make(chan kmsg.Response, 1)
		go func() { answer <- c1.Handle(context.Background(), createTopic("lost", 1, 1)) }()
		synctest.Wait()
		if log.numPending() != 1 {
			t.Fatalf("%d proposals pending, want 1", log.numPending())
		}
		log.setLeader(2, 2)
		synctest.Wait()
		if c := (<-answer).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; c != kerr.NotController.Code {
			t.Fatalf("the request in flight when leadership moved: %s", codeName(c))
		}
		log.commit(log.numPending()) // node 2's activation NoOp
		synctest.Wait()
		if c1.Active() || !c2.Active() {
			t.Fatalf("active: %v %v, want only node 2", c1.Active(), c2.Active())
		}
		log.setManual(false)
		b.c, b.image = c2, log.sms[2].Image
		if hb := b.beat(); hb.ErrorCode != 0 || hb.IsFenced {
			t.Fatalf("heartbeat to the new controller: %+v", hb)
		}
		if r := c2.Handle(context.Background(), createTopic("kept", 1, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("create on the new controller: %s", codeName(r.Topics[0].ErrorCode))
		}
		for id, sm := range log.sms {
			im := sm.Image()
			if im.Topic("lost") != nil || im.Topic("kept") == nil {
				t.Fatalf("node %d: topics %v", id, im.TopicNames())
			}
		}
		a1, _ := metadata.AppendSnapshot(nil, log.sms[1].Image())
		a2, _ := metadata.AppendSnapshot(nil, log.sms[2].Image())
		if !slices.Equal(a1, a2) || log.refused() != 0 {
			t.Fatal("the nodes' images differ, or one refused an entry")
		}
	})
}

// A request whose context ends first is answered REQUEST_TIMED_OUT; Close answers what
// still waits NOT_CONTROLLER and stops every goroutine (the bubble checks).
func TestControllerTimeoutAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1)
		log.setLeader(1, 1)
		c := startController(t, log, 1)
		synctest.Wait()
		b := &brokerClient{t: t, c: c, id: 1, image: log.sms[1].Image}
		b.register()
		b.beat()
		log.setManual(true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if r := c.Handle(ctx, createTopic("slow", 1, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != kerr.RequestTimedOut.Code {
			t.Fatalf("a request whose context ended: %s", codeName(r.Topics[0].ErrorCode))
		}
		answer := make(chan kmsg.Response, 1)
		go func() { answer <- c.Handle(context.Background(), createTopic("waiting", 1, 1)) }()
		synctest.Wait()
		c.Close()
		if code := (<-answer).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.NotController.Code {
			t.Fatalf("a request waiting at Close: %s", codeName(code))
		}
		if r := c.Handle(context.Background(), createTopic("after", 1, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != kerr.NotController.Code {
			t.Fatalf("a request after Close: %s", codeName(r.Topics[0].ErrorCode))
		}
	})
}

func TestControllerRaftAPIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1)
		c := startController(t, log, 1)
		synctest.Wait()
		dq := kmsg.NewPtrDescribeQuorumRequest()
		dq.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
		dq.Version = 2
		resp := c.Handle(context.Background(), dq).(*kmsg.DescribeQuorumResponse)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("DescribeQuorum off the leader: %s", codeName(p.ErrorCode))
		}
		log.setLeader(1, 3)
		synctest.Wait()
		now := time.Now()
		log.status = quorum.Status{CommitIndex: 12, LastIndex: 12,
			Voters:    []quorum.Replica{{ID: 1, Addr: "127.0.0.1:9093", MatchIndex: 12, LastContact: now, LastCaughtUp: now}, {ID: 2, Addr: "127.0.0.1:9094", MatchIndex: 10, LastContact: now.Add(-time.Second)}, {ID: 3, Addr: "127.0.0.1:9095"}},
			Observers: []quorum.Replica{{ID: 4, MatchIndex: 7, LastContact: now}}}
		resp = c.Handle(context.Background(), dq).(*kmsg.DescribeQuorumResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 1 || p.LeaderEpoch != 3 || p.HighWatermark != 12 || len(p.CurrentVoters) != 3 || len(p.Observers) != 1 {
			t.Fatalf("DescribeQuorum: %+v", p)
		}
		if v := p.CurrentVoters[1]; v.ReplicaID != 2 || v.LogEndOffset != 10 || v.LastFetchTimestamp != now.Add(-time.Second).UnixMilli() || v.LastCaughtUpTimestamp != -1 {
			t.Fatalf("voter 2: %+v", v)
		}
		if v := p.CurrentVoters[2]; v.LogEndOffset != -1 || v.LastFetchTimestamp != -1 {
			t.Fatalf("a voter never heard from: %+v", v)
		}
		if len(resp.Nodes) != 3 || resp.Nodes[1].Listeners[0].Port != 9094 || resp.Nodes[1].Listeners[0].Name != "CONTROLLER" {
			t.Fatalf("nodes: %+v", resp.Nodes)
		}
		bad := kmsg.NewPtrDescribeQuorumRequest()
		bad.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: "other", Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
		if p := c.Handle(context.Background(), bad).(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("DescribeQuorum of another topic: %s", codeName(p.ErrorCode))
		}

		// AddRaftVoter: a new node is added as an observer, then promoted once it has
		// caught up (the first attempt finds it behind).
		add := kmsg.NewPtrAddRaftVoterRequest()
		add.VoterID, add.TimeoutMillis = 5, 30000
		add.Listeners = []kmsg.AddRaftVoterRequestListener{{Name: "CONTROLLER", Host: "10.0.0.5", Port: 9093}}
		log.confErr["promote"] = []error{quorum.ErrNotCaughtUp}
		if r := c.Handle(context.Background(), add).(*kmsg.AddRaftVoterResponse); r.ErrorCode != 0 {
			t.Fatalf("AddRaftVoter: %s %s", codeName(r.ErrorCode), str(r.ErrorMessage))
		}
		if want := []string{"add 10.0.0.5:9093", "promote", "promote"}; !slices.Equal(log.calls, want) {
			t.Fatalf("membership calls %v, want %v", log.calls, want)
		}
		add.VoterID = 2
		if r := c.Handle(context.Background(), add).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.DuplicateVoter.Code {
			t.Fatalf("AddRaftVoter of a voter: %s", codeName(r.ErrorCode))
		}
		add.VoterID, add.ClusterID = 6, new("another")
		if r := c.Handle(context.Background(), add).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.InconsistentClusterID.Code {
			t.Fatalf("AddRaftVoter of another cluster: %s", codeName(r.ErrorCode))
		}
		// A node that never catches up: REQUEST_TIMED_OUT at the request's timeout.
		add.ClusterID, add.TimeoutMillis = nil, 1000
		log.confErr["promote"] = slices.Repeat([]error{quorum.ErrNotCaughtUp}, 100)
		if r := c.Handle(context.Background(), add).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.RequestTimedOut.Code {
			t.Fatalf("AddRaftVoter of a node that never catches up: %s", codeName(r.ErrorCode))
		}
		log.confErr["promote"] = nil

		rm := kmsg.NewPtrRemoveRaftVoterRequest()
		rm.VoterID = 3
		if r := c.Handle(context.Background(), rm).(*kmsg.RemoveRaftVoterResponse); r.ErrorCode != 0 {
			t.Fatalf("RemoveRaftVoter: %s", codeName(r.ErrorCode))
		}
		log.confErr["remove"] = []error{quorum.ErrVoterNotFound, &quorum.NotLeaderError{LeaderID: 2}}
		for _, want := range []*kerr.Error{kerr.VoterNotFound, kerr.NotLeaderForPartition} {
			if r := c.Handle(context.Background(), rm).(*kmsg.RemoveRaftVoterResponse); r.ErrorCode != want.Code {
				t.Fatalf("RemoveRaftVoter: %s, want %s", codeName(r.ErrorCode), want.Message)
			}
		}
	})
}

// A write the log refuses poisons the writes decided after it, which the writer already
// holds: none of them may be proposed, even before the loop has heard of the failure.
func TestControllerWriterStopsAfterAFailedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1)
		log.setLeader(1, 1)
		c := startController(t, log, 1)
		synctest.Wait()
		b := &brokerClient{t: t, c: c, id: 1, image: log.sms[1].Image}
		b.register()
		b.beat()
		log.setManual(true)
		answers := make(chan kmsg.Response, 3)
		for _, name := range []string{"first", "dropped", "after"} {
			go func() { answers <- c.Handle(context.Background(), createTopic(name, 1, 1)) }()
			synctest.Wait() // decided and queued in this order
		}
		if log.numPending() != 1 {
			t.Fatalf("%d proposals in the log, want 1 (the writer proposes one at a time)", log.numPending())
		}
		log.mu.Lock()
		log.fail = quorum.ErrProposalDropped
		log.mu.Unlock()
		log.commit(1)
		synctest.Wait()
		if n := log.numPending(); n != 0 {
			log.commit(n)
			t.Fatalf("a write decided after a dropped one was proposed (and applied: %v)", log.sms[1].Image().TopicNames())
		}
		got := map[int16]int{}
		for range 3 {
			got[(<-answers).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode]++
		}
		if got[0] != 1 || got[kerr.RequestTimedOut.Code] != 2 {
			t.Fatalf("answers %v, want one success and two REQUEST_TIMED_OUT", got)
		}
	})
}

// A controller that still believes it leads after the quorum moved on (its view of the
// leadership lags): its decision is proposed, refused by the log, never applied, and its
// request answered NOT_CONTROLLER; it stops acting.
func TestControllerStaleLeaderNeverApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newSharedLog(t, 1, 2)
		log.setLeader(1, 1)
		c1 := startController(t, log, 1)
		c2 := startController(t, log, 2)
		synctest.Wait()
		b := &brokerClient{t: t, c: c1, id: 1, image: log.sms[1].Image}
		b.register()
		b.beat()
		log.freezeView(1)
		log.setLeader(2, 2)
		synctest.Wait()
		if !c1.Active() || !c2.Active() {
			t.Fatalf("active: %v %v; want both (node 1 has not heard of the new leader)", c1.Active(), c2.Active())
		}
		r := c1.Handle(context.Background(), createTopic("stale", 1, 1)).(*kmsg.CreateTopicsResponse)
		if r.Topics[0].ErrorCode != kerr.NotController.Code {
			t.Fatalf("a stale leader's change: %s", codeName(r.Topics[0].ErrorCode))
		}
		synctest.Wait()
		if c1.Active() {
			t.Fatal("the stale controller still acts after the log refused it")
		}
		for id, sm := range log.sms {
			if sm.Image().Topic("stale") != nil {
				t.Fatalf("node %d applied the stale leader's change", id)
			}
		}
		if r := c2.Handle(context.Background(), createTopic("fresh", 1, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("the leader's change: %s", codeName(r.Topics[0].ErrorCode))
		}
	})
}
