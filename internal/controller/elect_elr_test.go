package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// KIP-966 through the controller's requests: an ISR shrunk below min.insync.replicas by
// AlterPartition keeps its leavers as eligible leaders; when the last ISR member is
// fenced the partition keeps its ELR and last leader; an ELR member that restarts
// cleanly (its registration names the epoch it stopped at) leads again, one that
// restarts uncleanly leaves the ELR; with nothing eligible left, the last leader may
// lead again when it comes back.
func TestEligibleLeaderReplicas(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprint("clean restart=", clean), func(t *testing.T) {
			h := newHarness(t)
			epochs := h.unfencedBrokers(3)
			resp := h.do(createTopic("t", 1, 3, "min.insync.replicas", "2")).(*kmsg.CreateTopicsResponse)
			if c := resp.Topics[0].ErrorCode; c != 0 {
				t.Fatalf("create: %s", codeName(c))
			}
			part := func() *metadata.Partition { return &h.image().Topic("t").Partitions[0] }
			p := part()
			l, f1, f2 := p.Leader, p.Replicas()[1], p.Replicas()[2]
			shrink := func(isr ...int32) {
				t.Helper()
				p := part()
				resp := h.do(alterISR(h, "t", p.Leader, epochs[p.Leader], p.LeaderEpoch, p.PartitionEpoch, isr...)).(*kmsg.AlterPartitionResponse)
				if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
					t.Fatalf("AlterPartition %v: %s", isr, codeName(c))
				}
			}
			shrink(l, f1)
			if got := part(); len(got.ELR()) != 0 {
				t.Fatalf("ISR at min.insync.replicas: ELR %v, want none", got.ELR())
			}
			shrink(l)
			if got := part(); !slices.Equal(got.ELR(), []int32{f1}) {
				t.Fatalf("ISR below min.insync.replicas: ISR %v ELR %v, want ELR [%d]", got.ISR(), got.ELR(), f1)
			}
			fence := func(id int32) {
				h.beat(id, epochs[id], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
			}
			fence(f2)
			fence(f1)
			if got := part(); !slices.Equal(got.ELR(), []int32{f1}) || got.Leader != l {
				t.Fatalf("followers fenced: leader %d ELR %v", got.Leader, got.ELR())
			}
			fence(l)
			got := part()
			if got.Leader != metadata.NoLeader || len(got.ISR()) != 0 || !sameSet(got.ELR(), []int32{l, f1}) || !slices.Equal(got.LastKnownELR(), []int32{l}) {
				t.Fatalf("last ISR member fenced: %s, want leader -1 isr [] elr {%d %d} lastKnown [%d]", describePartition(got), l, f1, l)
			}
			// f1 restarts.
			reg := registration(f1, uuid.New(), "")
			if clean {
				reg.PreviousBrokerEpoch = epochs[f1]
			}
			rr := h.do(reg).(*kmsg.BrokerRegistrationResponse)
			if rr.ErrorCode != 0 {
				t.Fatalf("re-register %d: %s", f1, codeName(rr.ErrorCode))
			}
			epochs[f1] = rr.BrokerEpoch
			h.beat(f1, epochs[f1])
			got = part()
			if clean {
				if got.Leader != f1 || !slices.Equal(got.ISR(), []int32{f1}) || !slices.Equal(got.ELR(), []int32{l}) {
					t.Fatalf("clean ELR member back: %s, want leader %d isr [%d] elr [%d]", describePartition(got), f1, f1, l)
				}
				return
			}
			if got.Leader != metadata.NoLeader || !slices.Equal(got.ELR(), []int32{l}) {
				t.Fatalf("uncleanly restarted ELR member back: %s, want no leader and elr [%d]", describePartition(got), l)
			}
			// The last leader restarts uncleanly too: nothing eligible is left but the
			// last leader, which leads again once back (Kafka's "balanced recovery").
			rr = h.do(registration(l, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
			epochs[l] = rr.BrokerEpoch
			if got := part(); len(got.ELR()) != 0 || !slices.Equal(got.LastKnownELR(), []int32{l}) {
				t.Fatalf("last leader restarted uncleanly: %s", describePartition(got))
			}
			h.beat(l, epochs[l])
			if got := part(); got.Leader != l || !slices.Equal(got.ISR(), []int32{l}) {
				t.Fatalf("last leader back: %s, want it leading alone", describePartition(got))
			}
		})
	}
}

func sameSet(a, b []int32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A change of a topic's effective min.insync.replicas, by the topic's config or the
// cluster default, clears its partitions' ELR and last known ELR (Kafka's
// ClearElrRecord); other topics keep theirs.
func TestMinInsyncReplicasChangeClearsELR(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	for _, name := range []string{"a", "b"} {
		resp := h.do(createTopic(name, 1, 3, "min.insync.replicas", "2")).(*kmsg.CreateTopicsResponse)
		if c := resp.Topics[0].ErrorCode; c != 0 {
			t.Fatalf("create: %s", codeName(c))
		}
		p := h.image().Topic(name).Partitions[0]
		req := alterISR(h, name, p.Leader, epochs[p.Leader], p.LeaderEpoch, p.PartitionEpoch, p.Leader)
		if c := h.do(req).(*kmsg.AlterPartitionResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("shrink %s: %s", name, codeName(c))
		}
		if got := h.image().Topic(name).Partitions[0]; len(got.ELR()) != 2 {
			t.Fatalf("%s: %s, want two eligible replicas", name, describePartition(&got))
		}
	}
	set := func(typ int8, name, key, value string) {
		t.Helper()
		if c := codes(h.do(incremental(false, alter{typ: typ, name: name, op: 0, key: key, value: &value}))); c[0] != 0 {
			t.Fatalf("set %s=%s on %q: %s", key, value, name, codeName(c[0]))
		}
	}
	elr := func(name string) []int32 { return h.image().Topic(name).Partitions[0].ELR() }
	set(resourceTopic, "a", "retention.ms", "1000") // not min.insync.replicas: kept
	if len(elr("a")) != 2 {
		t.Fatalf("another config changed: ELR %v", elr("a"))
	}
	set(resourceTopic, "a", "min.insync.replicas", "3")
	if len(elr("a")) != 0 || len(elr("b")) != 2 {
		t.Fatalf("a's min.insync.replicas changed: a's ELR %v, b's %v; want a's cleared", elr("a"), elr("b"))
	}
	set(resourceBroker, "", "min.insync.replicas", "1") // b takes the default no more: its 2 is its own
	if len(elr("b")) != 2 {
		t.Fatalf("the cluster default changed under b's own value: ELR %v", elr("b"))
	}
	set(resourceTopic, "b", "min.insync.replicas", "2") // unchanged value: kept
	if len(elr("b")) != 2 {
		t.Fatalf("b's min.insync.replicas set to its value: ELR %v", elr("b"))
	}
	// A topic that takes the cluster default loses its ELR when the default changes.
	set(resourceBroker, "", "min.insync.replicas", "2")
	h.createOK("c", 1, 3)
	p := h.image().Topic("c").Partitions[0]
	if c := h.do(alterISR(h, "c", p.Leader, epochs[p.Leader], p.LeaderEpoch, p.PartitionEpoch, p.Leader)).(*kmsg.AlterPartitionResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("shrink c: %s", codeName(c))
	}
	if len(elr("c")) != 2 {
		t.Fatalf("c below the default min.insync.replicas: ELR %v", elr("c"))
	}
	set(resourceBroker, "", "min.insync.replicas", "3")
	if len(elr("c")) != 0 || len(elr("b")) != 2 {
		t.Fatalf("the cluster default changed: c's ELR %v (want cleared), b's %v (kept)", elr("c"), elr("b"))
	}
}

// The unclean-shutdown event as a pure function: the broker leaves the ISR and the ELR
// (it is never made eligible on the way out), partitions that do not name it are
// untouched, and the last known leader is kept.
func TestUncleanShutdownEvent(t *testing.T) {
	cases := []struct {
		name string
		part partSpec
		who  int32
		want string // "" for no change
	}{
		{"in the ELR of a leaderless partition", partSpec{replicas: ids(1, 2, 3), isr: ids(), leader: metadata.NoLeader, elr: ids(1, 2), lastKnown: ids(1)},
			2, "leader -1 isr [] elr [1] lastKnown [1]"},
		{"the last leader, in the ELR", partSpec{replicas: ids(1, 2, 3), isr: ids(), leader: metadata.NoLeader, elr: ids(1), lastKnown: ids(1)},
			1, "leader -1 isr []"},
		{"in an ISR below min.insync.replicas: not made eligible", partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2), leader: 1},
			2, "leader 1 isr [1]"},
		{"named nowhere", partSpec{replicas: ids(1, 2, 3), isr: ids(1, 3), leader: 1}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ti := newTestImage(t)
			for id := int32(1); id <= 3; id++ {
				state := "active"
				if id == tc.who || tc.part.leader == metadata.NoLeader { // nothing to elect
					state = "fenced"
				}
				ti.broker(id, "", state)
			}
			topicID := ti.topic("t", tc.part)
			b := config.Default().WithDynamicDefaults(map[string]string{"min.insync.replicas": "3"})
			rs := generateUpdates(ti.im, brokerUncleanShutdown(tc.who), electionSettings{broker: b, elr: true})
			if tc.want == "" {
				if len(rs) != 0 {
					t.Fatalf("want no change, got %+v", rs[0])
				}
				return
			}
			if len(rs) != 1 {
				t.Fatalf("%d changes, want 1", len(rs))
			}
			ti.apply(rs...)
			p := ti.im.TopicByID(topicID).Partition(0)
			got := describePartition(p)
			if tc.name == "the last leader, in the ELR" {
				// The last known leader stays: it may still lead when it comes back.
				if p.Leader != metadata.NoLeader || len(p.ELR()) != 0 || !slices.Equal(p.LastKnownELR(), ids(1)) {
					t.Fatalf("got %s", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
