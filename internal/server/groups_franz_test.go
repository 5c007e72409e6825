package server_test

// franz-go consumer groups against the broker: the classic protocol with an eager
// (range) and a cooperative (cooperative-sticky) balancer, and the KIP-848 consumer
// protocol (kgo.ServerSideBalancer), each with members joining and leaving while
// records keep arriving. Members poll with BlockRebalanceOnPoll and commit before
// allowing a rebalance, so no partition changes hands between a poll and its commit:
// every record must be consumed exactly once, checked by value and position.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzMember is one group member polling in its own goroutine.
type franzMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startFranzMember(t *testing.T, n *node, led *ledger, name, group, topic string, opts ...kgo.Opt) *franzMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(n.addr), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.HeartbeatInterval(100 * time.Millisecond), kgo.SessionTimeout(6 * time.Second),
		kgo.RebalanceTimeout(10 * time.Second), kgo.FetchMaxWait(100 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &franzMember{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollRecords(ctx, 25)
			if fs.NumRecords() > 0 {
				err := commitHeld(cl)
				if err != nil {
					t.Logf("%s: commit: %v", name, err)
				}
				led.addFetches(name, fs, err == nil)
			}
			cl.AllowRebalance()
			if ctx.Err() != nil {
				return
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// commitHeld commits what the member polled while it still holds the rebalance
// (BlockRebalanceOnPoll), retrying while the broker is unreachable or not ready,
// as an application that processes each record once would. It gives up on a
// group error (the member lost its generation: its partitions may already be
// elsewhere) or after 20s. It commits on contexts of its own: stopping the member
// must not lose a commit.
func commitHeld(cl *kgo.Client) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cl.CommitUncommittedOffsets(ctx)
		cancel()
		var ke *kerr.Error
		if err == nil || (errors.As(err, &ke) && !ke.Retriable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // paces retries against a broker that is down
	}
}

// stop ends polling and closes the client, which leaves the group.
func (m *franzMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

// runMembershipScenario consumes a topic with a group whose membership changes
// while a producer keeps adding records: two members start, a third joins, the
// first leaves, a fourth joins, the second leaves. Each change waits for the
// group to make progress (the new member's first committed record, or more
// committed records after a leave), then the producer stops and the two last
// members must finish the topic. Every record must be consumed exactly once.
func runMembershipScenario(t *testing.T, n *node, group string, start func(name string) interface{ stop() }, led *ledger, wait time.Duration) {
	t.Helper()
	const topic, parts = "moving", 6
	n.createTopic(t, topic, parts, nil)
	prod := n.producerClient()
	all := produceN(t, prod, topic, parts, "pre", 120)
	stopProducer := backgroundProducer(t, prod, topic, parts, "bg")

	hasCommitted := func(member string) func(l *ledger) bool {
		return func(l *ledger) bool {
			for _, c := range l.all {
				if c.member == member && c.committed {
					return true
				}
			}
			return false
		}
	}
	moreThan := func(k int) func(l *ledger) bool {
		return func(l *ledger) bool { return l.distinctCommittedLocked() > k }
	}
	committedNow := func() int {
		led.mu.Lock()
		defer led.mu.Unlock()
		return led.distinctCommittedLocked()
	}

	m1, m2 := start("m1"), start("m2")
	led.waitFor(t, "m1 to commit", wait, hasCommitted("m1"))
	led.waitFor(t, "m2 to commit", wait, hasCommitted("m2"))
	m3 := start("m3")
	led.waitFor(t, "m3 (joined) to commit", wait, hasCommitted("m3"))
	m1.stop()
	led.waitFor(t, "progress after m1 left", wait, moreThan(committedNow()+50))
	m4 := start("m4")
	led.waitFor(t, "m4 (joined) to commit", wait, hasCommitted("m4"))
	m2.stop()
	led.waitFor(t, "progress after m2 left", wait, moreThan(committedNow()+50))
	all = append(all, stopProducer()...)
	led.waitAll(t, values(all), wait)
	m3.stop()
	m4.stop()

	redelivered := led.check(t, all)
	t.Logf("%d records, %d redeliveries of uncommitted records, deliveries per member %v", len(all), redelivered, led.perMember())
	checkCommittedAtEnd(t, n.admin(), group, topic)
}

func TestFranzGroupEagerRangeMembersJoinAndLeave(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	led := newLedger()
	runMembershipScenario(t, n, "eager", func(name string) interface{ stop() } {
		return startFranzMember(t, n, led, name, "eager", "moving", kgo.Balancers(kgo.RangeBalancer()))
	}, led, 30*time.Second)
}

func TestFranzGroupCooperativeStickyMembersJoinAndLeave(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	led := newLedger()
	runMembershipScenario(t, n, "coop", func(name string) interface{ stop() } {
		return startFranzMember(t, n, led, name, "coop", "moving", kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}, led, 30*time.Second)
}

// KIP-848: franz-go v1.22.3 speaks the consumer protocol when the broker offers
// ConsumerGroupHeartbeat v1 and the client opts in with ServerSideBalancer and a
// range or sticky balancer, whose name picks the server assignor (range or
// uniform). The broker's group.consumer.heartbeat.interval.ms (5s) paces every
// reconciliation step, so these are the slow group tests; they run in parallel.
func TestFranzGroupKIP848MembersJoinAndLeave(t *testing.T) {
	t.Parallel() // mostly waiting on client heartbeat and rebalance timers
	for _, tc := range []struct {
		assignor string
		balancer kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"uniform", kgo.StickyBalancer()},
	} {
		t.Run(tc.assignor, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
			led := newLedger()
			runMembershipScenario(t, n, "next-gen", func(name string) interface{ stop() } {
				return startFranzMember(t, n, led, name, "next-gen", "moving", kgo.ServerSideBalancer(), kgo.Balancers(tc.balancer))
			}, led, 60*time.Second)

			// The group is a consumer-protocol group, visible as such to admin tools.
			described, err := n.admin().DescribeConsumerGroups(ctxT(t), "next-gen")
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			d := described["next-gen"]
			if d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
				t.Fatalf("after every member left: state %q, %d members, err %v; want Empty, 0", d.State, len(d.Members), d.Err)
			}
		})
	}
}
