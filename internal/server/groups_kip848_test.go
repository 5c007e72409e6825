package server_test

// The KIP-848 consumer protocol driven with raw ConsumerGroupHeartbeat requests, so
// the test sees every member epoch and assignment the coordinator hands out: a
// partition is never given to one member while another still reports owning it,
// members converge on the group epoch, stale and unknown members are fenced,
// offset commits are checked against the member epoch, and a leaving member's
// partitions go back to the one that stays.

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cgMember is a KIP-848 member that reconciles as a real client would: it takes
// whatever assignment a heartbeat returns as what it owns, and reports that on
// its next heartbeat (which is how it acknowledges a revocation).
type cgMember struct {
	t     *testing.T
	cl    *kgo.Client
	group string
	id    string
	epoch int32
	topic [16]byte // the topic whose partitions owned lists
	owned []int32
	// all is every partition owned, by topic ID; regex subscribes by
	// SubscribedTopicRegex instead of by name.
	all   map[[16]byte][]int32
	regex string
}

func newCGMember(t *testing.T, n *node, group string, topicID [16]byte) *cgMember {
	return &cgMember{t: t, cl: n.client(kgo.ClientID("raw848")), group: group, id: uuid.NewString(), topic: topicID}
}

// heartbeat sends one heartbeat (a join at epoch 0, subscribing to topic) and
// applies its answer; it returns the response's error.
func (m *cgMember) heartbeat(topic string) error {
	m.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, m.epoch
	req.RebalanceTimeoutMillis = -1
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	switch {
	case m.epoch == 0 && m.regex != "":
		req.RebalanceTimeoutMillis = 10000
		req.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
	case m.epoch == 0:
		req.RebalanceTimeoutMillis = 10000
		req.SubscribedTopicNames = []string{topic}
	default:
		for id, ps := range m.all {
			tp := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			tp.TopicID, tp.Partitions = id, slices.Clone(ps)
			req.Topics = append(req.Topics, tp)
		}
	}
	resp, err := req.RequestWith(ctxT(m.t), m.cl)
	if err != nil {
		m.t.Fatalf("heartbeat: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.all = map[[16]byte][]int32{}
		for _, tp := range resp.Assignment.Topics {
			if m.regex == "" && tp.TopicID != m.topic {
				m.t.Fatalf("assigned unknown topic id %x", tp.TopicID)
			}
			ps := slices.Clone(tp.Partitions)
			slices.Sort(ps)
			if len(ps) > 0 {
				m.all[tp.TopicID] = ps
			}
		}
		m.owned = m.all[m.topic]
	}
	return nil
}

func (m *cgMember) leave() error {
	m.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, -1
	resp, err := req.RequestWith(ctxT(m.t), m.cl)
	if err != nil {
		m.t.Fatalf("leave: %v", err)
	}
	if resp.MemberEpoch != -1 {
		m.t.Errorf("leave answered epoch %d, want -1", resp.MemberEpoch)
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func (m *cgMember) commit(epoch int32, partition int32, at int64) error {
	m.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.id, epoch
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "k848"
	rt.TopicID = m.topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, at
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(m.t), m.cl)
	if err != nil {
		m.t.Fatalf("commit: %v", err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func topicID(t *testing.T, n *node, topic string) [16]byte {
	t.Helper()
	td, err := n.admin().ListTopics(ctxT(t), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("list topic %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

func TestKIP848HeartbeatEpochsAndAssignments(t *testing.T) {
	n := startNode(t, nil)
	const group, topic, parts = "k848", "k848", 4
	n.createTopic(t, topic, parts, nil)
	id := topicID(t, n, topic)

	a := newCGMember(t, n, group, id)
	if err := a.heartbeat(topic); err != nil {
		t.Fatalf("a joins: %v", err)
	}
	if a.epoch < 1 || fmt.Sprint(a.owned) != "[0 1 2 3]" {
		t.Fatalf("a alone: epoch %d owns %v, want epoch >= 1 owning all 4", a.epoch, a.owned)
	}
	first := a.epoch
	if err := a.heartbeat(topic); err != nil || a.epoch != first {
		t.Fatalf("steady heartbeat: %v, epoch %d -> %d", err, first, a.epoch)
	}

	b := newCGMember(t, n, group, id)
	if err := b.heartbeat(topic); err != nil {
		t.Fatalf("b joins: %v", err)
	}
	if b.epoch <= first {
		t.Errorf("b joined at epoch %d, want above the group's previous epoch %d", b.epoch, first)
	}
	// Reconcile: heartbeat both in turn. At no point may the coordinator assign
	// b a partition that a still reports owning, or the other way round.
	disjoint := func(step string) {
		for _, p := range b.owned {
			if slices.Contains(a.owned, p) {
				t.Fatalf("%s: partition %d assigned to b while a owns %v", step, p, a.owned)
			}
		}
	}
	disjoint("b joined")
	for round := 0; round < 5 && !(a.epoch == b.epoch && len(a.owned) == 2 && len(b.owned) == 2); round++ {
		if err := a.heartbeat(topic); err != nil {
			t.Fatalf("round %d a: %v", round, err)
		}
		disjoint(fmt.Sprintf("round %d a", round))
		if err := b.heartbeat(topic); err != nil {
			t.Fatalf("round %d b: %v", round, err)
		}
		disjoint(fmt.Sprintf("round %d b", round))
	}
	if a.epoch != b.epoch || len(a.owned) != 2 || len(b.owned) != 2 {
		t.Fatalf("not reconciled: a epoch %d owns %v, b epoch %d owns %v", a.epoch, a.owned, b.epoch, b.owned)
	}

	described, err := n.admin().DescribeConsumerGroups(ctxT(t), group)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	d := described[group]
	if d.Err != nil || d.State != "Stable" || d.Epoch != a.epoch || d.AssignmentEpoch != a.epoch || len(d.Members) != 2 {
		t.Fatalf("described: err %v state %q epoch %d assignment epoch %d, %d members; want Stable at %d with 2",
			d.Err, d.State, d.Epoch, d.AssignmentEpoch, len(d.Members), a.epoch)
	}
	for _, m := range d.Members {
		want := a.owned
		if m.MemberID == b.id {
			want = b.owned
		}
		var got []int32
		for p := range m.Assignment[topic] {
			got = append(got, p)
		}
		slices.Sort(got)
		if m.MemberEpoch != a.epoch || fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(m.SubscribedTopics) != "["+topic+"]" {
			t.Errorf("member %s: epoch %d assignment %v subscribed %v; want %d %v [%s]", m.MemberID, m.MemberEpoch, got, m.SubscribedTopics, a.epoch, want, topic)
		}
	}

	// Fencing: an epoch ahead of the member's, and a member the group never saw.
	ahead := *a
	ahead.epoch += 5
	if err := ahead.heartbeat(topic); err != kerr.FencedMemberEpoch {
		t.Errorf("heartbeat at a future epoch: %v, want FENCED_MEMBER_EPOCH", err)
	}
	stranger := newCGMember(t, n, group, id)
	stranger.epoch = a.epoch
	if err := stranger.heartbeat(topic); err != kerr.UnknownMemberID {
		t.Errorf("heartbeat of an unknown member: %v, want UNKNOWN_MEMBER_ID", err)
	}

	// Offset commits carry the member epoch as their generation.
	if err := a.commit(a.epoch, a.owned[0], 7); err != nil {
		t.Errorf("commit at the member epoch: %v", err)
	}
	if err := a.commit(a.epoch+1, a.owned[0], 8); err != kerr.StaleMemberEpoch {
		t.Errorf("commit at a later epoch: %v, want STALE_MEMBER_EPOCH", err)
	}
	offs, err := n.admin().FetchOffsets(ctxT(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(topic, a.owned[0]); o.At != 7 {
		t.Errorf("committed offset %d, want 7 (the stale commit must not apply)", o.At)
	}

	// b leaves; a gets everything back at a new epoch.
	if err := b.leave(); err != nil {
		t.Fatalf("b leaves: %v", err)
	}
	before := a.epoch
	for round := 0; round < 3 && len(a.owned) != 4; round++ {
		if err := a.heartbeat(topic); err != nil {
			t.Fatalf("a after b left: %v", err)
		}
	}
	if fmt.Sprint(a.owned) != "[0 1 2 3]" || a.epoch <= before {
		t.Errorf("after b left: a epoch %d (was %d) owns %v, want a later epoch owning all 4", a.epoch, before, a.owned)
	}
	if err := b.heartbeat(topic); err != kerr.UnknownMemberID {
		t.Errorf("heartbeat of a member that left: %v, want UNKNOWN_MEMBER_ID", err)
	}
}

// TestKIP848RegexSubscription subscribes by SubscribedTopicRegex: the member gets
// the partitions of every matching topic, not of others, and a matching topic
// created later joins its assignment without a new subscription.
func TestKIP848RegexSubscription(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "rx-a", 2, nil)
	n.createTopic(t, "other", 2, nil)
	m := newCGMember(t, n, "regex", [16]byte{})
	m.regex = "rx-.*"
	if err := m.heartbeat(""); err != nil {
		t.Fatalf("join: %v", err)
	}
	a := topicID(t, n, "rx-a")
	for round := 0; round < 3 && len(m.all) == 0; round++ {
		if err := m.heartbeat(""); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.all) != 1 || fmt.Sprint(m.all[a]) != "[0 1]" {
		t.Fatalf("regex rx-.* assigned %v, want rx-a [0 1] only", m.all)
	}
	n.createTopic(t, "rx-b", 3, nil)
	b := topicID(t, n, "rx-b")
	for round := 0; round < 3 && len(m.all[b]) == 0; round++ {
		if err := m.heartbeat(""); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.all) != 2 || fmt.Sprint(m.all[a]) != "[0 1]" || fmt.Sprint(m.all[b]) != "[0 1 2]" {
		t.Fatalf("after creating rx-b: assigned %v, want rx-a [0 1] and rx-b [0 1 2]", m.all)
	}
	bad := newCGMember(t, n, "regex", [16]byte{})
	bad.regex = "rx-("
	if err := bad.heartbeat(""); err != kerr.InvalidRegularExpression {
		t.Errorf("join with an invalid regex: %v, want INVALID_REGULAR_EXPRESSION", err)
	}
}

// TestKIP848RegexMatchesInternalTopic: a regex that matches __consumer_offsets is
// assigned its partitions, as Kafka 4's coordinator does (franz-go's integration
// tests subscribe with such regexes and expect them).
func TestKIP848RegexMatchesInternalTopic(t *testing.T) {
	n := startNode(t, map[string]string{"offsets.topic.num.partitions": "3"})
	m := newCGMember(t, n, "regex-internal", [16]byte{})
	m.regex = "__consumer_.*"
	if err := m.heartbeat(""); err != nil { // the join creates __consumer_offsets
		t.Fatalf("join: %v", err)
	}
	off := topicID(t, n, "__consumer_offsets")
	for round := 0; round < 5 && len(m.all[off]) < 3; round++ {
		if err := m.heartbeat(""); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.all) != 1 || fmt.Sprint(m.all[off]) != "[0 1 2]" {
		t.Fatalf("regex __consumer_.* assigned %v, want __consumer_offsets [0 1 2]", m.all)
	}
}

// TestKIP848TwentyMembersConverge joins twenty members at once and heartbeats
// them round after round: at every step no partition may be owned by two members,
// and the group must converge to one epoch with every partition assigned.
func TestKIP848TwentyMembersConverge(t *testing.T) {
	n := startNode(t, nil)
	const group, topic, parts, members = "k848-20", "k848-20", 40, 20
	n.createTopic(t, topic, parts, nil)
	id := topicID(t, n, topic)
	ms := make([]*cgMember, members)
	for i := range ms {
		ms[i] = newCGMember(t, n, group, id)
		if err := ms[i].heartbeat(topic); err != nil {
			t.Fatalf("member %d joins: %v", i, err)
		}
	}
	check := func(step string) (converged bool) {
		owner := map[int32]int{}
		epochs := map[int32]bool{}
		for i, m := range ms {
			epochs[m.epoch] = true
			for _, p := range m.owned {
				if j, dup := owner[p]; dup {
					t.Fatalf("%s: partition %d owned by members %d and %d", step, p, j, i)
				}
				owner[p] = i
			}
		}
		if len(epochs) != 1 || len(owner) != parts {
			return false
		}
		for _, m := range ms {
			if len(m.owned) != parts/members {
				return false
			}
		}
		return true
	}
	converged := false
	for round := 0; round < 10 && !converged; round++ {
		for i, m := range ms {
			if err := m.heartbeat(topic); err != nil {
				t.Fatalf("round %d member %d: %v", round, i, err)
			}
			check(fmt.Sprintf("round %d member %d", round, i))
		}
		converged = check(fmt.Sprintf("after round %d", round))
	}
	if !converged {
		for i, m := range ms {
			t.Logf("member %d epoch %d owns %v", i, m.epoch, m.owned)
		}
		t.Fatalf("twenty members did not converge in 10 heartbeat rounds")
	}
	described, err := n.admin().DescribeConsumerGroups(ctxT(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group]; d.State != "Stable" || len(d.Members) != members || d.Epoch != ms[0].epoch {
		t.Errorf("described: state %q, %d members, epoch %d; want Stable, %d, %d", d.State, len(d.Members), d.Epoch, members, ms[0].epoch)
	}
}
