package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGroupConsumesOnce runs a group of members over a topic and checks every
// record is consumed exactly once, then that commits survive a restart.
func TestFranzGroupConsumesOnce(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	n.createTopic(t, "grouped", 6, nil)
	p := n.client(kgo.DefaultProduceTopic("grouped"))
	const total = 600
	for i := 0; i < total; i++ {
		p.Produce(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	done := make(chan struct{})
	for m := 0; m < 3; m++ {
		cl := n.client(kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("grouped"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				fs := cl.PollRecords(ctx, 50)
				if ctx.Err() != nil {
					return
				}
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					if len(seen) == total {
						select {
						case <-done:
						default:
							close(done)
						}
					}
					mu.Unlock()
				})
				// Commit on a context of its own: a cancel must not lose the last commit.
				if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
					t.Errorf("commit: %v", err)
				}
			}
		}()
	}
	select {
	case <-done:
		cancel() // members blocked in a poll return
	case <-ctx.Done():
		t.Fatalf("only %d of %d records consumed", len(seen), total)
	}
	wg.Wait()
	for v, c := range seen {
		if c != 1 {
			t.Errorf("record %s consumed %d times", v, c)
		}
	}

	// Committed offsets survive a restart.
	n.restart()
	offs, err := n.admin().FetchOffsets(ctxT(t), "g1")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != total {
		t.Fatalf("committed offsets sum to %d after restart, want %d", sum, total)
	}
}

// TestKIP848SettingsReachTheCoordinator checks group.consumer.heartbeat.interval.ms is
// what a ConsumerGroupHeartbeat answer carries.
func TestKIP848SettingsReachTheCoordinator(t *testing.T) {
	n := startNode(t, map[string]string{"group.consumer.heartbeat.interval.ms": "700"})
	n.createTopic(t, "k848", 1, nil)
	r := dialRaw(t, n.addr)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g848"
	r.do(fc)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group = "g848"
	req.MemberID = "m-1-aaaaaaaaaaaaaaaaaa"
	req.MemberEpoch = 0
	req.RebalanceTimeoutMillis = 30000
	req.SubscribedTopicNames = []string{"k848"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp := r.do(req).(*kmsg.ConsumerGroupHeartbeatResponse)
	if resp.ErrorCode != 0 || resp.HeartbeatIntervalMillis != 700 {
		t.Fatalf("heartbeat: error %d interval %d", resp.ErrorCode, resp.HeartbeatIntervalMillis)
	}
}
