package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

func electReq(typ int8, tps map[string][]int32) *kmsg.ElectLeadersRequest {
	r := kmsg.NewPtrElectLeadersRequest()
	r.Version, r.ElectionType = 2, typ
	if tps == nil {
		return r
	}
	r.Topics = []kmsg.ElectLeadersRequestTopic{}
	for name, ps := range tps {
		t := kmsg.NewElectLeadersRequestTopic()
		t.Topic, t.Partitions = name, ps
		r.Topics = append(r.Topics, t)
	}
	return r
}

// electCodes answers ElectLeaders and returns each partition's code as "topic-p".
func (h *harness) elect(typ int8, tps map[string][]int32) (int16, map[string]int16) {
	h.t.Helper()
	resp := h.do(electReq(typ, tps)).(*kmsg.ElectLeadersResponse)
	out := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"-"+string(rune('0'+p.Partition))] = p.ErrorCode
		}
	}
	return resp.ErrorCode, out
}

// ElectLeaders PREFERRED: not needed while the preferred replica leads; not available
// while it is out of the ISR; done once it is back in it. Unknown partitions and types
// are refused; null topics leave out the partitions that need nothing.
func TestElectLeadersPreferred(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	p := h.createOK("t", 1, 3).Partitions[0]
	preferred := p.Replicas()[0]
	if p.Leader != preferred {
		t.Fatalf("a new partition is led by %d, not its first replica %d", p.Leader, preferred)
	}
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {0}, "nope": {0}}); got["t-0"] != kerr.ElectionNotNeeded.Code ||
		got["nope-0"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("preferred leader leads: %v", got)
	}
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {7}}); got["t-7"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %v", got)
	}
	if code, _ := h.elect(electionPreferred, nil); code != 0 {
		t.Fatalf("all partitions, nothing to do: %s", codeName(code))
	}
	if resp := h.do(electReq(5, nil)).(*kmsg.ElectLeadersResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("election type 5: %s", codeName(resp.ErrorCode))
	}

	// The preferred replica is fenced: leadership moves; it cannot be elected back.
	h.beat(preferred, epochs[preferred], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	now := h.image().Topic("t").Partitions[0]
	if now.Leader == preferred || slices.Contains(now.ISR(), preferred) {
		t.Fatalf("fenced preferred replica: leader %d ISR %v", now.Leader, now.ISR())
	}
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {0}}); got["t-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("preferred replica fenced: %s", codeName(got["t-0"]))
	}
	if _, got := h.elect(electionPreferred, nil); got["t-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("all partitions, preferred replica fenced: %v", got)
	}
	// Unfenced but not in the ISR yet: still not available.
	if resp := h.beat(preferred, epochs[preferred]); resp.IsFenced {
		t.Fatal("not unfenced")
	}
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {0}}); got["t-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("preferred replica out of the ISR: %s", codeName(got["t-0"]))
	}
	// Back in the ISR: elected, with a new leader epoch.
	do := h.do(alterISR(h, "t", now.Leader, epochs[now.Leader], now.LeaderEpoch, now.PartitionEpoch, append(now.ISR(), preferred)...)).(*kmsg.AlterPartitionResponse)
	if c := do.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("expand: %s", codeName(c))
	}
	before := h.image().Topic("t").Partitions[0]
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {0, 0}}); got["t-0"] != 0 {
		t.Fatalf("preferred replica back in the ISR: %s", codeName(got["t-0"]))
	}
	after := h.image().Topic("t").Partitions[0]
	if after.Leader != preferred || after.LeaderEpoch != before.LeaderEpoch+1 || !slices.Equal(after.ISR(), before.ISR()) {
		t.Fatalf("after the election: leader %d epoch %d ISR %v (before: %d, %d, %v)", after.Leader, after.LeaderEpoch, after.ISR(),
			before.Leader, before.LeaderEpoch, before.ISR())
	}
}

// ElectLeaders UNCLEAN: only for a partition without a leader, which then gets an
// active replica from outside the ISR, the ISR being that replica alone.
func TestElectLeadersUnclean(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(2)
	p := h.createOK("t", 1, 2).Partitions[0]
	leader, other := p.Leader, p.Replicas()[1]
	if _, got := h.elect(electionUnclean, map[string][]int32{"t": {0}}); got["t-0"] != kerr.ElectionNotNeeded.Code {
		t.Fatalf("with a leader: %s", codeName(got["t-0"]))
	}
	// The follower leaves the ISR, then the leader is fenced: no leader.
	do := h.do(alterISR(h, "t", leader, epochs[leader], p.LeaderEpoch, p.PartitionEpoch, leader)).(*kmsg.AlterPartitionResponse)
	if c := do.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("shrink: %s", codeName(c))
	}
	h.beat(leader, epochs[leader], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	now := h.image().Topic("t").Partitions[0]
	if now.Leader != metadata.NoLeader {
		t.Fatalf("leader %d after the only ISR member was fenced (unclean election is off)", now.Leader)
	}
	if _, got := h.elect(electionPreferred, map[string][]int32{"t": {0}}); got["t-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("preferred, leaderless: %s", codeName(got["t-0"]))
	}
	if _, got := h.elect(electionUnclean, nil); got["t-0"] != 0 {
		t.Fatalf("unclean: %s", codeName(got["t-0"]))
	}
	now = h.image().Topic("t").Partitions[0]
	if now.Leader != other || !slices.Equal(now.ISR(), []int32{other}) {
		t.Fatalf("after the unclean election: leader %d ISR %v, want %d [%d]", now.Leader, now.ISR(), other, other)
	}
	// Nothing live at all: not available.
	h.beat(other, epochs[other], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	if _, got := h.elect(electionUnclean, map[string][]int32{"t": {0}}); got["t-0"] != kerr.EligibleLeadersNotAvailable.Code {
		t.Fatalf("unclean, no live replica: %s", codeName(got["t-0"]))
	}
}
