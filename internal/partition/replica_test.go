package partition

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Step-driven tests of the replica state machine (replica.go): no sockets, no sleeps,
// time moved by hand.

const lag = 30 * time.Second

type rtest struct {
	t       *testing.T
	r       *Replica
	now     time.Time
	brokers map[int32]BrokerState
	sent    []ISRChange
}

func newRTest(t *testing.T, minISR int32) *rtest {
	rt := &rtest{t: t, now: time.UnixMilli(1_700_000_000_000), brokers: map[int32]BrokerState{
		1: {Epoch: 100}, 2: {Epoch: 200}, 3: {Epoch: 300},
	}}
	cfg := ReplicaConfig{LocalID: 1, LagTimeMax: lag, Brokers: func(id int32) (BrokerState, bool) {
		b, ok := rt.brokers[id]
		return b, ok
	}}
	rt.r = NewReplica(cfg, minISR, 0, 0)
	return rt
}

func (rt *rtest) advance(d time.Duration) { rt.now = rt.now.Add(d) }

func (rt *rtest) record(e Effects) Effects {
	if e.Send != nil {
		rt.sent = append(rt.sent, *e.Send)
	}
	return e
}

func (rt *rtest) lead(epoch, partitionEpoch int32, replicas, isr []int32, leo int64) {
	rt.t.Helper()
	e, ok, _ := rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: epoch, PartitionEpoch: partitionEpoch, Replicas: replicas, ISR: isr}, leo, rt.now)
	if !ok {
		rt.t.Fatalf("BecomeLeader(epoch %d, partition epoch %d) refused", epoch, partitionEpoch)
	}
	rt.record(e)
}

func (rt *rtest) fetch(id int32, offset int64) Effects {
	rt.t.Helper()
	e, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: id, FetchOffset: offset, BrokerEpoch: rt.brokers[id].Epoch,
		LeaderEndOffset: rt.r.LogEndOffset()}, rt.now)
	if err != nil {
		rt.t.Fatalf("fetch by %d at %d: %v", id, offset, err)
	}
	return rt.record(e)
}

func (rt *rtest) append(leo int64) Effects { return rt.record(rt.r.LocalAppend(leo, rt.now)) }
func (rt *rtest) tick() Effects            { return rt.record(rt.r.Tick(rt.now)) }

func (rt *rtest) wantHW(hw int64) {
	rt.t.Helper()
	if got := rt.r.HighWatermark(); got != hw {
		rt.t.Fatalf("high watermark %d, want %d", got, hw)
	}
}

// lastSent returns the last AlterPartition sent and checks its ISR.
func (rt *rtest) lastSent(isr ...int32) ISRChange {
	rt.t.Helper()
	if len(rt.sent) == 0 {
		rt.t.Fatalf("no AlterPartition sent, want ISR %v", isr)
	}
	c := rt.sent[len(rt.sent)-1]
	var got []int32
	for _, m := range c.ISR {
		got = append(got, m.BrokerID)
	}
	if !slices.Equal(got, isr) {
		rt.t.Fatalf("AlterPartition ISR %v, want %v", got, isr)
	}
	return c
}

func (rt *rtest) wantNoSend(n int) {
	rt.t.Helper()
	if len(rt.sent) != n {
		rt.t.Fatalf("%d AlterPartitions sent, want %d (last %+v)", len(rt.sent), n, rt.sent[len(rt.sent)-1])
	}
}

func TestSingleReplicaIsItsOwnISR(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1}, []int32{1}, 0)
	rt.append(10)
	rt.wantHW(10)
	// min.insync.replicas above the replica count is bounded by it (Kafka 3.7+).
	rt.r.SetMinInsyncReplicas(2, rt.now)
	if err := rt.r.CheckAppendAcksAll(); err != nil {
		t.Fatalf("acks=all on a single replica with min.insync.replicas=2: %v", err)
	}
	rt.append(12)
	rt.wantHW(12)
}

func TestHighWatermarkIsMinimumOfISR(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1, 2, 3}, []int32{1, 2, 3}, 0)
	rt.append(10)
	rt.wantHW(0) // followers' log ends unknown
	rt.fetch(2, 5)
	rt.wantHW(0)
	if e := rt.fetch(3, 7); !e.CheckAcks || e.HighWatermark != 5 {
		t.Fatalf("effects %+v, want the high watermark moved to 5", e)
	}
	rt.fetch(2, 10)
	rt.wantHW(7)
	rt.fetch(3, 10)
	rt.wantHW(10)
	// Never back on a leader: a follower that truncated and fetches from below.
	rt.fetch(3, 8)
	rt.wantHW(10)
	rt.wantNoSend(0)
}

func TestHighWatermarkHeldUnderMinISR(t *testing.T) {
	rt := newRTest(t, 2)
	rt.lead(1, 0, []int32{1, 2, 3}, []int32{1}, 0)
	if err := rt.r.CheckAppendAcksAll(); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [1] and min.insync.replicas=2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	rt.append(10)
	rt.wantHW(0) // KIP-966: the HW does not advance under min ISR, even for acks=1 data
	hw, enough, leading := rt.r.AckState()
	if hw != 0 || enough || !leading {
		t.Fatalf("AckState = %d %v %v", hw, enough, leading)
	}
	// Follower 2 catches up and joins; once committed, the ISR is at min ISR again.
	rt.fetch(2, 10)
	c := rt.lastSent(1, 2)
	if c.PartitionEpoch != 0 || c.LeaderEpoch != 1 || c.ISR[1].BrokerEpoch != 200 {
		t.Fatalf("AlterPartition %+v", c)
	}
	rt.wantHW(0) // pending: the committed ISR is still [1]
	if e := rt.r.ISRCommitted(c.Seq, 1, 1, []int32{1, 2}, rt.now); !e.CheckAcks {
		t.Fatalf("commit effects %+v", e)
	}
	rt.wantHW(10)
	if err := rt.r.CheckAppendAcksAll(); err != nil {
		t.Fatal(err)
	}
}

func TestShrinkAfterLagAndOneChangeInFlight(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 5, []int32{1, 2, 3}, []int32{1, 2, 3}, 0)
	rt.append(10)
	rt.fetch(2, 10)
	rt.wantHW(0) // 3 in the ISR and never fetched
	rt.advance(lag)
	rt.fetch(2, 10)
	rt.tick()
	rt.wantNoSend(0) // exactly the lag: still caught up (Kafka's <=)
	rt.advance(time.Millisecond)
	rt.fetch(2, 10)
	rt.tick()
	c := rt.lastSent(1, 2)
	if c.PartitionEpoch != 5 || c.ISR[0].BrokerEpoch != 100 || c.ISR[1].BrokerEpoch != 200 {
		t.Fatalf("shrink %+v", c)
	}
	rt.wantHW(0) // a pending shrink does not count
	rt.advance(time.Minute)
	rt.tick()
	rt.wantNoSend(1) // one change in flight
	if e := rt.r.ISRCommitted(c.Seq, 1, 6, []int32{1, 2}, rt.now); !e.Shrunk || e.Expanded {
		t.Fatalf("a committed shrink's effects %+v", e)
	}
	if e := rt.r.ISRCommitted(c.Seq, 1, 6, []int32{1, 2}, rt.now); e.Shrunk || e.Expanded {
		t.Fatalf("a repeated answer counted again: %+v", e)
	}
	rt.wantHW(10)
	if rt.r.PartitionEpoch() != 6 || !slices.Equal(rt.r.ISR(), []int32{1, 2}) {
		t.Fatalf("partition epoch %d ISR %v", rt.r.PartitionEpoch(), rt.r.ISR())
	}
	// Follower 2 stops fetching while the leader appends: out after the lag too.
	rt.append(20)
	rt.advance(lag + time.Millisecond)
	rt.tick()
	rt.lastSent(1)
}

// A follower whose every fetch reaches where the leader was at its previous fetch is
// caught up even though the leader's log end keeps moving (Kafka's lastCaughtUpTime).
func TestCaughtUpBehindSteadyAppends(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1, 2}, []int32{1, 2}, 0)
	off := int64(0)
	for i := 0; i < 100; i++ {
		prevEnd := rt.r.LogEndOffset()
		rt.append(prevEnd + 5)
		rt.fetch(2, prevEnd) // behind the current end, at the previous one
		rt.advance(time.Second)
		rt.tick()
		off = prevEnd
	}
	rt.wantNoSend(0)
	rt.wantHW(off)
	// A follower that falls further behind each time is not.
	for i := 0; i < 40; i++ {
		rt.append(rt.r.LogEndOffset() + 5)
		rt.fetch(2, off)
		rt.advance(time.Second)
		rt.tick()
	}
	rt.lastSent(1)
}

// A committed ISR change is counted once, whichever tells the leader first: the
// AlterPartition answer or the metadata (after which the answer is ignored).
func TestCommittedISRChangeCountedOnce(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 5, []int32{1, 2, 3}, []int32{1, 2, 3}, 0)
	rt.append(10)
	rt.fetch(2, 10)
	rt.advance(lag + time.Millisecond)
	rt.fetch(2, 10)
	rt.tick()
	c := rt.lastSent(1, 2)
	// The metadata again with the state the change was proposed from: no commit (and
	// the leader proposes it again).
	e, _, _ := rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 5, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, 10, rt.now)
	if e.Shrunk || e.Expanded {
		t.Fatalf("the same partition epoch counted as a commit: %+v", e)
	}
	rt.tick()
	if c2 := rt.lastSent(1, 2); c2.Seq == c.Seq {
		t.Fatalf("the shrink was not proposed again")
	} else {
		c = c2
	}
	e, _, _ = rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 6, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 1}}, 10, rt.now)
	if !e.Shrunk || e.Expanded {
		t.Fatalf("the metadata's commit of the shrink: %+v", e)
	}
	if e := rt.r.ISRCommitted(c.Seq, 1, 6, []int32{1, 2}, rt.now); e.Shrunk || e.Expanded {
		t.Fatalf("the late answer counted it again: %+v", e)
	}
	// A new leader epoch is not a commit of anything pending.
	rt.append(20)
	rt.advance(lag + time.Millisecond)
	rt.tick()
	rt.lastSent(1)
	e, _, _ = rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: 2, PartitionEpoch: 7, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}, 20, rt.now)
	if e.Shrunk || e.Expanded {
		t.Fatalf("a new leader epoch counted as a commit: %+v", e)
	}
}

func TestExpandNeedsHighWatermarkAndEpochStart(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1, 2, 3}, []int32{1, 2}, 0)
	rt.append(10)
	rt.fetch(2, 10)
	rt.wantHW(10)
	// A new leader epoch starting at 10 (re-elected), then more appends.
	rt.lead(2, 1, []int32{1, 2, 3}, []int32{1, 2}, 10)
	rt.append(20)
	rt.fetch(2, 15)
	rt.wantHW(15)
	rt.fetch(3, 8)
	rt.wantNoSend(0) // below the high watermark
	rt.fetch(2, 20)
	rt.wantHW(20)
	rt.fetch(3, 19)
	rt.wantNoSend(0) // not yet at the high watermark (20)
	rt.fetch(3, 20)
	c := rt.lastSent(1, 2, 3)
	if c.LeaderEpoch != 2 || c.ISR[2].BrokerEpoch != 300 {
		t.Fatalf("expand %+v", c)
	}
	// While the expansion is pending the high watermark waits for 3 (maximal ISR).
	rt.append(30)
	rt.fetch(2, 30)
	rt.wantHW(20)
	rt.fetch(3, 25)
	rt.wantHW(25)
	if e := rt.r.ISRCommitted(c.Seq, 2, 2, []int32{1, 2, 3}, rt.now); !e.Expanded || e.Shrunk {
		t.Fatalf("a committed expansion's effects %+v", e)
	}
}

// KIP-101/279: a follower that reached the high watermark but not the start of the
// leader's epoch may lack data the new leader committed past the old high watermark.
func TestExpandWaitsForEpochStartOffset(t *testing.T) {
	rt := newRTest(t, 1)
	rt.r = NewReplica(rt.r.cfg, 1, 10, 5) // log end 10, high watermark 5 (as a follower)
	rt.lead(3, 0, []int32{1, 2}, []int32{1}, 10)
	rt.wantHW(10) // the ISR is the leader alone
	rt.fetch(2, 10)
	rt.lastSent(1, 2)
	rt = newRTest(t, 1)
	rt.r = NewReplica(rt.r.cfg, 1, 10, 5)
	rt.lead(3, 0, []int32{1, 2}, []int32{1, 2}, 10)
	rt.fetch(2, 7) // in the ISR already: holds the HW, expands nothing
	rt.wantHW(7)
	rt.wantNoSend(0)
	rt.r.ISRCommitted(0, 3, 1, nil, rt.now) // no change in flight: ignored
	rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: 3, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}, 10, rt.now)
	rt.fetch(2, 8) // at the HW (7 -> 10 once 2 left), below the epoch start (10)
	rt.wantNoSend(0)
	rt.fetch(2, 10)
	rt.lastSent(1, 2)
}

// KIP-841, KIP-903: only registered, unfenced brokers not shutting down, fetching with
// their current broker epoch, join the ISR.
func TestExpandOnlyEligibleBrokers(t *testing.T) {
	for _, c := range []struct {
		name   string
		broker func(b *BrokerState) bool // false: unregistered
		epoch  int64                     // the fetch's broker epoch
	}{
		{"fenced", func(b *BrokerState) bool { b.Fenced = true; return true }, 300},
		{"controlled shutdown", func(b *BrokerState) bool { b.InControlledShutdown = true; return true }, 300},
		{"unregistered", func(b *BrokerState) bool { return false }, 300},
		{"newer epoch than the metadata", func(b *BrokerState) bool { return true }, 301},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := newRTest(t, 1)
			b := rt.brokers[3]
			if c.broker(&b) {
				rt.brokers[3] = b
			} else {
				delete(rt.brokers, 3)
			}
			rt.lead(1, 0, []int32{1, 2, 3}, []int32{1, 2}, 0)
			rt.append(10)
			rt.fetch(2, 10)
			rt.wantHW(10)
			rt.append(20)
			if _, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: 3, FetchOffset: 20, BrokerEpoch: c.epoch, LeaderEndOffset: 20}, rt.now); err != nil {
				t.Fatal(err)
			}
			rt.wantNoSend(0)
			// Nor does the high watermark wait for it as a caught-up candidate.
			rt.fetch(2, 20)
			rt.wantHW(20)
		})
	}
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1, 2, 3}, []int32{1, 2}, 0)
	if _, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: 3, FetchOffset: 0, BrokerEpoch: 299}, rt.now); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("fetch with a stale broker epoch: %v", err)
	}
	if _, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: 4, FetchOffset: 0, BrokerEpoch: -1}, rt.now); !errors.Is(err, ErrUnknownReplica) {
		t.Fatalf("fetch by a broker not among the replicas: %v", err)
	}
	// A fetch without a broker epoch (-1) is not checked.
	e, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: 3, FetchOffset: 0, BrokerEpoch: -1}, rt.now)
	if err != nil {
		t.Fatal(err)
	}
	rt.record(e)
	rt.lastSent(1, 2, 3)
}

// The follower outside the ISR that is caught up and eligible holds the high watermark
// back so that it can join (Kafka: shouldWaitForReplicaToJoinIsr), until it stops being
// caught up.
func TestCaughtUpCandidateHoldsHighWatermark(t *testing.T) {
	rt := newRTest(t, 1)
	rt.lead(1, 0, []int32{1, 2, 3}, []int32{1}, 0)
	rt.append(10)
	rt.fetch(2, 10) // expansion of 2 in flight
	c := rt.lastSent(1, 2)
	rt.fetch(3, 10) // caught up, but a change is in flight: no proposal
	rt.wantNoSend(1)
	rt.append(20)
	rt.fetch(2, 20)
	rt.wantHW(10) // 3 holds it
	rt.advance(lag + time.Millisecond)
	rt.fetch(2, 20)
	rt.tick()
	rt.wantHW(20)
	rt.r.ISRCommitted(c.Seq, 1, 1, []int32{1, 2}, rt.now)
	rt.fetch(3, 20) // now it joins
	rt.lastSent(1, 2, 3)
}

func TestAlterPartitionAnswers(t *testing.T) {
	setup := func(t *testing.T) (*rtest, ISRChange) {
		rt := newRTest(t, 1)
		rt.lead(1, 4, []int32{1, 2, 3}, []int32{1, 2}, 0)
		rt.append(10)
		rt.fetch(2, 10)
		rt.fetch(3, 10)
		return rt, rt.lastSent(1, 2, 3)
	}
	t.Run("refused", func(t *testing.T) {
		rt, c := setup(t)
		if e := rt.r.ISRFailed(c.Seq, AlterRefused); !e.CheckAcks {
			t.Fatalf("a refused expansion shrinks the maximal ISR: %+v", e)
		}
		if rt.r.Pending() != nil || len(rt.r.MaximalISR()) != 2 {
			t.Fatalf("pending %+v maximal %v", rt.r.Pending(), rt.r.MaximalISR())
		}
		rt.fetch(3, 10) // proposed again
		if c2 := rt.lastSent(1, 2, 3); c2.Seq == c.Seq {
			t.Fatalf("same sequence number")
		}
	})
	t.Run("retry", func(t *testing.T) {
		rt, c := setup(t)
		e := rt.r.ISRFailed(c.Seq, AlterRetry)
		if e.Send == nil || e.Send.Seq != c.Seq {
			t.Fatalf("retry sends %+v", e.Send)
		}
	})
	t.Run("await metadata", func(t *testing.T) {
		rt, c := setup(t)
		rt.r.ISRFailed(c.Seq, AlterAwaitMetadata)
		if rt.r.Pending() == nil {
			t.Fatalf("pending cleared")
		}
		rt.advance(lag * 2)
		rt.tick()
		rt.wantNoSend(1) // still waiting: no new proposals
		// The metadata brings the partition's state; a stale one is ignored.
		if _, ok, _ := rt.r.BecomeLeader(LeaderAndISR{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}, 10, rt.now); ok {
			t.Fatalf("an older partition epoch was accepted")
		}
		rt.lead(1, 5, []int32{1, 2, 3}, []int32{1, 2, 3}, 10)
		if rt.r.Pending() != nil || len(rt.r.ISR()) != 3 {
			t.Fatalf("after the metadata: pending %+v ISR %v", rt.r.Pending(), rt.r.ISR())
		}
	})
	t.Run("stale answers", func(t *testing.T) {
		rt, c := setup(t)
		for _, a := range []struct {
			seq            uint64
			leaderEpoch    int32
			partitionEpoch int32
		}{{c.Seq + 1, 1, 5}, {c.Seq, 2, 5}, {c.Seq, 1, 3}} {
			rt.r.ISRCommitted(a.seq, a.leaderEpoch, a.partitionEpoch, []int32{1, 2, 3}, rt.now)
			if rt.r.Pending() == nil {
				t.Fatalf("answer %+v applied", a)
			}
		}
		rt.r.ISRFailed(c.Seq+1, AlterRefused)
		if rt.r.Pending() == nil {
			t.Fatalf("a failure for another change applied")
		}
		// The same partition epoch (the controller found nothing to change) commits.
		rt.r.ISRCommitted(c.Seq, 1, 4, []int32{1, 2, 3}, rt.now)
		if rt.r.Pending() != nil || rt.r.PartitionEpoch() != 4 {
			t.Fatalf("pending %+v partition epoch %d", rt.r.Pending(), rt.r.PartitionEpoch())
		}
	})
}

// A new leader resets its followers as Kafka's resetReplicaState: the ISR members count
// as caught up from now (not shrunk before the lag passes), the others as never, so
// they hold nothing back.
func TestNewLeaderResetsFollowers(t *testing.T) {
	rt := newRTest(t, 1)
	rt.r.BecomeFollower(LeaderAndISR{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 0, Replicas: []int32{1, 2, 3}})
	rt.r.FollowerProgress(10, 0, 10)
	rt.advance(time.Hour)
	rt.lead(2, 1, []int32{1, 2, 3}, []int32{1, 2}, 10)
	rt.wantHW(10)
	rt.append(12)
	rt.wantHW(10) // 2 is in the ISR, its log end unknown
	rt.advance(lag)
	rt.tick()
	rt.wantNoSend(0)
	rt.advance(time.Millisecond)
	rt.tick()
	rt.lastSent(1)
}

func TestFollowerHighWatermark(t *testing.T) {
	rt := newRTest(t, 1)
	if ok, newEpoch := rt.r.BecomeFollower(LeaderAndISR{Leader: 2, LeaderEpoch: 4, PartitionEpoch: 2, Replicas: []int32{1, 2}}); !ok || !newEpoch {
		t.Fatalf("BecomeFollower %v %v", ok, newEpoch)
	}
	if _, err := rt.r.FollowerFetch(FollowerFetch{ReplicaID: 2}, rt.now); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower recorded a fetch: %v", err)
	}
	if err := rt.r.CheckAppendAcksAll(); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower takes appends: %v", err)
	}
	rt.r.FollowerProgress(10, 0, 50)
	rt.wantHW(10) // at most its log end
	rt.r.FollowerProgress(20, 0, 15)
	rt.wantHW(15)
	rt.r.FollowerProgress(20, 0, 12) // a new leader with a lower high watermark
	rt.wantHW(12)
	rt.r.Truncated(11, 0)
	rt.wantHW(11)
	if ok, newEpoch := rt.r.BecomeFollower(LeaderAndISR{Leader: 2, LeaderEpoch: 4, PartitionEpoch: 3, Replicas: []int32{1, 2}}); !ok || newEpoch {
		t.Fatalf("same epoch again: %v %v", ok, newEpoch)
	}
	if ok, _ := rt.r.BecomeFollower(LeaderAndISR{Leader: 3, LeaderEpoch: 5, PartitionEpoch: 1}); ok {
		t.Fatalf("an older partition epoch was accepted")
	}
}

func TestAlterOutcomeOf(t *testing.T) {
	for code, want := range map[int16]AlterOutcome{
		kerr.OperationNotAttempted.Code: AlterRefused, kerr.IneligibleReplica.Code: AlterRefused,
		kerr.FencedLeaderEpoch.Code: AlterAwaitMetadata, kerr.InvalidUpdateVersion.Code: AlterAwaitMetadata,
		kerr.UnknownTopicOrPartition.Code: AlterAwaitMetadata, kerr.NewLeaderElected.Code: AlterAwaitMetadata,
		kerr.RequestTimedOut.Code: AlterRetry, kerr.NotController.Code: AlterRetry,
	} {
		if got := AlterOutcomeOf(code); got != want {
			t.Errorf("code %d: %v, want %v", code, got, want)
		}
	}
}
