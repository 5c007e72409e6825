package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// memTransport serves replicas' requests from the leaders' partitions in the same
// process; a fetch that finds nothing new waits for an append up to its max wait, as
// the broker's fetch does, so that a caught-up fetcher sleeps instead of spinning.
type memTransport struct {
	mu    sync.Mutex
	hosts map[int32]*partition.Partition
	down  map[int32]bool
}

func (m *memTransport) Request(ctx context.Context, broker int32, req kmsg.Request) (kmsg.Response, error) {
	m.mu.Lock()
	p, down := m.hosts[broker], m.down[broker]
	m.mu.Unlock()
	if down {
		return nil, fmt.Errorf("broker %d: connection refused", broker)
	}
	if fr, ok := req.(*kmsg.FetchRequest); ok && p != nil && p.Role() == partition.RoleLeader {
		wait := p.WaitAppend()
		if fr.Topics[0].Partitions[0].FetchOffset >= p.LogEndOffset() {
			t := time.NewTimer(time.Duration(fr.MaxWaitMillis) * time.Millisecond)
			select {
			case <-wait:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return serveReplica(p, req)
}

// Drivers fetch in their own goroutines: acks=all completes once both followers have
// fetched, through the whole path, and Close leaves no goroutine behind (synctest
// fails the test otherwise).
func TestDriversReplicateForAcksAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reps := map[int32]*replica{}
		for _, id := range []int32{1, 2, 3} {
			reps[id] = openReplica(t, id, vfs.NewMem(), time.Now, -1, 2)
		}
		st := partition.LeaderAndISR{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
		if _, err := reps[1].p.BecomeLeader(st); err != nil {
			t.Fatal(err)
		}
		tr := &memTransport{hosts: map[int32]*partition.Partition{1: reps[1].p}}
		var managers []*Manager
		for _, id := range []int32{2, 3} {
			if _, _, err := reps[id].p.BecomeFollower(st); err != nil {
				t.Fatal(err)
			}
			m := NewManager(Config{LocalID: id, BrokerEpoch: -1, Backoff: 100 * time.Millisecond}, tr, time.Now)
			m.Follow(tkey, topicID, reps[id].p, 1, 1)
			managers = append(managers, m)
		}
		for i := 0; i < 20; i++ {
			w, err := reps[1].p.AppendAcksAll(record(t, 5, int32(i), fmt.Sprint(i)), time.Now().Add(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reps[1].p.AwaitAcks(context.Background(), w); err != nil {
				t.Fatalf("acks=all %d: %v", i, err)
			}
		}
		if hw := reps[1].p.HighWatermark(); hw != 20 {
			t.Fatalf("high watermark %d", hw)
		}
		// The leader goes away: the fetchers back off and retry, and acks=all times out.
		tr.mu.Lock()
		tr.down = map[int32]bool{1: true}
		tr.mu.Unlock()
		w, err := reps[1].p.AppendAcksAll(record(t, 5, 20, "x"), time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reps[1].p.AwaitAcks(context.Background(), w); !errors.Is(err, partition.ErrAckTimeout) {
			t.Fatalf("acks=all with the followers cut off: %v", err)
		}
		if s, src, ok := managers[0].Status(tkey); !ok || src != 1 || s.State != Fetching {
			t.Fatalf("status %+v from %d", s, src)
		}
		// Leadership moves to 2 (epoch 2); 3 follows it, and the manager moves the
		// partition to a fetcher for broker 2.
		st2 := partition.LeaderAndISR{Leader: 2, LeaderEpoch: 2, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}}
		managers[0].Unfollow(tkey)
		if _, err := reps[2].p.BecomeLeader(st2); err != nil {
			t.Fatal(err)
		}
		if _, _, err := reps[3].p.BecomeFollower(st2); err != nil {
			t.Fatal(err)
		}
		tr.mu.Lock()
		tr.hosts[2] = reps[2].p
		tr.mu.Unlock()
		managers[1].Follow(tkey, topicID, reps[3].p, 2, 2)
		w, err = reps[2].p.AppendAcksAll(record(t, 6, 0, "y"), time.Now().Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reps[2].p.AwaitAcks(context.Background(), w); err != nil {
			t.Fatalf("acks=all on the new leader: %v", err)
		}
		for _, m := range managers {
			m.Close()
		}
		for _, r := range reps {
			r.p.Close()
		}
	})
}

// scribblingTransport is a Releaser over memTransport that, as a transport reusing its
// buffer would, overwrites a fetch response's records once they are released, and
// checks that every response was released before the next request.
type scribblingTransport struct {
	memTransport
	lmu      sync.Mutex
	lent     kmsg.Response
	released int
	unsafe   error
}

func (s *scribblingTransport) Request(ctx context.Context, broker int32, req kmsg.Request) (kmsg.Response, error) {
	s.lmu.Lock()
	if s.lent != nil && s.unsafe == nil {
		s.unsafe = fmt.Errorf("a %T was sent while the previous response was not released", req)
	}
	s.lmu.Unlock()
	resp, err := s.memTransport.Request(ctx, broker, req)
	if fr, ok := resp.(*kmsg.FetchResponse); ok && err == nil {
		// Records of their own, as a reused buffer's would be.
		for i := range fr.Topics {
			for j := range fr.Topics[i].Partitions {
				p := &fr.Topics[i].Partitions[j]
				p.RecordBatches = append([]byte(nil), p.RecordBatches...)
			}
		}
		s.lmu.Lock()
		s.lent = resp
		s.lmu.Unlock()
	}
	return resp, err
}

func (s *scribblingTransport) Release(broker int32, resp kmsg.Response) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if resp != s.lent {
		return
	}
	for _, t := range resp.(*kmsg.FetchResponse).Topics {
		for _, p := range t.Partitions {
			for i := range p.RecordBatches {
				p.RecordBatches[i] = 0xa5
			}
		}
	}
	s.lent = nil
	s.released++
}

// The Driver releases every response once it is applied, and nothing of it is used
// after: the followers' logs hold the leader's batches although every response's
// records were overwritten at their release.
func TestDriverReleasesAppliedResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reps := map[int32]*replica{}
		for _, id := range []int32{1, 2} {
			reps[id] = openReplica(t, id, vfs.NewMem(), time.Now, -1, 2)
		}
		st := partition.LeaderAndISR{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
		if _, err := reps[1].p.BecomeLeader(st); err != nil {
			t.Fatal(err)
		}
		if _, _, err := reps[2].p.BecomeFollower(st); err != nil {
			t.Fatal(err)
		}
		tr := &scribblingTransport{memTransport: memTransport{hosts: map[int32]*partition.Partition{1: reps[1].p}}}
		m := NewManager(Config{LocalID: 2, BrokerEpoch: -1, Backoff: 100 * time.Millisecond}, tr, time.Now)
		m.Follow(tkey, topicID, reps[2].p, 1, 1)
		for i := 0; i < 10; i++ {
			w, err := reps[1].p.AppendAcksAll(record(t, 5, int32(i), fmt.Sprint(i)), time.Now().Add(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reps[1].p.AwaitAcks(context.Background(), w); err != nil {
				t.Fatalf("acks=all %d: %v", i, err)
			}
		}
		m.Close()
		tr.lmu.Lock()
		if tr.unsafe != nil {
			t.Error(tr.unsafe)
		}
		if tr.lent != nil {
			t.Error("the last response was not released at Close")
		}
		if tr.released < 10 {
			t.Errorf("%d responses released, want at least 10", tr.released)
		}
		tr.lmu.Unlock()
		leader, follower := logBytes(t, reps[1].p, reps[1].p.LogEndOffset()), logBytes(t, reps[2].p, reps[2].p.LogEndOffset())
		if len(leader) == 0 || string(leader) != string(follower) {
			t.Fatalf("the follower's log (%d bytes) is not the leader's (%d bytes)", len(follower), len(leader))
		}
		for _, r := range reps {
			r.p.Close()
		}
	})
}
