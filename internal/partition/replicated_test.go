package partition

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// A small cluster of replicas of one partition, each over its own MemFS, driven by hand:
// fetches are calls (replicate), the controller is the test.

type node struct {
	id   int32
	fsys *vfs.MemFS
	p    *Partition
	sent []ISRChange
}

type cluster struct {
	t     *testing.T
	clock *fakeClock
	nodes map[int32]*node
	lc    log.Config
}

func newCluster(t *testing.T, ids ...int32) *cluster {
	c := &cluster{t: t, clock: &fakeClock{t: time.UnixMilli(1_700_000_000_000)}, nodes: map[int32]*node{}}
	for _, id := range ids {
		n := &node{id: id, fsys: vfs.NewMem()}
		c.nodes[id] = n
		c.open(n, -1)
	}
	return c
}

// open opens node n's replica with the checkpointed high watermark hw.
func (c *cluster) open(n *node, hw int64) {
	c.t.Helper()
	l, err := log.Open(n.fsys, "/data/t-0", c.lc, c.clock.now)
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := OpenReplica("t", 0, l, Config{MaxMessageBytes: 1 << 20, MinInsyncReplicas: 2, TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1},
		c.clock.now, ReplicaOptions{ReplicaConfig: ReplicaConfig{LocalID: n.id, LagTimeMax: 10 * time.Second},
			HighWatermark: hw, SendISRChange: func(ch ISRChange) { n.sent = append(n.sent, ch) }})
	if err != nil {
		c.t.Fatal(err)
	}
	n.p = p
	c.t.Cleanup(func() { p.Close() })
}

func (c *cluster) lead(id int32, st LeaderAndISR) {
	c.t.Helper()
	st.Leader = id
	if ok, err := c.nodes[id].p.BecomeLeader(st); !ok || err != nil {
		c.t.Fatalf("BecomeLeader on %d: %v %v", id, ok, err)
	}
}

func (c *cluster) follow(id int32, st LeaderAndISR) {
	c.t.Helper()
	if ok, _, err := c.nodes[id].p.BecomeFollower(st); !ok || err != nil {
		c.t.Fatalf("BecomeFollower on %d: %v %v", id, ok, err)
	}
}

// replicate is one fetch of follower id from leader, applied as a fetcher would, with
// its truncation on a divergence.
func (c *cluster) replicate(leader, id int32) FollowerReadResult {
	c.t.Helper()
	f := c.nodes[id].p
	res, err := c.nodes[leader].p.ReadForFollower(FollowerRead{ReplicaID: id, BrokerEpoch: -1, CurrentLeaderEpoch: -1,
		FetchOffset: f.LogEndOffset(), LastFetchedEpoch: f.LatestEpoch(), LogStartOffset: f.LogStartOffset(), MaxBytes: 1 << 20})
	if err != nil {
		c.t.Fatalf("fetch by %d from %d: %v", id, leader, err)
	}
	if res.Diverging {
		e, end := f.LocalEndOffsetForEpoch(res.DivergingEpoch)
		to := min(end, res.DivergingEndOffset, f.LogEndOffset())
		if e != res.DivergingEpoch {
			to = min(end, f.LogEndOffset())
		}
		if err := f.TruncateAsFollower(to); err != nil {
			c.t.Fatal(err)
		}
		return res
	}
	data := make([]byte, 0)
	for _, r := range res.Ranges {
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			c.t.Fatal(err)
		}
		data = append(data, buf...)
	}
	if _, err := f.AppendAsFollower(data); err != nil {
		c.t.Fatalf("append on %d: %v", id, err)
	}
	if err := f.FollowerLearned(res.HighWatermark, res.LogStartOffset); err != nil {
		c.t.Fatal(err)
	}
	return res
}

func idemRecord(t *testing.T, pid int64, seq int32, value string) batch.Batch {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq},
		[]batch.Record{{Timestamp: 1_700_000_000_000, Value: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func three() LeaderAndISR {
	return LeaderAndISR{LeaderEpoch: 1, PartitionEpoch: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
}

func (c *cluster) setup3() {
	c.lead(1, three())
	st := three()
	st.Leader = 1
	c.follow(2, st)
	c.follow(3, st)
}

func wantDone(t *testing.T, w *AckWaiter, want error) AppendResult {
	t.Helper()
	select {
	case <-w.Done():
	default:
		t.Fatalf("acks=all waiter for offset %d not done", w.End()-1)
	}
	res, err := w.Result()
	if !errors.Is(err, want) || (want == nil && err != nil) {
		t.Fatalf("acks=all outcome %v, want %v", err, want)
	}
	return res
}

func wantWaiting(t *testing.T, w *AckWaiter) {
	t.Helper()
	select {
	case <-w.Done():
		_, err := w.Result()
		t.Fatalf("acks=all waiter done too early (%v)", err)
	default:
	}
}

func TestAcksAllWaitsForTheISR(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	w, err := leader.AppendAcksAll(idemRecord(t, 7, 0, "a"), c.clock.now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wantWaiting(t, w)
	if leader.HighWatermark() != 0 {
		t.Fatalf("high watermark %d before any follower fetched", leader.HighWatermark())
	}
	c.replicate(1, 2)
	c.replicate(1, 2) // its fetch offset now covers the batch
	wantWaiting(t, w) // 3 is in the ISR and has nothing
	c.replicate(1, 3)
	c.replicate(1, 3)
	res := wantDone(t, w, nil)
	if res.BaseOffset != 0 || leader.HighWatermark() != 1 {
		t.Fatalf("base offset %d, high watermark %d", res.BaseOffset, leader.HighWatermark())
	}
	// Consumers see only what the ISR has.
	if rs, err := c.nodes[2].p.Read(0, 1<<20, true, false); err != nil || len(rs) != 0 {
		// Follower 2 learned the high watermark 0 at its last fetch: nothing visible yet.
		t.Fatalf("follower read past its high watermark: %v %v", rs, err)
	}
	c.replicate(1, 2)
	if c.nodes[2].p.HighWatermark() != 1 {
		t.Fatalf("follower high watermark %d, want 1", c.nodes[2].p.HighWatermark())
	}
}

func TestAcksAllRefusedUnderMinISR(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	st := three()
	st.ISR = []int32{1}
	c.lead(1, st)
	leader := c.nodes[1].p
	_, err := leader.AppendAcksAll(idemRecord(t, 7, 0, "a"), c.clock.now().Add(time.Minute))
	if !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [1], min.insync.replicas 2: %v", err)
	}
	if leader.LogEndOffset() != 0 {
		t.Fatalf("the refused batch was appended")
	}
	// acks=1 goes in, but the high watermark stays (strict min ISR).
	if _, err := leader.Append(idemRecord(t, 7, 0, "a")); err != nil {
		t.Fatal(err)
	}
	if leader.LogEndOffset() != 1 || leader.HighWatermark() != 0 {
		t.Fatalf("log end %d, high watermark %d", leader.LogEndOffset(), leader.HighWatermark())
	}
}

func TestAcksAllTimesOutAndFailsOnLeadershipLoss(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	deadline := c.clock.now().Add(time.Second)
	w1, err := leader.AppendAcksAll(idemRecord(t, 7, 0, "a"), deadline)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := leader.AppendAcksAll(idemRecord(t, 7, 1, "b"), deadline.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c.clock.t = deadline
	leader.Tick()
	wantDone(t, w1, ErrAckTimeout)
	wantWaiting(t, w2)
	st := three()
	st.Leader, st.LeaderEpoch, st.PartitionEpoch = 2, 2, 1
	c.follow(1, st)
	wantDone(t, w2, ErrNotLeader)
	if _, err := leader.AppendAcksAll(idemRecord(t, 7, 2, "c"), deadline); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower took an acks=all append: %v", err)
	}
	if _, err := leader.Append(idemRecord(t, 7, 2, "c")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower took an append: %v", err)
	}
	if leader.AckWaiters() != 0 {
		t.Fatalf("%d waiters left", leader.AckWaiters())
	}
}

func TestAwaitAcksUsesTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 2, 3)
		for _, n := range c.nodes {
			n.p.now = time.Now // the bubble's clock
		}
		c.setup3()
		leader := c.nodes[1].p
		start := time.Now()
		w, err := leader.AppendAcksAll(idemRecord(t, 7, 0, "a"), start.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = leader.AwaitAcks(context.Background(), w)
		if !errors.Is(err, ErrAckTimeout) || time.Since(start) != 30*time.Second {
			t.Fatalf("AwaitAcks: %v after %v", err, time.Since(start))
		}
		if leader.AckWaiters() != 0 {
			t.Fatalf("the timed-out waiter is still queued")
		}
		// One that completes returns at once.
		w, err = leader.AppendAcksAll(idemRecord(t, 7, 1, "b"), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(time.Second)
			for i := 0; i < 2; i++ {
				c.replicate(1, 2)
				c.replicate(1, 3)
			}
		}()
		at := time.Now()
		if _, err := leader.AwaitAcks(context.Background(), w); err != nil || time.Since(at) != time.Second {
			t.Fatalf("AwaitAcks: %v after %v", err, time.Since(at))
		}
	})
}

func TestAckWaitersBounded(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	leader.repl.acks.max = 2
	for i := int32(0); i < 2; i++ {
		if _, err := leader.AppendAcksAll(idemRecord(t, 7, i, "a"), c.clock.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leader.AppendAcksAll(idemRecord(t, 7, 2, "a"), c.clock.now().Add(time.Minute)); !errors.Is(err, ErrTooManyAckWaiters) {
		t.Fatalf("third waiter: %v", err)
	}
	if leader.LogEndOffset() != 2 {
		t.Fatalf("log end %d: the refused append was written", leader.LogEndOffset())
	}
}

// A retried duplicate is answered with its original's offsets, and only once they are
// committed, like the original.
func TestDuplicateAnsweredOnceCommitted(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	if _, err := leader.Append(idemRecord(t, 9, 0, "x")); err != nil { // someone else's offset 0
		t.Fatal(err)
	}
	b := idemRecord(t, 7, 0, "a")
	orig, err := leader.AppendAcksAll(b, c.clock.now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := leader.AppendAcksAll(idemRecord(t, 7, 0, "a"), c.clock.now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wantWaiting(t, orig)
	wantWaiting(t, retry)
	for i := 0; i < 2; i++ {
		c.replicate(1, 2)
		c.replicate(1, 3)
	}
	r1, r2 := wantDone(t, orig, nil), wantDone(t, retry, nil)
	if r1.BaseOffset != 1 || r2.BaseOffset != 1 || leader.LogEndOffset() != 2 {
		t.Fatalf("original at %d, retry at %d, log end %d", r1.BaseOffset, r2.BaseOffset, leader.LogEndOffset())
	}
}

func TestReadForFollowerChecks(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	st := three()
	st.LeaderEpoch = 5
	c.lead(1, st)
	leader := c.nodes[1].p
	for i := int32(0); i < 3; i++ {
		if _, err := leader.Append(idemRecord(t, 7, i, "a")); err != nil {
			t.Fatal(err)
		}
	}
	read := func(f FollowerRead) (FollowerReadResult, error) {
		if f.MaxBytes == 0 {
			f.MaxBytes = 1 << 20
		}
		return leader.ReadForFollower(f)
	}
	for _, tc := range []struct {
		name string
		f    FollowerRead
		want error
	}{
		{"fenced", FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 4, LastFetchedEpoch: -1}, ErrFencedLeaderEpoch},
		{"unknown epoch", FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 6, LastFetchedEpoch: -1}, ErrUnknownLeaderEpoch},
		{"not a replica, epoch given", FollowerRead{ReplicaID: 4, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}, ErrUnknownLeaderEpoch},
		{"not a replica, no epoch", FollowerRead{ReplicaID: 4, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}, ErrNotLeader},
		{"past the log end", FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 5, FetchOffset: 4, LastFetchedEpoch: -1}, log.ErrOffsetOutOfRange},
		{"epoch newer than any", FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 5, FetchOffset: 1, LastFetchedEpoch: 6}, log.ErrOffsetOutOfRange},
	} {
		if _, err := read(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// KIP-320: the follower's last fetched epoch 3 is unknown here (the leader has only
	// epoch 5, from 0): the answer is epoch 3 ending at 0, no records, no progress.
	res, err := read(FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 5, FetchOffset: 2, LastFetchedEpoch: 3})
	if err != nil || !res.Diverging || res.DivergingEpoch != 3 || res.DivergingEndOffset != 0 || len(res.Ranges) != 0 {
		t.Fatalf("diverging: %+v %v", res, err)
	}
	// The current epoch ends at the log end: a follower past it diverges too.
	res, err = read(FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 5, FetchOffset: 3, LastFetchedEpoch: 5})
	if err != nil || res.Diverging || len(res.Ranges) != 0 || res.LogEndOffset != 3 {
		t.Fatalf("at the end: %+v %v", res, err)
	}
	res, err = read(FollowerRead{ReplicaID: 2, CurrentLeaderEpoch: 5, FetchOffset: 1, LastFetchedEpoch: 5})
	if err != nil || res.Diverging || len(res.Ranges) != 1 {
		t.Fatalf("within: %+v %v", res, err)
	}
	// Consumers are not followers.
	if _, err := c.nodes[2].p.ReadForFollower(FollowerRead{ReplicaID: 3}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a replica with no role served a follower: %v", err)
	}
}

// The classic KIP-101 scenario: the leader appended a tail only one follower fetched,
// then died; the other follower leads in a new epoch and writes different records at
// the same offsets. The old leader comes back as a follower: it must truncate its tail
// by epoch (not by its high watermark, which is below what the ISR committed) and end
// byte-identical to the new leader, with producer state that follows.
func TestFollowerTruncatesByEpochAfterLeaderChange(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	for i := int32(0); i < 4; i++ {
		if _, err := leader.Append(idemRecord(t, 7, i, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.replicate(1, 2)
	c.replicate(1, 3)
	c.replicate(1, 2)
	c.replicate(1, 3) // everyone has 0-3, high watermark 4
	for i := int32(4); i < 6; i++ {
		if _, err := leader.Append(idemRecord(t, 7, i, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.replicate(1, 2) // 2 has 4-5, 3 does not; the high watermark is 4
	if leader.HighWatermark() != 4 {
		t.Fatalf("high watermark %d", leader.HighWatermark())
	}
	// Leader 1 dies; 3 is elected (it was in the ISR) in epoch 2.
	st := LeaderAndISR{LeaderEpoch: 2, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}}
	c.lead(3, st)
	st.Leader = 3
	c.follow(2, st)
	newLeader := c.nodes[3].p
	// The producer retries 4 (not acknowledged) and goes on: on the new leader these are
	// new batches at 4 and 5.
	w, err := newLeader.AppendAcksAll(idemRecord(t, 7, 4, "v4"), c.clock.now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newLeader.Append(idemRecord(t, 9, 0, "other")); err != nil {
		t.Fatal(err)
	}
	// 2 diverged at 4 (its batches 4-5 are epoch 1, the new leader's epoch 1 ends at 4).
	if res := c.replicate(3, 2); !res.Diverging {
		t.Fatalf("no divergence found: %+v", res)
	}
	if c.nodes[2].p.LogEndOffset() != 4 {
		t.Fatalf("follower 2 truncated to %d, want 4", c.nodes[2].p.LogEndOffset())
	}
	c.replicate(3, 2)
	c.replicate(3, 2)
	res := wantDone(t, w, nil)
	if res.BaseOffset != 4 {
		t.Fatalf("retry placed at %d", res.BaseOffset)
	}
	// The old leader returns as a follower: its high watermark (4, checkpointed or not)
	// is irrelevant, the epoch says where to cut.
	st.PartitionEpoch = 2
	c.follow(1, st)
	if res := c.replicate(3, 1); !res.Diverging {
		t.Fatalf("no divergence for the old leader")
	}
	c.replicate(3, 1)
	c.replicate(3, 1)
	sameBytes(t, newLeader, c.nodes[1].p, newLeader.HighWatermark())
	sameBytes(t, newLeader, c.nodes[2].p, newLeader.HighWatermark())
	// Producer state followed the truncation: on the old leader, producer 7's last
	// sequence is 4 (the new leader's), so 5 follows and a retry of 4 is a duplicate.
	old := c.nodes[1].p
	old.mu.Lock()
	e := old.producers[7]
	last := e.last()
	old.mu.Unlock()
	if last == nil || last.lastSeq != 4 || last.firstOffset != 4 {
		t.Fatalf("producer 7 on the old leader: %+v", last)
	}
	// Its truncated batch (sequence 5 at offset 5) is forgotten: led by it again, the
	// producer's sequence 5 is a new batch, not a duplicate of what is now producer 9's
	// offset 5.
	c.lead(1, LeaderAndISR{LeaderEpoch: 3, PartitionEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	res, err = old.Append(idemRecord(t, 7, 5, "v5"))
	if err != nil || res.BaseOffset != 6 {
		t.Fatalf("sequence 5 after the truncation: %+v %v, want a new batch at 6", res, err)
	}
}

// sameBytes fails unless a and b hold the same bytes below offset end.
func sameBytes(t *testing.T, a, b *Partition, end int64) {
	t.Helper()
	ra, rb := readAll(t, a, end), readAll(t, b, end)
	if string(ra) != string(rb) {
		t.Fatalf("replicas differ below %d: %d and %d bytes", end, len(ra), len(rb))
	}
}

func readAll(t *testing.T, p *Partition, end int64) []byte {
	t.Helper()
	rs, err := p.log.Read(p.LogStartOffset(), end, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, r := range rs {
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

// The high watermark checkpoint: a restart never shows consumers what was not
// committed, and keeps what was.
func TestHighWatermarkSurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.setup3()
	leader := c.nodes[1].p
	for i := int32(0); i < 5; i++ {
		if _, err := leader.Append(idemRecord(t, 7, i, "a")); err != nil {
			t.Fatal(err)
		}
	}
	c.replicate(1, 2)
	c.replicate(1, 3)
	c.replicate(1, 2)
	c.replicate(1, 3)
	for i := int32(5); i < 8; i++ { // not fetched: past the high watermark
		if _, err := leader.Append(idemRecord(t, 7, i, "a")); err != nil {
			t.Fatal(err)
		}
	}
	if leader.HighWatermark() != 5 || leader.LogEndOffset() != 8 {
		t.Fatalf("high watermark %d, log end %d", leader.HighWatermark(), leader.LogEndOffset())
	}
	n := c.nodes[1]
	ck := NewHighWatermarkCheckpoint(n.fsys, "/data")
	if err := ck.Write([]*Partition{leader}); err != nil {
		t.Fatal(err)
	}
	if err := leader.Log().Flush(); err != nil {
		t.Fatal(err)
	}
	n.fsys = n.fsys.Crash()
	hws, note, err := ReadHighWatermarks(n.fsys, "/data")
	if err != nil || note != "" {
		t.Fatal(note, err)
	}
	c.open(n, CheckpointedHighWatermark(hws, "t", 0))
	p := n.p
	if p.HighWatermark() != 5 || p.LogEndOffset() != 8 {
		t.Fatalf("after restart: high watermark %d, log end %d", p.HighWatermark(), p.LogEndOffset())
	}
	// A consumer below the high watermark reads; past it, within the log, waits (no
	// records, not out of range); past the log end is out of range.
	if rs, err := p.Read(4, 1<<20, true, false); err != nil || len(rs) != 1 {
		t.Fatalf("read at 4: %v %v", rs, err)
	}
	if rs, err := p.Read(6, 1<<20, true, false); err != nil || len(rs) != 0 {
		t.Fatalf("read at 6: %v %v", rs, err)
	}
	if _, err := p.Read(9, 1<<20, true, false); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("read at 9: %v", err)
	}
	// A partition missing from the checkpoint starts at its log start.
	n.p.Close()
	c.open(n, -1)
	if n.p.HighWatermark() != 0 {
		t.Fatalf("no checkpoint: high watermark %d", n.p.HighWatermark())
	}
}

// A follower crashes in the middle of appending the leader's batches and after a
// truncation; it reopens and catches up to identical bytes.
func TestFollowerCrashAndCatchUp(t *testing.T) {
	c := newCluster(t, 1, 2)
	st := LeaderAndISR{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	c.lead(1, st)
	st.Leader = 1
	c.follow(2, st)
	leader := c.nodes[1].p
	for i := int32(0); i < 20; i++ {
		if _, err := leader.Append(idemRecord(t, 7, i, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			c.replicate(1, 2)
		}
	}
	f := c.nodes[2]
	f.fsys = f.fsys.Crash() // nothing of the follower was synced
	c.open(f, -1)
	c.follow(2, st)
	for f.p.LogEndOffset() < leader.LogEndOffset() || f.p.HighWatermark() < leader.HighWatermark() {
		c.replicate(1, 2)
	}
	sameBytes(t, leader, f.p, leader.LogEndOffset())
	if err := f.p.Log().Flush(); err != nil {
		t.Fatal(err)
	}
	// Truncation, then a crash before the next append is synced.
	if err := f.p.TruncateAsFollower(10); err != nil {
		t.Fatal(err)
	}
	f.fsys = f.fsys.Crash()
	c.open(f, 5)
	c.follow(2, st)
	if f.p.LogEndOffset() != 10 || f.p.HighWatermark() != 5 {
		t.Fatalf("after the crash: log end %d, high watermark %d", f.p.LogEndOffset(), f.p.HighWatermark())
	}
	for f.p.LogEndOffset() < leader.LogEndOffset() {
		c.replicate(1, 2)
	}
	sameBytes(t, leader, f.p, leader.LogEndOffset())
	// The producer state was rebuilt from the log: as leader, 2 takes 20 next and
	// answers a retry of 19 with its original offset.
	st2 := LeaderAndISR{LeaderEpoch: 2, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{2}}
	c.lead(2, st2)
	res, err := f.p.Append(idemRecord(t, 7, 19, "v19"))
	if err != nil || res.BaseOffset != 19 {
		t.Fatalf("retry of 19 on the new leader: %+v %v", res, err)
	}
	if _, err := f.p.Append(idemRecord(t, 7, 21, "gap")); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a sequence gap on the new leader: %v", err)
	}
}

// A fetch response cut at its size limit may end in part of a batch: the whole batches
// before it are appended, the part is left for the next fetch.
func TestFollowerAppendIgnoresPartialLastBatch(t *testing.T) {
	c := newCluster(t, 1, 2)
	st := LeaderAndISR{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	c.follow(2, st)
	b1, b2 := idemRecord(t, 7, 0, "a"), idemRecord(t, 7, 1, "b")
	b1.SetBaseOffset(0)
	b2.SetBaseOffset(1)
	b1.SetPartitionLeaderEpoch(1)
	b2.SetPartitionLeaderEpoch(1)
	records := append(append([]byte(nil), b1...), b2[:len(b2)/2]...)
	info, err := c.nodes[2].p.AppendAsFollower(records)
	if err != nil || info.Batches != 1 || info.LastOffset != 0 || info.LastEpoch != 1 {
		t.Fatalf("append: %+v %v", info, err)
	}
	if _, err := c.nodes[2].p.AppendAsFollower([]byte{1, 2, 3}); err != nil {
		t.Fatalf("a few bytes of a header: %v", err)
	}
	bad := append([]byte(nil), b2...)
	bad[len(bad)-1] ^= 0xff
	if _, err := c.nodes[2].p.AppendAsFollower(bad); err == nil {
		t.Fatalf("a corrupt whole batch was appended")
	}
	if c.nodes[2].p.LogEndOffset() != 1 {
		t.Fatalf("log end %d", c.nodes[2].p.LogEndOffset())
	}
}
