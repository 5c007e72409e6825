package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterISR builds an AlterPartition v3 from broker (at epoch) for partition 0 of topic.
func alterISR(h *harness, topic string, broker int32, epoch int64, leaderEpoch, partitionEpoch int32, isr ...int32) *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = broker, epoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = h.image().Topic(topic).ID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = leaderEpoch, partitionEpoch
	for _, id := range isr {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, -1
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// The leader shrinks and expands its ISR; stale partition and leader epochs, a sender
// that does not lead, an ISR without the leader and a fenced member are refused.
func TestAlterPartition(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	p := h.createOK("t", 1, 3).Partitions[0]
	leader, follower := p.Leader, p.ISR()[0]
	if follower == leader {
		follower = p.ISR()[1]
	}
	var rest []int32
	for _, id := range p.ISR() {
		if id != follower {
			rest = append(rest, id)
		}
	}
	do := func(req *kmsg.AlterPartitionRequest) kmsg.AlterPartitionResponseTopicPartition {
		t.Helper()
		resp := h.do(req).(*kmsg.AlterPartitionResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("AlterPartition: %s %+v", codeName(resp.ErrorCode), resp.Topics)
		}
		return resp.Topics[0].Partitions[0]
	}
	// Shrink: the follower leaves the ISR, at a new partition epoch.
	got := do(alterISR(h, "t", leader, epochs[leader], p.LeaderEpoch, p.PartitionEpoch, rest...))
	now := h.image().Topic("t").Partitions[0]
	if got.ErrorCode != 0 || len(now.ISR()) != 2 || now.PartitionEpoch != p.PartitionEpoch+1 || got.PartitionEpoch != now.PartitionEpoch {
		t.Fatalf("shrink: %s, image ISR %v epoch %d, answered epoch %d", codeName(got.ErrorCode), now.ISR(), now.PartitionEpoch, got.PartitionEpoch)
	}
	// The same request again is stale.
	if got := do(alterISR(h, "t", leader, epochs[leader], p.LeaderEpoch, p.PartitionEpoch, rest...)); got.ErrorCode != kerr.InvalidUpdateVersion.Code {
		t.Fatalf("stale partition epoch: %s", codeName(got.ErrorCode))
	}
	for name, req := range map[string]*kmsg.AlterPartitionRequest{
		"not the leader":     alterISR(h, "t", follower, epochs[follower], now.LeaderEpoch, now.PartitionEpoch, follower, leader),
		"without the leader": alterISR(h, "t", leader, epochs[leader], now.LeaderEpoch, now.PartitionEpoch, follower),
	} {
		if got := do(req); got.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("%s: %s, want INVALID_REQUEST", name, codeName(got.ErrorCode))
		}
	}
	if got := do(alterISR(h, "t", leader, epochs[leader], now.LeaderEpoch-1, now.PartitionEpoch, rest...)); got.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("old leader epoch: %s", codeName(got.ErrorCode))
	}
	if resp := h.do(alterISR(h, "t", leader, epochs[leader]+1, now.LeaderEpoch, now.PartitionEpoch, rest...)).(*kmsg.AlterPartitionResponse); resp.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("stale broker epoch: %s", codeName(resp.ErrorCode))
	}
	// Expand: the follower comes back.
	got = do(alterISR(h, "t", leader, epochs[leader], now.LeaderEpoch, now.PartitionEpoch, append(rest, follower)...))
	if got.ErrorCode != 0 || len(h.image().Topic("t").Partitions[0].ISR()) != 3 {
		t.Fatalf("expand: %s, ISR %v", codeName(got.ErrorCode), h.image().Topic("t").Partitions[0].ISR())
	}
	// A fenced broker may not join.
	now = h.image().Topic("t").Partitions[0]
	do(alterISR(h, "t", leader, epochs[leader], now.LeaderEpoch, now.PartitionEpoch, rest...))
	now = h.image().Topic("t").Partitions[0]
	h.beat(follower, epochs[follower], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	if !h.image().Broker(follower).Fenced {
		t.Fatal("the follower is not fenced")
	}
	if got := do(alterISR(h, "t", leader, epochs[leader], now.LeaderEpoch, now.PartitionEpoch, append(rest, follower)...)); got.ErrorCode != kerr.IneligibleReplica.Code {
		t.Fatalf("a fenced broker joining: %s, want INELIGIBLE_REPLICA", codeName(got.ErrorCode))
	}
}
