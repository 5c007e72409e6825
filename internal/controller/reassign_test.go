package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// The stages of a reassignment as pure functions: the first record's assignment, the
// completion once the ISR holds the target, and the revert of a cancel.
func TestReplicaAssignmentStages(t *testing.T) {
	for _, c := range []struct {
		current, target, want, adding, removing []int32
	}{
		{ids(1, 2), ids(2, 3), ids(2, 3, 1), ids(3), ids(1)},
		{ids(1, 2, 3), ids(3, 2, 1), ids(3, 2, 1), nil, nil},
		{ids(1, 2, 3), ids(2, 3), ids(2, 3, 1), nil, ids(1)},
		{ids(1), ids(4, 2, 3), ids(4, 2, 3, 1), ids(2, 3, 4), ids(1)},
		// A new target over an ongoing one: the current replicas are the union.
		{ids(2, 3, 1), ids(2, 4), ids(2, 4, 1, 3), ids(4), ids(1, 3)},
	} {
		a := reassignTo(c.current, c.target)
		if !slices.Equal(a.replicas, c.want) || !slices.Equal(a.adding, c.adding) || !slices.Equal(a.removing, c.removing) {
			t.Errorf("%v -> %v: %+v, want replicas %v adding %v removing %v", c.current, c.target, a, c.want, c.adding, c.removing)
		}
	}

	a := reassignTo(ids(1, 2), ids(2, 3))
	for _, c := range []struct {
		isr, wantISR []int32
		ok           bool
	}{
		{ids(1, 2), ids(1, 2), false},   // 3 not caught up
		{ids(1, 2, 3), ids(2, 3), true}, // done: 1 leaves
		{ids(2, 3), ids(2, 3), true},    // 1 already out of the ISR
		{ids(1, 3), ids(1, 3), false},   // 2 (kept) out of the ISR
	} {
		done, isr, ok := a.complete(c.isr)
		if ok != c.ok || !slices.Equal(isr, c.wantISR) || (ok && (!slices.Equal(done.replicas, ids(2, 3)) || len(done.adding)+len(done.removing) > 0)) {
			t.Errorf("complete with ISR %v: %+v %v %v, want ISR %v ok %v", c.isr, done, isr, ok, c.wantISR, c.ok)
		}
	}
	if _, _, ok := currentAssignment(&metadata.Partition{}).complete(ids(1)); ok {
		t.Error("completed a partition with no reassignment")
	}

	for _, c := range []struct {
		isr, replicas, wantISR []int32
		unclean                bool
	}{
		{ids(1, 2, 3), ids(2, 1), ids(1, 2), false},
		{ids(3), ids(2, 1), ids(2), true}, // only the adding replica in the ISR
	} {
		replicas, isr, unclean := a.revert(c.isr)
		// The original replicas of [2 3 1] adding [3] are [2 1] in the list's order.
		if !slices.Equal(replicas, c.replicas) || !slices.Equal(isr, intersectOrder(c.isr, c.wantISR)) || unclean != c.unclean {
			t.Errorf("revert with ISR %v: %v %v %v", c.isr, replicas, isr, unclean)
		}
	}
}

// intersectOrder is want, or when it is a made-up ISR (one member), want itself.
func intersectOrder(isr, want []int32) []int32 {
	var out []int32
	for _, r := range isr {
		if slices.Contains(want, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return want
	}
	return out
}

// reassignReq builds an AlterPartitionReassignments v1; a nil replicas cancels.
func reassignReq(topic string, partition int32, replicas []int32) *kmsg.AlterPartitionAssignmentsRequest {
	r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	r.Version = 1
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = partition, replicas
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

// reassign sends req and returns the code of its only partition.
func (h *harness) reassign(req *kmsg.AlterPartitionAssignmentsRequest) (int16, string) {
	h.t.Helper()
	resp := h.do(req).(*kmsg.AlterPartitionAssignmentsResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		h.t.Fatalf("AlterPartitionReassignments: %s %+v", codeName(resp.ErrorCode), resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, str(p.ErrorMessage)
}

// createAssigned creates topic with one partition on replicas.
func (h *harness) createAssigned(topic string, replicas ...int32) {
	h.t.Helper()
	req := createTopic(topic, -1, -1)
	req.Topics[0].ReplicaAssignment = assignment(replicas)
	if resp := h.do(req).(*kmsg.CreateTopicsResponse); resp.Topics[0].ErrorCode != 0 {
		h.t.Fatalf("create %s: %s", topic, codeName(resp.Topics[0].ErrorCode))
	}
}

func describeAssignment(p *metadata.Partition) string {
	return fmt.Sprintf("replicas %v adding %v removing %v isr %v leader %d", p.Replicas(), p.AddingReplicas(), p.RemovingReplicas(), p.ISR(), p.Leader)
}

func (h *harness) listReassignments(topics ...string) []kmsg.ListPartitionReassignmentsResponseTopic {
	h.t.Helper()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	if topics != nil {
		req.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{}
	}
	for _, t := range topics {
		req.Topics = append(req.Topics, kmsg.ListPartitionReassignmentsRequestTopic{Topic: t, Partitions: []int32{0, 1}})
	}
	resp := h.do(req).(*kmsg.ListPartitionReassignmentsResponse)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("ListPartitionReassignments: %s", codeName(resp.ErrorCode))
	}
	return resp.Topics
}

// A reassignment from {1,2} led by 1 to {2,3}: the first record adds 3, the leader's
// AlterPartition that takes 3 into the ISR completes it, moving the leadership to 2 at a
// new leader epoch; List shows it while under way.
func TestReassignmentCompletesOnISRExpansion(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(4)
	h.createAssigned("t", 1, 2)
	before := h.image().Topic("t").Partitions[0]

	if code, msg := h.reassign(reassignReq("t", 0, ids(2, 3))); code != 0 {
		t.Fatalf("reassign: %s %s", codeName(code), msg)
	}
	p := h.image().Topic("t").Partitions[0]
	if got, want := describeAssignment(&p), "replicas [2 3 1] adding [3] removing [1] isr [1 2] leader 1"; got != want {
		t.Fatalf("under way: %s, want %s", got, want)
	}
	if p.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("the first stage changed the leader epoch: %d -> %d", before.LeaderEpoch, p.LeaderEpoch)
	}
	l := h.listReassignments()
	if len(l) != 1 || l[0].Topic != "t" || len(l[0].Partitions) != 1 ||
		!slices.Equal(l[0].Partitions[0].Replicas, ids(2, 3, 1)) || !slices.Equal(l[0].Partitions[0].AddingReplicas, ids(3)) ||
		!slices.Equal(l[0].Partitions[0].RemovingReplicas, ids(1)) {
		t.Fatalf("list: %+v", l)
	}
	if l := h.listReassignments("t", "nope"); len(l) != 1 {
		t.Fatalf("list by name: %+v", l)
	}

	resp := h.do(alterISR(h, "t", 1, epochs[1], p.LeaderEpoch, p.PartitionEpoch, 1, 2, 3)).(*kmsg.AlterPartitionResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NewLeaderElected.Code {
		t.Fatalf("the completing AlterPartition: %s, want NEW_LEADER_ELECTED", codeName(code))
	}
	p = h.image().Topic("t").Partitions[0]
	if got, want := describeAssignment(&p), "replicas [2 3] adding [] removing [] isr [2 3] leader 2"; got != want {
		t.Fatalf("completed: %s, want %s", got, want)
	}
	if p.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("leader epoch %d, want %d", p.LeaderEpoch, before.LeaderEpoch+1)
	}
	if l := h.listReassignments(); len(l) != 0 {
		t.Fatalf("list after completion: %+v", l)
	}
}

// The leader stays when it is kept; the answer to the completing AlterPartition is the
// new state, at a new leader epoch since a replica left.
func TestReassignmentKeepsLeader(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(4)
	h.createAssigned("t", 1, 2)
	if code, _ := h.reassign(reassignReq("t", 0, ids(1, 3))); code != 0 {
		t.Fatal(codeName(code))
	}
	p := h.image().Topic("t").Partitions[0]
	resp := h.do(alterISR(h, "t", 1, epochs[1], p.LeaderEpoch, p.PartitionEpoch, 1, 2, 3)).(*kmsg.AlterPartitionResponse)
	got := resp.Topics[0].Partitions[0]
	now := h.image().Topic("t").Partitions[0]
	if got.ErrorCode != 0 || got.LeaderEpoch != now.LeaderEpoch || got.PartitionEpoch != now.PartitionEpoch || !slices.Equal(got.ISR, now.ISR()) {
		t.Fatalf("answer %+v, image %s epochs %d/%d", got, describeAssignment(&now), now.LeaderEpoch, now.PartitionEpoch)
	}
	if d := describeAssignment(&now); d != "replicas [1 3] adding [] removing [] isr [1 3] leader 1" || now.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("completed: %s leader epoch %d", d, now.LeaderEpoch)
	}
}

// A reassignment that needs no catching up completes in its first record: a removal
// from a full ISR moves the leader off the removed broker.
func TestReassignmentImmediate(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	h.createAssigned("t", 1, 2, 3)
	if code, _ := h.reassign(reassignReq("t", 0, ids(2, 3))); code != 0 {
		t.Fatal(codeName(code))
	}
	p := h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [2 3] adding [] removing [] isr [2 3] leader 2" {
		t.Fatalf("got %s", d)
	}
	// A reordering changes only the replicas.
	if code, _ := h.reassign(reassignReq("t", 0, ids(3, 2))); code != 0 {
		t.Fatal(codeName(code))
	}
	p = h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [3 2] adding [] removing [] isr [2 3] leader 2" {
		t.Fatalf("reordered: %s", d)
	}
}

// A cancel goes back to the original replicas; the adding ones leave the ISR.
func TestReassignmentCancel(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(4)
	h.createAssigned("t", 1, 2)
	if code, _ := h.reassign(reassignReq("t", 0, ids(3, 4))); code != 0 {
		t.Fatal(codeName(code))
	}
	p := h.image().Topic("t").Partitions[0]
	// 3 caught up; 4 not yet.
	h.do(alterISR(h, "t", 1, epochs[1], p.LeaderEpoch, p.PartitionEpoch, 1, 2, 3))
	p = h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [3 4 1 2] adding [3 4] removing [1 2] isr [1 2 3] leader 1" {
		t.Fatalf("under way: %s", d)
	}
	if code, msg := h.reassign(reassignReq("t", 0, nil)); code != 0 {
		t.Fatalf("cancel: %s %s", codeName(code), msg)
	}
	now := h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&now); d != "replicas [1 2] adding [] removing [] isr [1 2] leader 1" || now.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("cancelled: %s leader epoch %d (was %d)", d, now.LeaderEpoch, p.LeaderEpoch)
	}
	if code, _ := h.reassign(reassignReq("t", 0, nil)); code != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("cancel with none: %s", codeName(code))
	}
}

// Refusals, each for its own partition, as Kafka answers them.
func TestReassignmentErrors(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	h.createAssigned("t", 1, 2)
	for _, c := range []struct {
		name string
		req  *kmsg.AlterPartitionAssignmentsRequest
		want *kerr.Error
	}{
		{"unknown topic", reassignReq("nope", 0, ids(1, 2)), kerr.UnknownTopicOrPartition},
		{"unknown partition", reassignReq("t", 1, ids(1, 2)), kerr.UnknownTopicOrPartition},
		{"empty", reassignReq("t", 0, []int32{}), kerr.InvalidReplicaAssignment},
		{"duplicate broker", reassignReq("t", 0, ids(1, 1)), kerr.InvalidReplicaAssignment},
		{"unregistered broker", reassignReq("t", 0, ids(1, 9)), kerr.InvalidReplicaAssignment},
		{"cancel with none", reassignReq("t", 0, nil), kerr.NoReassignmentInProgress},
		{"replication factor change not allowed", func() *kmsg.AlterPartitionAssignmentsRequest {
			r := reassignReq("t", 0, ids(1, 2, 3))
			r.AllowReplicationFactorChange = false
			return r
		}(), kerr.InvalidReplicationFactor},
	} {
		if code, _ := h.reassign(c.req); code != c.want.Code {
			t.Errorf("%s: %s, want %s", c.name, codeName(code), c.want.Message)
		}
	}
	// The same partition twice.
	req := reassignReq("t", 0, ids(2, 3))
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, req.Topics[0].Partitions[0])
	resp := h.do(req).(*kmsg.AlterPartitionAssignmentsResponse)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("partition twice: %s", codeName(p.ErrorCode))
		}
	}
	p := h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [1 2] adding [] removing [] isr [1 2] leader 1" {
		t.Fatalf("a refused request changed the partition: %s", d)
	}
	// A fenced broker may be a target, as in Kafka; it joins when it catches up.
	h.beat(3, h.image().Broker(3).Epoch, func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	if code, msg := h.reassign(reassignReq("t", 0, ids(1, 3))); code != 0 {
		t.Fatalf("to a fenced broker: %s %s", codeName(code), msg)
	}
}

// Fencing the leader being removed mid-way elects from the ISR in the new replica
// order; the reassignment stays under way until the adding replica catches up.
func TestReassignmentLeaderFencedMidway(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	h.createAssigned("t", 1, 2)
	if code, _ := h.reassign(reassignReq("t", 0, ids(2, 3))); code != 0 {
		t.Fatal(codeName(code))
	}
	h.beat(1, epochs[1], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	p := h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [2 3 1] adding [3] removing [1] isr [2] leader 2" {
		t.Fatalf("1 fenced: %s", d)
	}
	resp := h.do(alterISR(h, "t", 2, epochs[2], p.LeaderEpoch, p.PartitionEpoch, 2, 3)).(*kmsg.AlterPartitionResponse)
	p = h.image().Topic("t").Partitions[0]
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("completing: %s", codeName(code))
	}
	if d := describeAssignment(&p); d != "replicas [2 3] adding [] removing [] isr [2 3] leader 2" {
		t.Fatalf("completed: %s", d)
	}
}

// Off the active controller both APIs answer NOT_CONTROLLER, which the brokers'
// channel retries elsewhere: at the top and, for AlterPartitionReassignments, on every
// partition.
func TestReassignmentNotController(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(2)
	h.createAssigned("t", 1, 2)
	h.loseLeadership()
	alter := h.do(reassignReq("t", 0, ids(2, 1))).(*kmsg.AlterPartitionAssignmentsResponse)
	if alter.ErrorCode != kerr.NotController.Code || len(alter.Topics) != 1 || alter.Topics[0].Partitions[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("AlterPartitionReassignments: %s %+v", codeName(alter.ErrorCode), alter.Topics)
	}
	list := h.do(kmsg.NewPtrListPartitionReassignmentsRequest()).(*kmsg.ListPartitionReassignmentsResponse)
	if list.ErrorCode != kerr.NotController.Code {
		t.Fatalf("ListPartitionReassignments: %s", codeName(list.ErrorCode))
	}
}

// A cancel that would leave no original replica in the ISR is an unclean election:
// refused unless the topic allows unclean elections, as Kafka refuses it.
func TestReassignmentCancelUnclean(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	h.createAssigned("t", 1)
	if code, _ := h.reassign(reassignReq("t", 0, ids(2, 3))); code != 0 {
		t.Fatal(codeName(code))
	}
	p := h.image().Topic("t").Partitions[0]
	h.do(alterISR(h, "t", 1, epochs[1], p.LeaderEpoch, p.PartitionEpoch, 1, 2))
	h.beat(1, epochs[1], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	p = h.image().Topic("t").Partitions[0]
	if d := describeAssignment(&p); d != "replicas [2 3 1] adding [2 3] removing [1] isr [2] leader 2" {
		t.Fatalf("1 fenced: %s", d)
	}
	if code, msg := h.reassign(reassignReq("t", 0, nil)); code != kerr.InvalidReplicaAssignment.Code || !strings.Contains(msg, "unclean leader election") {
		t.Fatalf("unclean cancel: %s %s", codeName(code), msg)
	}
	set := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "unclean.leader.election.enable", Value: kmsg.StringPtr("true")}}
	set.Resources = append(set.Resources, res)
	if r := h.do(set).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatal(codeName(r.Resources[0].ErrorCode))
	}
	if code, msg := h.reassign(reassignReq("t", 0, nil)); code != 0 {
		t.Fatalf("unclean cancel allowed: %s %s", codeName(code), msg)
	}
	p = h.image().Topic("t").Partitions[0]
	// 1, fenced, may not lead: the partition keeps its only replica in the ISR, without
	// a leader until 1 comes back.
	if d := describeAssignment(&p); d != "replicas [1] adding [] removing [] isr [1] leader -1" {
		t.Fatalf("reverted: %s", d)
	}
}
