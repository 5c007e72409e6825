package cluster

// A partition leader frozen (SIGSTOP) for longer than its session, replaced meanwhile,
// and thawed (SIGCONT), process level. An acks=1 Produce sent into the frozen node waits
// on its socket; read right after the thaw, before the node's metadata says it was
// replaced, it must be refused with NOT_LEADER_OR_FOLLOWER (broker/pause.go), not
// acknowledged and then truncated away by the new leader's log, as Kafka's broker does.
// Whether a queued request is read before the metadata that replaced the node is a race:
// here the metadata won it in every run even without that guard (5 runs, the victim the
// controller or not, frozen 3 or 11 s), where the fault battery's seed 312 lost 722-2002
// acks=1 records a pause without it; so this checks the thawed leader's answers (none
// acknowledged and then lost, none refused and then kept), and the battery the guard.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

func TestThawedLeaderRefusesQueuedWrites(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t, 3, map[string]string{"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"})
	c.startAll()
	ctl, err := c.waitLeader(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seeds := c.bootstrap()
	adm := admin(t, seeds...)
	waitFor(t, "three unfenced brokers", func() bool {
		bs, err := adm.ListBrokers(ctx)
		return err == nil && len(bs) == 3
	})
	// The leader is the active controller: frozen, it still believes it leads the metadata
	// quorum when it thaws, and applies nothing until it hears of the new term.
	victim := ctl
	replicas := []int32{int32(victim.id)}
	for _, nd := range c.nodes {
		if nd != victim {
			replicas = append(replicas, int32(nd.id))
		}
	}
	const topic = "frozen"
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(ctx, t, cl, topic, replicas, nil)
	waitFor(t, "the victim leads with a full ISR", func() bool {
		l, _, isr, err := partitionState(ctx, seeds, topic)
		return err == nil && l == int32(victim.id) && len(isr) == 3
	})

	produce := func(value string, acks int16) *kmsg.ProduceRequest {
		b := kmsg.NewPtrProduceRequest()
		b.Acks, b.TimeoutMillis = acks, 30000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic
		pp := kmsg.NewProduceRequestTopicPartition()
		rb, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte(value)}})
		if err != nil {
			t.Fatal(err)
		}
		pp.Records = rb
		pt.Partitions = append(pt.Partitions, pp)
		b.Topics = append(b.Topics, pt)
		return b
	}
	code := func(r kmsg.Response, err error) int16 {
		if err != nil {
			t.Fatalf("produce to the victim: %v", err)
		}
		return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	// Through the victim's own produce connection, opened now so that the next request
	// goes into its socket while it is frozen; acks=all, so that these are kept.
	waitFor(t, "the victim takes a write", func() bool {
		r, err := cl.Broker(victim.id).Request(ctx, produce("before", -1))
		return err == nil && r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode == 0
	})

	pid := victim.cur().pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer thaw()
	// kill(2) returns once the signal is queued; the requests below must find the node
	// stopped, not still running for a moment (state T in /proc/PID/stat).
	waitFor(t, "the victim stopped", func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		_, after, ok := strings.Cut(string(stat), ") ") // the command name may hold spaces
		return ok && strings.HasPrefix(after, "T")
	})
	stoppedAt := time.Now()
	type answer struct {
		value string
		r     kmsg.Response
		err   error
	}
	const inFrozen = 20
	queued := make(chan answer, inFrozen)
	for i := range inFrozen {
		go func() {
			v := fmt.Sprintf("queued-%d", i)
			r, err := cl.Broker(victim.id).Request(context.Background(), produce(v, 1))
			queued <- answer{v, r, err}
		}()
	}
	var others []string
	for _, nd := range c.nodes {
		if nd != victim {
			others = append(others, nd.broker())
		}
	}
	waitFor(t, "another leader while the victim is frozen", func() bool {
		l, _, _, err := partitionState(ctx, others, topic)
		return err == nil && l != int32(victim.id) && l > 0
	})
	t.Logf("replaced %v after the SIGSTOP", time.Since(stoppedAt).Round(time.Millisecond))
	thaw()
	acked := map[string]bool{}
	refused := 0
	for range inFrozen {
		var a answer
		select {
		case a = <-queued:
		case <-time.After(time.Minute):
			t.Fatal("a produce queued in the frozen node was not answered a minute after the thaw")
		}
		switch ec := code(a.r, a.err); ec {
		case kerr.NotLeaderForPartition.Code:
			refused++
		case 0:
			// Seen once in 10 runs before the test waited for the stop to take effect:
			// 2 were taken, and kept, as the victim still ran for a moment. Whatever the
			// reason, a write taken must be kept, as below.
			acked[a.value] = true
		default:
			t.Errorf("a produce queued in the frozen leader, answered after the thaw: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(ec))
		}
	}
	t.Logf("of %d produces queued in the frozen leader: %d refused NOT_LEADER_OR_FOLLOWER, %d acknowledged", inFrozen, refused, len(acked))

	// Once the victim is back in the ISR: every acknowledged write is in the partition, and
	// none of the refused ones.
	waitFor(t, "the victim back in the ISR", func() bool {
		_, _, isr, err := partitionState(ctx, seeds, topic)
		return err == nil && slices.Contains(isr, int32(victim.id))
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var values []string
	idle := 10 * time.Second // until the first record; then 2 s without one is the end
	for {
		fctx, cancel := context.WithTimeout(ctx, idle)
		fs := cons.PollFetches(fctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if fctx.Err() == nil {
				t.Logf("fetch: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		if fctx.Err() != nil {
			break
		}
		idle = 2 * time.Second
	}
	if len(values) == 0 {
		t.Fatal("the partition is empty: the writes acknowledged before the pause are gone")
	}
	for v := range acked {
		if !slices.Contains(values, v) {
			t.Errorf("%s, acknowledged after the thaw, is not in the partition: %v", v, values)
		}
	}
	for _, v := range values {
		if strings.HasPrefix(v, "queued-") && !acked[v] {
			t.Errorf("%s, refused after the thaw, is in the partition: %v", v, values)
		}
	}
}
