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
	owned []int32 // partitions of the one topic
	topic [16]byte
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
	if m.epoch == 0 {
		req.RebalanceTimeoutMillis = 10000
		req.SubscribedTopicNames = []string{topic}
	} else if len(m.owned) > 0 {
		tp := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		tp.TopicID, tp.Partitions = m.topic, slices.Clone(m.owned)
		req.Topics = append(req.Topics, tp)
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
		m.owned = nil
		for _, tp := range resp.Assignment.Topics {
			if tp.TopicID != m.topic {
				m.t.Fatalf("assigned unknown topic id %x", tp.TopicID)
			}
			m.owned = append(m.owned, tp.Partitions...)
		}
		slices.Sort(m.owned)
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
