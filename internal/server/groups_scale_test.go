package server_test

// Group membership at scale and on failure: twenty members that join one group at
// once settle in one generation, and a member that stops heartbeating is removed
// after its session timeout, not before, with its partitions given to the others.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTwentyMembersJoinAtOnce starts twenty franz-go members together. With
// group.initial.rebalance.delay.ms the coordinator holds the first rebalance open
// for more members (Kafka's reason for the delay), so all twenty must land in
// generation 1, each with a share of the partitions, and consume the topic
// exactly once between them.
func TestTwentyMembersJoinAtOnce(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "1500"})
	const group, topic, parts, members = "twenty", "twenty", 40, 20
	n.createTopic(t, topic, parts, nil)
	all := produceN(t, n.producerClient(), topic, parts, "r", parts*5)

	led := newLedger()
	ms := make([]*franzMember, members)
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms[i] = startFranzMember(t, n, led, fmt.Sprintf("m%02d", i), group, topic, kgo.Balancers(kgo.RangeBalancer()))
		}()
	}
	wg.Wait()
	ids := make([]string, members)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%02d", i)
	}
	d := waitStableGroup(t, n.admin(), group, topic, parts, ids...)
	for _, m := range d.Members {
		c, _ := m.Assigned.AsConsumer()
		if got := len(c.Topics[0].Partitions); got != parts/members {
			t.Errorf("member %s has %d partitions, want %d (range over %d members)", m.ClientID, got, parts/members, members)
		}
	}
	led.waitAll(t, values(all), 30*time.Second)
	for _, m := range ms {
		if _, gen := m.cl.GroupMetadata(); gen != 1 {
			t.Errorf("member %s is in generation %d, want all twenty in generation 1", m.name, gen)
		}
	}
	if redelivered := led.check(t, all); redelivered != 0 {
		t.Errorf("%d redeliveries in a group that never rebalanced after generation 1", redelivered)
	}
	if got := len(led.perMember()); got != members {
		t.Errorf("%d members consumed records, want %d", got, members)
	}
	for _, m := range ms {
		m.stop()
	}
	checkCommittedAtEnd(t, n.admin(), group, topic)
}

// rawMember is a classic-protocol member driven request by request, so the test
// decides exactly when it stops heartbeating.
type rawMember struct {
	t        *testing.T
	cl       *kgo.Client
	group    string
	topic    string
	session  time.Duration
	memberID string
	gen      int32
	leader   bool
	members  []kmsg.JoinGroupResponseMember
}

func (r *rawMember) join() {
	r.t.Helper()
	meta := kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{r.topic}}
	for {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = r.group, r.memberID, "consumer"
		req.SessionTimeoutMillis = int32(r.session.Milliseconds())
		req.RebalanceTimeoutMillis = 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctxT(r.t), r.cl)
		if err != nil {
			r.t.Fatalf("join: %v", err)
		}
		r.memberID = resp.MemberID
		if err := kerr.ErrorForCode(resp.ErrorCode); err == kerr.MemberIDRequired {
			continue // KIP-394: join again with the ID the coordinator gave
		} else if err != nil {
			r.t.Fatalf("join: %v", err)
		}
		r.gen, r.leader, r.members = resp.Generation, resp.LeaderID == resp.MemberID, resp.Members
		return
	}
}

// sync sends the leader's assignment (member ID to partitions) or, as a follower,
// an empty one; it returns this member's partitions.
func (r *rawMember) sync(assign map[string][]int32) []int32 {
	r.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = r.group, r.memberID, r.gen
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for id, ps := range assign {
		a := kmsg.ConsumerMemberAssignment{Version: 0, Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: r.topic, Partitions: ps}}}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID, sa.MemberAssignment = id, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, sa)
	}
	resp, err := req.RequestWith(ctxT(r.t), r.cl)
	if err != nil || resp.ErrorCode != 0 {
		r.t.Fatalf("sync: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(resp.MemberAssignment); err != nil {
		r.t.Fatalf("sync: assignment: %v", err)
	}
	var out []int32
	for _, tp := range a.Topics {
		out = append(out, tp.Partitions...)
	}
	return out
}

// commit commits one offset of partition p as this member of its generation.
func (r *rawMember) commit(p int32, at int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = r.group, r.memberID, r.gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = r.topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = p, at
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(r.t), r.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func (r *rawMember) heartbeat() error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = r.group, r.memberID, r.gen
	resp, err := req.RequestWith(ctxT(r.t), r.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// rawLeadsFranz forms a two-member group: a raw member joins first and leads, a
// franz-go member f1 joins, and the raw member, rejoining, assigns itself
// partitions 0 and 1 and f1 partitions 2 and 3.
func rawLeadsFranz(t *testing.T, n *node, led *ledger, group, topic string, session time.Duration) (*rawMember, *franzMember) {
	t.Helper()
	raw := &rawMember{t: t, cl: n.client(kgo.ClientID("raw")), group: group, topic: topic, session: session}
	raw.join()
	if !raw.leader || raw.gen != 1 {
		t.Fatalf("first member: leader %v generation %d, want leader of generation 1", raw.leader, raw.gen)
	}
	raw.sync(map[string][]int32{raw.memberID: {0, 1, 2, 3}})

	// A franz-go member joins; the raw member learns of the rebalance from its
	// heartbeat, rejoins, stays leader and splits the partitions.
	f1 := startFranzMember(t, n, led, "f1", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	for {
		err := raw.heartbeat()
		if err == kerr.RebalanceInProgress {
			break
		}
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // paces the heartbeats that poll for the rebalance
	}
	raw.join()
	if !raw.leader || len(raw.members) != 2 {
		t.Fatalf("rejoin: leader %v with %d members, want leader of 2", raw.leader, len(raw.members))
	}
	assign := map[string][]int32{}
	for _, m := range raw.members {
		if m.MemberID == raw.memberID {
			assign[m.MemberID] = []int32{0, 1}
		} else {
			assign[m.MemberID] = []int32{2, 3}
		}
	}
	if got := raw.sync(assign); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("raw member got %v, want [0 1]", got)
	}
	return raw, f1
}

// TestSilentMemberExpires: a raw member leads a two-member group, assigns itself
// half of the partitions and then goes silent (no heartbeat, no leave). The
// coordinator must keep it for its session timeout, then remove it and rebalance
// so that the franz-go member takes over its partitions and consumes their
// records from the start (the silent member never committed).
func TestSilentMemberExpires(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "100"})
	const group, topic, parts = "silent", "silent", 4
	const session = 1500 * time.Millisecond
	n.createTopic(t, topic, parts, nil)
	all := produceN(t, n.producerClient(), topic, parts, "r", 80)

	led := newLedger()
	raw, f1 := rawLeadsFranz(t, n, led, group, topic, session)
	// A member of the current generation may commit (offset 0: it consumed
	// nothing, so whoever gets partition 0 next still reads all of it).
	if err := raw.commit(0, 0); err != nil {
		t.Fatalf("commit as a live member: %v", err)
	}
	// The last word from the raw member: from here on it is silent.
	if err := raw.heartbeat(); err != nil {
		t.Fatalf("last heartbeat: %v", err)
	}
	silentAt := time.Now()
	waitStableGroup(t, n.admin(), group, topic, parts, "raw", "f1")

	// Only f1's partitions are consumed while the silent member holds 0 and 1.
	led.waitFor(t, "f1 to consume partitions 2 and 3", 30*time.Second, func(l *ledger) bool {
		n := 0
		for _, c := range l.all {
			if c.partition >= 2 {
				n++
			}
		}
		return n == 40
	})
	led.mu.Lock()
	for _, c := range led.all {
		if c.partition < 2 {
			t.Errorf("f1 consumed %d/%d while the silent member still owned it", c.partition, c.offset)
		}
	}
	led.mu.Unlock()

	waitStableGroup(t, n.admin(), group, topic, parts, "f1")
	if gone := time.Since(silentAt); gone < session-200*time.Millisecond {
		t.Errorf("silent member removed %v after its last heartbeat, before its %v session timeout", gone, session)
	}
	led.waitAll(t, values(all), 30*time.Second)
	led.check(t, all)
	if err := raw.heartbeat(); err != kerr.UnknownMemberID {
		t.Errorf("heartbeat of the expired member: %v, want UNKNOWN_MEMBER_ID", err)
	}
	// A zombie's commit for its old generation is refused and moves nothing
	// (checkCommittedAtEnd below sees partition 0 still at its end).
	if err := raw.commit(0, 3); err != kerr.UnknownMemberID && err != kerr.IllegalGeneration {
		t.Errorf("commit by the expired member: %v, want UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION", err)
	}
	f1.stop()
	checkCommittedAtEnd(t, n.admin(), group, topic)
}
