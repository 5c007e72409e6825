package server_test

// sarama's ConsumerGroup and kafka-go's group Reader against the broker's classic
// group protocol: sarama alone with members joining and leaving while records
// arrive, and one group mixing sarama, kafka-go and franz-go members (all offering
// the "range" protocol, so whichever is leader assigns for the others).
//
// kafka-go hands a fetched message to the application and commits it through the
// reader's current generation, so a message fetched just before a rebalance can be
// committed after it, by a member that no longer owns the partition, while the new
// owner reads it too. That is the client's documented at-least-once behaviour, not
// the broker's; the mixed test therefore changes membership only when everything
// produced so far is consumed and committed, and then allows no duplicate at all.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// saramaMember is one sarama ConsumerGroup member that marks and synchronously
// commits each batch of messages before taking the next.
type saramaMember struct {
	g          sarama.ConsumerGroup
	cancel     context.CancelFunc
	done       chan struct{}
	errorsDone chan struct{}
	once       sync.Once
}

type saramaHandler struct {
	name string
	led  *ledger
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch := []*sarama.ConsumerMessage{msg}
		drain:
			for len(batch) < 50 {
				select {
				case m, ok := <-claim.Messages():
					if !ok {
						break drain
					}
					batch = append(batch, m)
				default:
					break drain
				}
			}
			sess.MarkMessage(batch[len(batch)-1], "")
			sess.Commit() // synchronous; a failure reaches the Errors channel
			cs := make([]consumed, len(batch))
			for i, m := range batch {
				cs[i] = consumed{member: h.name, partition: m.Partition, offset: m.Offset, value: string(m.Value), committed: true}
			}
			h.led.add(cs...)
		}
	}
}

func saramaGroupConfig(name string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = name
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	return cfg
}

func startSaramaMember(t *testing.T, n *node, led *ledger, name, group, topic string) *saramaMember {
	t.Helper()
	g, err := sarama.NewConsumerGroup([]string{n.addr}, group, saramaGroupConfig(name))
	if err != nil {
		t.Fatalf("sarama group %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{g: g, cancel: cancel, done: make(chan struct{}), errorsDone: make(chan struct{})}
	go func() {
		defer close(m.errorsDone)
		// Commit failures would make a redelivery legitimate; the test wants none.
		for err := range g.Errors() {
			t.Errorf("sarama %s: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, saramaHandler{name: name, led: led}); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				t.Logf("sarama %s: consume: %v", name, err)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *saramaMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		_ = m.g.Close() // leaves the group and closes Errors
		<-m.errorsDone
	})
}

// kafkaGoMember is one kafka-go Reader with a GroupID, committing every message
// synchronously before fetching the next.
type kafkaGoMember struct {
	r      *kafka.Reader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startKafkaGoMember(t *testing.T, n *node, led *ledger, name, group, topic string) *kafkaGoMember {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{n.addr}, GroupID: group, Topic: topic,
		Dialer:            &kafka.Dialer{ClientID: name, Timeout: 10 * time.Second},
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		StartOffset:       kafka.FirstOffset,
		CommitInterval:    0, // synchronous commits
		GroupBalancers:    []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	m := &kafkaGoMember{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					t.Logf("kafka-go %s: fetch: %v", name, err)
				}
				return
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = r.CommitMessages(cctx, msg)
			ccancel()
			if err != nil {
				t.Logf("kafka-go %s: commit: %v", name, err)
			}
			led.add(consumed{member: name, partition: int32(msg.Partition), offset: msg.Offset, value: string(msg.Value), committed: err == nil})
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *kafkaGoMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		_ = m.r.Close() // leaves the group
	})
}

// waitStableGroup waits until the group is Stable with exactly the named clients
// as members and their assignments partition the topic's partitions among them:
// every partition assigned, none twice. It polls DescribeGroups, the only way an
// outsider sees a group's generation.
func waitStableGroup(t *testing.T, adm *kadm.Client, group, topic string, partitions int32, clientIDs ...string) kadm.DescribedGroup {
	t.Helper()
	want := append([]string(nil), clientIDs...)
	sort.Strings(want)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		described, err := adm.DescribeGroups(ctxT(t), group)
		if err != nil {
			last = err.Error()
		} else if d := described[group]; d.Err != nil {
			last = d.Err.Error()
		} else if why := stableProblem(d, topic, partitions, want); why != "" {
			last = why
		} else {
			return d
		}
		time.Sleep(20 * time.Millisecond) // pacing between polls of the condition
	}
	t.Fatalf("group %s not stable with members %v: %s", group, want, last)
	return kadm.DescribedGroup{}
}

func stableProblem(d kadm.DescribedGroup, topic string, partitions int32, want []string) string {
	if d.State != "Stable" {
		return "state " + d.State
	}
	var got []string
	owner := map[int32]string{}
	for _, m := range d.Members {
		got = append(got, m.ClientID)
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			return fmt.Sprintf("member %s has no consumer assignment", m.ClientID)
		}
		for _, tp := range c.Topics {
			if tp.Topic != topic {
				return fmt.Sprintf("member %s assigned topic %s", m.ClientID, tp.Topic)
			}
			for _, p := range tp.Partitions {
				if o, dup := owner[p]; dup {
					return fmt.Sprintf("partition %d assigned to %s and %s", p, o, m.ClientID)
				}
				owner[p] = m.ClientID
			}
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Sprintf("members %v", got)
	}
	if len(owner) != int(partitions) {
		return fmt.Sprintf("%d of %d partitions assigned", len(owner), partitions)
	}
	return ""
}

func TestSaramaGroupMembersJoinAndLeave(t *testing.T) {
	t.Parallel() // mostly waiting on client heartbeat and rebalance timers
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	led := newLedger()
	runMembershipScenario(t, n, "sarama", func(name string) interface{ stop() } {
		return startSaramaMember(t, n, led, name, "sarama", "moving")
	}, led, 30*time.Second)
}

// TestMixedClientGroup puts sarama, kafka-go and franz-go members in one group and
// moves partitions between them: s1 and k1 start, f1 joins, k2 joins, s1 leaves,
// k1 leaves. After each change the group must settle (one generation, every
// partition assigned once) and then consume a new batch exactly once.
func TestMixedClientGroup(t *testing.T) {
	t.Parallel() // mostly waiting on client heartbeat and rebalance timers
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	const group, topic, parts = "mixed", "mixed", 6
	n.createTopic(t, topic, parts, nil)
	adm := n.admin()
	prod := n.producerClient()
	led := newLedger()
	var all []produced
	phase := func(name string, members ...string) {
		t.Helper()
		d := waitStableGroup(t, adm, group, topic, parts, members...)
		batch := produceN(t, prod, topic, parts, name, 120)
		all = append(all, batch...)
		led.waitAll(t, values(all), 30*time.Second)
		// Each member owns at least one partition and every partition got 20
		// records, so each member must have consumed some of this batch.
		for _, m := range d.Members {
			if !consumedFrom(led, m.ClientID, batch) {
				t.Errorf("phase %s: member %s consumed none of the batch", name, m.ClientID)
			}
		}
	}

	s1 := startSaramaMember(t, n, led, "s1", group, topic)
	k1 := startKafkaGoMember(t, n, led, "k1", group, topic)
	phase("a", "s1", "k1")
	startFranzMember(t, n, led, "f1", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	phase("b", "s1", "k1", "f1")
	startKafkaGoMember(t, n, led, "k2", group, topic)
	phase("c", "s1", "k1", "f1", "k2")
	s1.stop()
	phase("d", "k1", "f1", "k2")
	k1.stop()
	phase("e", "f1", "k2")

	if redelivered := led.check(t, all); redelivered != 0 {
		t.Errorf("%d redeliveries; membership changed only with nothing in flight, want none", redelivered)
	}
	checkCommittedAtEnd(t, adm, group, topic)
}

func consumedFrom(l *ledger, member string, batch []produced) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range batch {
		for _, c := range l.byValue[p.value] {
			if c.member == member {
				return true
			}
		}
	}
	return false
}
