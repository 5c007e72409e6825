package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// The rebalance moves leadership back to the preferred replica only for brokers whose
// share of preferred partitions led elsewhere is above the percentage, and only where
// the preferred replica may lead.
func TestRebalanceRecords(t *testing.T) {
	build := func(notLed int, states map[int32]string, outOfISR bool) *metadata.Image {
		ti := newTestImage(t)
		for id := int32(1); id <= 3; id++ {
			s := states[id]
			if s == "" {
				s = "active"
			}
			ti.broker(id, "", s)
		}
		var parts []partSpec
		for i := range 10 { // broker 1 is preferred for all ten
			ps := partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2, 3), leader: 1}
			if i < notLed {
				ps.leader = 2
				if outOfISR {
					ps.isr = ids(2, 3)
				}
			}
			parts = append(parts, ps)
		}
		ti.topic("t", parts...)
		return ti.im
	}
	es := electionSettings{broker: config.Default()}
	cases := []struct {
		name       string
		notLed     int
		percentage int
		states     map[int32]string
		outOfISR   bool
		want       int
	}{
		{name: "balanced", notLed: 0, percentage: 10, want: 0},
		{name: "10% not led: at the threshold, not above it", notLed: 1, percentage: 10, want: 0},
		{name: "20% not led: rebalanced", notLed: 2, percentage: 10, want: 2},
		{name: "percentage 0: any imbalance (as Kafka's KRaft controller)", notLed: 1, percentage: 0, want: 1},
		{name: "the preferred replica is fenced", notLed: 5, percentage: 10, states: map[int32]string{1: "fenced"}, want: 0},
		{name: "the preferred replica is shutting down", notLed: 5, percentage: 10, states: map[int32]string{1: "shutdown"}, want: 0},
		{name: "the preferred replica is out of the ISR", notLed: 5, percentage: 10, outOfISR: true, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := build(tc.notLed, tc.states, tc.outOfISR)
			recs := rebalanceRecords(im, es, tc.percentage, maxElectionsPerImbalance)
			if len(recs) != tc.want {
				t.Fatalf("%d elections, want %d", len(recs), tc.want)
			}
			for _, r := range recs {
				pc := r.(*metadata.PartitionChangeRecord)
				if pc.Leader != 1 || pc.Set != metadata.SetLeader {
					t.Fatalf("election %+v: want only the leader set to 1", pc)
				}
			}
			if got := rebalanceRecords(im, es, tc.percentage, 1); len(got) > 1 {
				t.Fatalf("limit 1: %d elections", len(got))
			}
		})
	}
}

// Driven by time: a broker that was fenced and came back gets its preferred
// leaderships back at the first check after leader.imbalance.check.interval.seconds,
// not before; with auto.leader.rebalance.enable=false never.
func TestRebalanceOverTime(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprint("enabled=", enabled), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.Broker = c.Broker.WithDynamicDefaults(nil)
				c.Broker.Values["auto.leader.rebalance.enable"] = fmt.Sprint(enabled)
				c.Broker.Values["leader.imbalance.check.interval.seconds"] = "30"
			})
			epochs := h.unfencedBrokers(3)
			h.createOK("t", 6, 3)
			preferredBy := func(id int32) (n, led int) {
				for _, p := range h.image().Topic("t").Partitions {
					if p.Replicas()[0] == id {
						n++
						if p.Leader == id {
							led++
						}
					}
				}
				return
			}
			const b = int32(1)
			n, _ := preferredBy(b)
			if n == 0 {
				t.Fatal("broker 1 is preferred for no partition")
			}
			h.beat(b, epochs[b], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
			if _, led := preferredBy(b); led != 0 {
				t.Fatalf("fenced broker still leads %d partitions", led)
			}
			h.beat(b, epochs[b])
			// Back in every ISR, as its leaders would ask.
			for i, p := range h.image().Topic("t").Partitions {
				if !p.HasReplica(b) || contains(p.ISR(), b) {
					continue
				}
				req := alterISR(h, "t", p.Leader, epochs[p.Leader], p.LeaderEpoch, p.PartitionEpoch, append(p.ISR(), b)...)
				req.Topics[0].Partitions[0].Partition = int32(i)
				resp := h.do(req).(*kmsg.AlterPartitionResponse)
				if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
					t.Fatalf("partition %d expand: %s", i, codeName(c))
				}
			}
			keepAlive := func(d time.Duration) {
				for step := time.Second; d > 0; d -= step {
					h.advance(step)
					for id, e := range epochs {
						h.beat(id, e)
					}
				}
			}
			keepAlive(20 * time.Second)
			if _, led := preferredBy(b); led != 0 {
				t.Fatalf("rebalanced before the check interval: broker 1 leads %d", led)
			}
			keepAlive(15 * time.Second)
			want := 0
			if enabled {
				want = n
			}
			if _, led := preferredBy(b); led != want {
				t.Fatalf("after the check interval: broker 1 leads %d of its %d preferred partitions, want %d", led, n, want)
			}
		})
	}
}

func contains(l []int32, v int32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// A leaderless partition gets an unclean leader from the periodic check only once its
// topic allows it, and not before unclean.leader.election.interval.ms has passed.
func TestUncleanElectionOverTime(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Broker = c.Broker.WithDynamicDefaults(nil)
		c.Broker.Values["unclean.leader.election.interval.ms"] = "10000"
	})
	epochs := h.unfencedBrokers(2)
	p := h.createOK("t", 1, 2).Partitions[0]
	l, f := p.Leader, p.Replicas()[1]
	resp := h.do(alterISR(h, "t", l, epochs[l], p.LeaderEpoch, p.PartitionEpoch, l)).(*kmsg.AlterPartitionResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("shrink: %s", codeName(c))
	}
	h.beat(l, epochs[l], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	leader := func() int32 { return h.image().Topic("t").Partitions[0].Leader }
	keepAlive := func(d time.Duration) {
		for step := time.Second; d > 0; d -= step {
			h.advance(step)
			h.beat(f, epochs[f])
		}
	}
	keepAlive(25 * time.Second)
	if got := leader(); got != metadata.NoLeader {
		t.Fatalf("unclean elections off: leader %d", got)
	}
	on := "true"
	if c := codes(h.do(incremental(false, alter{typ: 2, name: "t", op: 0, key: "unclean.leader.election.enable", value: &on}))); c[0] != 0 {
		t.Fatalf("set unclean.leader.election.enable: %s", codeName(c[0]))
	}
	if got := leader(); got != metadata.NoLeader {
		t.Fatalf("elected at the config change, before the check: leader %d", got)
	}
	keepAlive(11 * time.Second)
	if got := h.image().Topic("t").Partitions[0]; got.Leader != f || len(got.ISR()) != 1 || got.ISR()[0] != f {
		t.Fatalf("after the check: %s, want %d leading alone", describePartition(&got), f)
	}
}
