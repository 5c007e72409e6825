package partition

// A replicated partition: the replica state machine (replica.go) and the acks=all
// purgatory (acks.go) wired to the log. Open makes a single node's partition, its own
// leader and whole ISR, whose high watermark follows the log end (after the flush
// policy); OpenReplica makes one that has no role until the metadata gives it one
// (BecomeLeader, BecomeFollower) and whose high watermark starts from the checkpoint
// (hwcheckpoint.go).
//
// As leader it takes appends (the role is checked under Partition.mu, where the leader
// epoch is stamped on each batch), serves followers' fetches (ReadForFollower: leader
// epoch checks, KIP-320 divergence, reads up to the log end, progress into the state
// machine) and answers acks=all once the ISR has the batch (AppendAcksAll). As follower
// it appends the leader's batches as they are, learns the high watermark from the
// leader, and truncates by leader epoch (follower.go in the log package does the log
// side; here the producer state follows).
//
// Locks: Partition.mu (appends, role, producer state) is taken before repl.mu (the
// state machine and the purgatory), never the other way. Neither is held while calling
// the AlterPartition sender or waking fetches.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
)

// replState is a replicated partition's replication state; rep is nil for a single node's.
type replState struct {
	rep  *Replica // set by OpenReplica, never changed; guarded by mu
	role Role     // guarded by Partition.mu: the role appends see

	mu   sync.Mutex
	acks ackQueue // guarded by mu

	// acked is the leader's log end offset as fed to the state machine: appends at or
	// past it are still being synced by the flush policy.
	acked atomic.Int64

	sendISR func(ISRChange)
	isrL    ISRListener // nil: nobody counts

	appendMu sync.Mutex
	appendCh chan struct{} // closed when the log end moves; nil if nobody waits
}

// ReplicaOptions configure OpenReplica.
type ReplicaOptions struct {
	ReplicaConfig
	// HighWatermark is the checkpointed high watermark (ReadHighWatermarks); -1 if none,
	// which starts it at the log start offset.
	HighWatermark int64
	// MaxAckWaiters is vltava.replica.ack.waiters.max; 0 means DefaultMaxAckWaiters.
	MaxAckWaiters int
	// SendISRChange hands an AlterPartition to the controller channel. It is called
	// without the partition's locks and must not block; the answer comes back through
	// ISRCommitted or ISRFailed. Nil drops them (tests of other things).
	SendISRChange func(ISRChange)
	// ISRListener is told of each ISR change of this leader the controller committed
	// (metrics); nil tells nobody. Called without the partition's locks.
	ISRListener ISRListener
}

// ISRListener counts a leader's committed ISR changes (Kafka's ReplicaManager
// IsrShrinksPerSec and IsrExpandsPerSec).
type ISRListener interface {
	Shrunk()
	Expanded()
}

// OpenReplica wraps an opened log as a replica with no role yet: it takes no appends
// and serves no fetches until BecomeLeader or BecomeFollower.
func OpenReplica(topic string, index int32, l *log.Log, cfg Config, now func() time.Time, opts ReplicaOptions) (*Partition, error) {
	p, err := open(topic, index, l, cfg, now)
	if err != nil {
		return nil, err
	}
	hw := opts.HighWatermark
	if hw < 0 {
		hw = l.LogStartOffset()
	}
	hw = min(max(hw, l.LogStartOffset()), l.LogEndOffset())
	p.leaderEpoch = l.LatestEpoch()
	p.repl.rep = NewReplica(opts.ReplicaConfig, cfg.MinInsyncReplicas, l.LogEndOffset(), hw)
	p.repl.acked.Store(l.LogEndOffset())
	p.repl.acks.max = opts.MaxAckWaiters
	if p.repl.acks.max <= 0 {
		p.repl.acks.max = DefaultMaxAckWaiters
	}
	p.repl.sendISR = opts.SendISRChange
	p.repl.isrL = opts.ISRListener
	p.highWatermark.Store(hw)
	return p, nil
}

// Replicated says whether the partition was opened with OpenReplica.
func (p *Partition) Replicated() bool { return p.repl.rep != nil }

// Role returns the replica's role (RoleLeader for a single node's partition).
func (p *Partition) Role() Role {
	if p.repl.rep == nil {
		return RoleLeader
	}
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return p.repl.rep.Role()
}

// ISR returns the committed ISR (a single node's: empty, meaning itself).
func (p *Partition) ISR() []int32 {
	if p.repl.rep == nil {
		return nil
	}
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return p.repl.rep.ISR()
}

// ReplicaState returns a snapshot of the state machine's leader, epochs and ISR.
func (p *Partition) ReplicaState() (leader, leaderEpoch, partitionEpoch int32, isr []int32) {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	r := p.repl.rep
	return r.Leader(), r.LeaderEpoch(), r.PartitionEpoch(), r.ISR()
}

// ackedEnd is the end of what the flush policy lets be acknowledged: appends below it are
// done. For a single node that is the high watermark.
func (p *Partition) ackedEnd() int64 {
	if p.repl.rep == nil {
		return p.HighWatermark()
	}
	return p.repl.acked.Load()
}

// appended records that the log holds acknowledgeable batches up to end.
func (p *Partition) appended(end int64) {
	if p.repl.rep == nil {
		// One replica is the whole ISR: the high watermark follows the log end.
		p.advanceHighWatermark(end)
		return
	}
	for {
		cur := p.repl.acked.Load()
		if end <= cur || p.repl.acked.CompareAndSwap(cur, end) {
			break
		}
	}
	p.step(func(r *Replica) Effects { return r.LocalAppend(end, p.now()) })
	p.notifyAppend()
}

// step runs one input of the state machine and carries out its effects: the high
// watermark, the acks=all waiters, the AlterPartition to send, the fetches to wake.
func (p *Partition) step(in func(r *Replica) Effects) {
	p.repl.mu.Lock()
	e := in(p.repl.rep)
	send := p.applyLocked(e)
	p.repl.mu.Unlock()
	p.afterStep(e, send)
}

// applyLocked publishes e's high watermark and completes waiters; repl.mu is held.
func (p *Partition) applyLocked(e Effects) *ISRChange {
	old := p.highWatermark.Swap(e.HighWatermark)
	if e.CheckAcks || old != e.HighWatermark {
		hw, enough, leading := p.repl.rep.AckState()
		p.repl.acks.complete(hw, enough, leading)
	}
	return e.Send
}

func (p *Partition) afterStep(e Effects, send *ISRChange) {
	p.notify()
	if l := p.repl.isrL; l != nil {
		if e.Shrunk {
			l.Shrunk()
		}
		if e.Expanded {
			l.Expanded()
		}
	}
	if send != nil && p.repl.sendISR != nil {
		p.repl.sendISR(*send)
	}
}

// WaitAppend returns a channel closed the next time the log end moves (a follower's
// long-poll fetch reads up to the log end, not the high watermark).
func (p *Partition) WaitAppend() <-chan struct{} {
	p.repl.appendMu.Lock()
	defer p.repl.appendMu.Unlock()
	if p.repl.appendCh == nil {
		p.repl.appendCh = make(chan struct{})
	}
	return p.repl.appendCh
}

func (p *Partition) notifyAppend() {
	p.repl.appendMu.Lock()
	if p.repl.appendCh != nil {
		close(p.repl.appendCh)
		p.repl.appendCh = nil
	}
	p.repl.appendMu.Unlock()
}

// BecomeLeader makes the replica the leader of st. On a new leader epoch the epoch's
// start offset, the log end, goes into the leader-epoch cache before any batch of the
// epoch is written (KIP-101). A state older than the one known is ignored.
func (p *Partition) BecomeLeader(st LeaderAndISR) (accepted bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, ErrClosed
	}
	leo := p.log.LogEndOffset()
	p.repl.mu.Lock()
	e, accepted, newEpoch := p.repl.rep.BecomeLeader(st, leo, p.now())
	if accepted && newEpoch {
		if err = p.log.AssignEpoch(st.LeaderEpoch, leo); err != nil {
			// Without the epoch recorded the replica must not lead: a follower could
			// not find where its epochs diverge.
			p.repl.rep.Stop()
			e = p.repl.rep.effects(false, true)
			err = fmt.Errorf("become leader of %s-%d in epoch %d: %w", p.Topic, p.Index, st.LeaderEpoch, err)
		}
	}
	if accepted {
		p.leaderEpoch, p.repl.role = p.repl.rep.LeaderEpoch(), p.repl.rep.Role()
	}
	send := p.applyLocked(e)
	p.repl.mu.Unlock()
	p.afterStep(e, send)
	return accepted, err
}

// BecomeFollower makes the replica a follower of st.Leader. Waiting acks=all appends
// fail with NOT_LEADER_OR_FOLLOWER. newEpoch says the fetcher must (re)start this
// partition: a new leader epoch may mean the log diverged.
func (p *Partition) BecomeFollower(st LeaderAndISR) (accepted, newEpoch bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, false, ErrClosed
	}
	p.repl.mu.Lock()
	accepted, newEpoch = p.repl.rep.BecomeFollower(st)
	if accepted {
		p.leaderEpoch, p.repl.role = st.LeaderEpoch, RoleFollower
		p.repl.acks.failAll(ErrNotLeader)
	}
	p.repl.mu.Unlock()
	p.notify()
	return accepted, newEpoch, nil
}

// stopReplica leaves the role when the partition closes; waiters fail with err.
func (p *Partition) stopReplica(err error) {
	if p.repl.rep == nil {
		return
	}
	p.repl.mu.Lock()
	p.repl.rep.Stop()
	p.repl.acks.failAll(err)
	p.repl.mu.Unlock()
	p.notifyAppend()
}

// Tick lets time pass for the replica: acks=all waiters past their deadline fail, and
// followers that stopped keeping up are proposed for removal from the ISR. The owner
// calls it periodically (Kafka checks the ISR every replica.lag.time.max.ms / 2).
func (p *Partition) Tick() {
	if p.repl.rep == nil {
		return
	}
	now := p.now()
	p.step(func(r *Replica) Effects {
		p.repl.acks.expire(now)
		return r.Tick(now)
	})
}

// SetMinInsyncReplicas applies a changed min.insync.replicas to the state machine (the
// topic config is applied with SetConfig).
func (p *Partition) SetMinInsyncReplicas(n int32) {
	if p.repl.rep == nil {
		return
	}
	p.step(func(r *Replica) Effects { return r.SetMinInsyncReplicas(n, p.now()) })
}

// ISRCommitted applies the controller's answer to the ISR change seq.
func (p *Partition) ISRCommitted(seq uint64, leaderEpoch, partitionEpoch int32, isr []int32) {
	p.step(func(r *Replica) Effects { return r.ISRCommitted(seq, leaderEpoch, partitionEpoch, isr, p.now()) })
}

// ISRFailed applies a failed answer to the ISR change seq.
func (p *Partition) ISRFailed(seq uint64, outcome AlterOutcome) {
	p.step(func(r *Replica) Effects { return r.ISRFailed(seq, outcome) })
}

// AppendAcksAll appends b for an acks=all producer and returns the waiter that completes
// once the in-sync replicas have it, or fails at deadline (Tick or AwaitAcks enforce it),
// on leadership loss or close. The append is refused first, with nothing written, when
// the ISR is smaller than min.insync.replicas (NOT_ENOUGH_REPLICAS) or the purgatory is
// full. A retried duplicate waits for its original's offsets to be committed.
func (p *Partition) AppendAcksAll(b batch.Batch, deadline time.Time) (*AckWaiter, error) {
	if p.repl.rep == nil {
		if p.ISRSize() < p.Config().MinInsyncReplicas {
			return nil, fmt.Errorf("%w: in-sync replicas 1 < min.insync.replicas %d", ErrNotEnoughReplicas, p.Config().MinInsyncReplicas)
		}
		res, err := p.Append(b)
		if err != nil {
			return nil, err
		}
		w := &AckWaiter{res: res, done: make(chan struct{})}
		close(w.done)
		return w, nil
	}
	p.repl.mu.Lock()
	err := p.repl.rep.CheckAppendAcksAll()
	if err == nil {
		err = p.repl.acks.reserve()
	}
	p.repl.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("append to %s-%d: %w", p.Topic, p.Index, err)
	}
	res, end, err := p.append(b)
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	if err != nil {
		p.repl.acks.release()
		return nil, err
	}
	w := &AckWaiter{end: end, deadline: deadline, res: res, done: make(chan struct{})}
	p.repl.acks.add(w)
	hw, enough, leading := p.repl.rep.AckState()
	p.repl.acks.complete(hw, enough, leading)
	return w, nil
}

// AwaitAcks waits for w's outcome, its deadline (by a timer on the partition's clock) or
// ctx; a waiter given up on is removed from the purgatory.
func (p *Partition) AwaitAcks(ctx context.Context, w *AckWaiter) (AppendResult, error) {
	select {
	case <-w.done:
		return w.Result()
	default:
	}
	t := time.NewTimer(w.deadline.Sub(p.now()))
	defer t.Stop()
	var err error
	select {
	case <-w.done:
		return w.Result()
	case <-t.C:
		err = fmt.Errorf("%w: waiting for offset %d", ErrAckTimeout, w.end-1)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.repl.mu.Lock()
	p.repl.acks.remove(w, err)
	p.repl.mu.Unlock()
	<-w.done
	return w.Result()
}

// AckWaiters returns how many acks=all appends are waiting (tests, metrics).
func (p *Partition) AckWaiters() int {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return p.repl.acks.len()
}

// FollowerRead is a follower's fetch of one partition, as the leader receives it.
type FollowerRead struct {
	ReplicaID          int32
	BrokerEpoch        int64 // -1 if the request carries none
	CurrentLeaderEpoch int32 // -1 if not given
	FetchOffset        int64
	LastFetchedEpoch   int32 // -1 if not given (Fetch before v12)
	LogStartOffset     int64 // the follower's
	MaxBytes           int64
	// NotFirst: the response already carries records of another partition, so MaxBytes
	// holds even for the first batch (otherwise it goes whole, however large, as
	// Kafka's minOneMessage has it).
	NotFirst bool
}

// FollowerReadResult is the leader's answer to a FollowerRead.
type FollowerReadResult struct {
	Ranges                                      []log.Range
	HighWatermark, LogStartOffset, LogEndOffset int64
	// Diverging is set when the follower's last fetched epoch ends before its fetch
	// offset on the leader (KIP-320): DivergingEpoch and DivergingEndOffset are the
	// largest epoch at or below it and where that epoch ends here. No records then.
	Diverging          bool
	DivergingEpoch     int32
	DivergingEndOffset int64
}

// ReadForFollower serves a follower's fetch as Kafka's Partition.fetchRecords does: it
// checks the leader epoch the follower knows (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH)
// and that the follower is a replica, answers a divergence without reading, reads whole
// batches up to the log end, and records the fetch offset as the follower's progress,
// which may move the high watermark and propose an ISR expansion.
func (p *Partition) ReadForFollower(f FollowerRead) (FollowerReadResult, error) {
	res := FollowerReadResult{}
	if p.repl.rep == nil {
		return res, fmt.Errorf("%s-%d is not replicated: %w", p.Topic, p.Index, ErrNotLeader)
	}
	p.repl.mu.Lock()
	r := p.repl.rep
	err := p.checkLeaderEpochLocked(f.CurrentLeaderEpoch)
	if err == nil && !r.hasReplica(f.ReplicaID) {
		err = fmt.Errorf("%w: broker %d in leader epoch %d", ErrUnknownReplica, f.ReplicaID, r.LeaderEpoch())
		if f.CurrentLeaderEpoch >= 0 {
			err = fmt.Errorf("%w (%w)", ErrUnknownLeaderEpoch, err)
		} else {
			err = fmt.Errorf("%w (%w)", ErrNotLeader, err)
		}
	}
	res.HighWatermark = r.HighWatermark()
	p.repl.mu.Unlock()
	if err != nil {
		return res, err
	}
	// The log end before the read: appends during the read must not keep a follower
	// from counting as caught up.
	res.LogStartOffset, res.LogEndOffset = p.log.LogStartOffset(), p.log.LogEndOffset()
	if f.LastFetchedEpoch >= 0 {
		e, end := p.EndOffsetForEpoch(f.LastFetchedEpoch)
		if e < 0 || end < 0 {
			return res, fmt.Errorf("%w: the end of epoch %d is not known here", log.ErrOffsetOutOfRange, f.LastFetchedEpoch)
		}
		if f.FetchOffset < res.LogStartOffset {
			return res, fmt.Errorf("%w: fetch offset %d below the log start offset %d", log.ErrOffsetOutOfRange, f.FetchOffset, res.LogStartOffset)
		}
		if e < f.LastFetchedEpoch || end < f.FetchOffset {
			res.Diverging, res.DivergingEpoch, res.DivergingEndOffset = true, e, end
			return res, nil
		}
	}
	if f.FetchOffset < res.LogStartOffset || f.FetchOffset > res.LogEndOffset {
		return res, fmt.Errorf("%w: fetch offset %d outside [%d, %d]", log.ErrOffsetOutOfRange, f.FetchOffset, res.LogStartOffset, res.LogEndOffset)
	}
	res.Ranges, err = p.log.Read(f.FetchOffset, res.LogEndOffset, f.MaxBytes, !f.NotFirst)
	if err != nil {
		return res, err
	}
	p.repl.mu.Lock()
	e, err := r.FollowerFetch(FollowerFetch{ReplicaID: f.ReplicaID, FetchOffset: f.FetchOffset,
		LogStartOffset: f.LogStartOffset, BrokerEpoch: f.BrokerEpoch, LeaderEndOffset: res.LogEndOffset}, p.now())
	send := p.applyLocked(e)
	res.HighWatermark = e.HighWatermark
	p.repl.mu.Unlock()
	if err != nil {
		return FollowerReadResult{}, err
	}
	p.afterStep(e, send)
	return res, nil
}

// checkLeaderEpochLocked checks a request's current leader epoch against the leader's
// (KIP-320): older is fenced, newer unknown (this replica has not learned it yet); -1 is
// not checked. repl.mu is held.
func (p *Partition) checkLeaderEpochLocked(current int32) error {
	r := p.repl.rep
	if r.Role() != RoleLeader {
		return fmt.Errorf("%s-%d: %w (%s)", p.Topic, p.Index, ErrNotLeader, r.Role())
	}
	switch {
	case current < 0:
	case current < r.LeaderEpoch():
		return fmt.Errorf("%w: %d < %d", ErrFencedLeaderEpoch, current, r.LeaderEpoch())
	case current > r.LeaderEpoch():
		return fmt.Errorf("%w: %d > %d", ErrUnknownLeaderEpoch, current, r.LeaderEpoch())
	}
	return nil
}

func (r *Replica) hasReplica(id int32) bool { return r.followers[id] != nil }
