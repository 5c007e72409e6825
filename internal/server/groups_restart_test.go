package server_test

// A clean broker restart in the middle of group consumption: the group's committed
// offsets come back exactly as they were acknowledged, and the members, which keep
// running through the restart, resume from them. A record may be consumed twice only
// if the commit after its first delivery failed (the broker was down); the ledger
// holds which commits succeeded, so that allowance is exact.

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pinPort makes the node's next start listen on the port it has now, so that
// clients seeded with its address find it again after a restart.
func (n *node) pinPort(t *testing.T) {
	t.Helper()
	_, port, err := net.SplitHostPort(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]string{}
	for k, v := range n.over {
		over[k] = v
	}
	over["listeners"] = "PLAINTEXT://127.0.0.1:" + port
	n.over = over
}

func TestGroupResumesAfterCleanRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"eager", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
			n.pinPort(t)
			const group, topic, parts = "restart", "restart", 4
			n.createTopic(t, topic, parts, nil)
			prod := n.producerClient()
			all := produceN(t, prod, topic, parts, "a", 2000)

			led := newLedger()
			m1 := startFranzMember(t, n, led, "m1", group, topic, tc.opts...)
			m2 := startFranzMember(t, n, led, "m2", group, topic, tc.opts...)
			led.waitCommitted(t, 300, 30*time.Second)

			n.stop()
			// No commit can succeed from here until the restart: what the ledger
			// holds as committed is exactly what the broker acknowledged.
			want := map[int32]int64{}
			led.mu.Lock()
			for _, c := range led.all {
				if c.committed && c.offset+1 > want[c.partition] {
					want[c.partition] = c.offset + 1
				}
			}
			consumedBefore := len(led.all)
			led.mu.Unlock()
			n.start()

			offs, err := n.admin().FetchOffsets(ctxT(t), group)
			if err != nil {
				t.Fatalf("fetch offsets after restart: %v", err)
			}
			for p, at := range want {
				// The members may already have committed more after the restart;
				// they may never have moved a committed offset backwards.
				if o, ok := offs.Lookup(topic, p); !ok || o.At < at {
					t.Errorf("partition %d: committed %d after restart, acknowledged %d before", p, o.At, at)
				}
			}

			more := produceN(t, prod, topic, parts, "b", 400)
			all = append(all, more...)
			led.waitAll(t, values(all), 30*time.Second)
			m1.stop()
			m2.stop()
			redelivered := led.check(t, all)
			t.Logf("consumed %d deliveries before the restart; %d redeliveries of records whose commit failed", consumedBefore, redelivered)
			checkCommittedAtEnd(t, n.admin(), group, topic)
		})
	}
}

// TestDeadMemberExpiresAfterRestart: a member that died while the broker was down
// never comes back. The group is rebuilt from __consumer_offsets with that member
// in it, so its session timer must be armed again on load: it expires, the group
// rebalances, and the surviving member consumes the dead member's partitions.
func TestDeadMemberExpiresAfterRestart(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "100"})
	n.pinPort(t)
	const group, topic, parts = "dead", "dead", 4
	const session = 3 * time.Second
	n.createTopic(t, topic, parts, nil)
	led := newLedger()
	_, f1 := rawLeadsFranz(t, n, led, group, topic, session)
	waitStableGroup(t, n.admin(), group, topic, parts, "raw", "f1")

	// The raw member "dies" with the broker: it never speaks again.
	n.restart()
	// Like Kafka, the coordinator rebuilds the group with its members (their
	// sessions restart at load), so the dead one is still there at first.
	described, err := n.admin().DescribeGroups(ctxT(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if got := described[group]; assignedTo(got, "raw") == nil {
		t.Errorf("right after the restart the group has %d members in state %s, want the dead member still in it", len(got.Members), got.State)
	}
	all := produceN(t, n.producerClient(), topic, parts, "after", 80)
	d := waitStableGroup(t, n.admin(), group, topic, parts, "f1")
	if got := fmt.Sprint(assignedTo(d, "f1")); got != "[0 1 2 3]" {
		t.Errorf("f1 assigned %s after the dead member expired, want all four", got)
	}
	led.waitAll(t, values(all), 30*time.Second)
	led.check(t, all)
	f1.stop()
	checkCommittedAtEnd(t, n.admin(), group, topic)
}
