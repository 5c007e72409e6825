package server_test

// Static membership (KIP-345): a member with group.instance.id that restarts
// within its session timeout takes its old place back, with the same partitions and
// without a rebalance, so the other members never notice.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func assignedTo(d kadm.DescribedGroup, clientID string) []int32 {
	for _, m := range d.Members {
		if m.ClientID == clientID {
			c, _ := m.Assigned.AsConsumer()
			var out []int32
			for _, tp := range c.Topics {
				out = append(out, tp.Partitions...)
			}
			slices.Sort(out)
			return out
		}
	}
	return nil
}

func TestStaticMemberRestartKeepsItsPlace(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	const group, topic, parts = "static", "static", 4
	n.createTopic(t, topic, parts, nil)
	adm := n.admin()
	prod := n.producerClient()
	led := newLedger()
	static := func(instance string) kgo.Opt { return kgo.InstanceID(instance) }
	rng := kgo.Balancers(kgo.RangeBalancer())

	// s1 first, so it leads; s2 is the follower that restarts.
	s1 := startFranzMember(t, n, led, "s1", group, topic, rng, static("i1"))
	waitStableGroup(t, adm, group, topic, parts, "s1")
	s2 := startFranzMember(t, n, led, "s2", group, topic, rng, static("i2"))
	before := waitStableGroup(t, adm, group, topic, parts, "s1", "s2")
	_, gen := s1.cl.GroupMetadata()
	all := produceN(t, prod, topic, parts, "a", 80)
	led.waitAll(t, values(all), 30*time.Second)

	// Close without leaving (a static member does not send LeaveGroup) and come
	// back under another client ID with the same instance ID.
	s2.stop()
	s2b := startFranzMember(t, n, led, "s2b", group, topic, rng, static("i2"))
	after := waitStableGroup(t, adm, group, topic, parts, "s1", "s2b")
	if a, b := assignedTo(after, "s2b"), assignedTo(before, "s2"); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the restarted static member got %v, it had %v", a, b)
	}
	for _, m := range after.Members {
		if m.InstanceID == nil {
			t.Errorf("member %s has no instance ID", m.ClientID)
		}
	}
	batch := produceN(t, prod, topic, parts, "b", 80)
	all = append(all, batch...)
	led.waitAll(t, values(all), 30*time.Second)
	for _, m := range []*franzMember{s1, s2b} {
		if _, g := m.cl.GroupMetadata(); g != gen {
			t.Errorf("%s is in generation %d, want %d: a static member's return must not rebalance", m.name, g, gen)
		}
	}
	if !consumedFrom(led, "s2b", batch) {
		t.Errorf("the restarted static member consumed nothing")
	}
	if redelivered := led.check(t, all); redelivered != 0 {
		t.Errorf("%d redeliveries", redelivered)
	}
	checkCommittedAtEnd(t, adm, group, topic)
}
