package partition

// A follower's side of a replicated partition: the leader's batches appended as they
// are, the high watermark and log start offset learned from the leader, truncation by
// leader epoch (KIP-101, KIP-279). The log does the log side (log/follower.go); here the
// producer state follows: appended batches update it without sequence checks (the
// leader checked them), and a truncation rebuilds it from the newest rolling snapshot
// at or below the new log end plus the batches after it, as Kafka's
// ProducerStateManager.truncateAndReload does, so that a follower that becomes leader
// answers a retried batch with its original offsets and sequence errors as the old
// leader would have.

import (
	"errors"
	"fmt"

	"github.com/vltava/vltava/internal/batch"
)

// ErrNotFollower refuses a follower operation on a replica that does not follow.
var ErrNotFollower = errors.New("not a follower of this partition")

// FollowerAppend is what AppendAsFollower appended.
type FollowerAppend struct {
	Batches    int
	Bytes      int
	LastOffset int64 // -1 if nothing was appended
	LastEpoch  int32 // the last batch's leader epoch; -1 if nothing was appended
}

// AppendAsFollower appends records, the record batches of the leader's fetch response,
// as they are. A trailing partial batch (a response cut at its size limit) is ignored.
// The first batch may start below the log end only if the log is empty (its start moved
// to the leader's log start, inside that batch: the log restarts at the batch, as Kafka
// does). It syncs as the flush policy asks before returning, so the next fetch offset
// tells the leader what this replica holds.
func (p *Partition) AppendAsFollower(records []byte) (FollowerAppend, error) {
	out := FollowerAppend{LastOffset: -1, LastEpoch: -1}
	var bs []batch.Batch
	for rest := records; len(rest) > 0; {
		b, r, err := batch.Next(rest, len(rest))
		if err != nil {
			// The response's size limit cut the last batch (a fragment shorter than a
			// header, or a header announcing more than is there): fetched again next.
			if len(rest) < batch.HeaderSize || int64(batch.Batch(rest).BatchLength())+12 > int64(len(rest)) {
				break
			}
			return out, fmt.Errorf("follower append to %s-%d: %w", p.Topic, p.Index, err)
		}
		bs, rest = append(bs, b), r
	}
	if len(bs) == 0 {
		return out, nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return out, ErrClosed
	}
	if p.repl.role != RoleFollower {
		p.mu.Unlock()
		return out, fmt.Errorf("%s-%d: %w (%s)", p.Topic, p.Index, ErrNotFollower, p.repl.role)
	}
	l := p.log
	if leo, first := l.LogEndOffset(), bs[0]; first.BaseOffset() < leo && leo == l.LogStartOffset() && first.LastOffset() >= leo {
		if err := l.TruncateFullyAndStartAt(first.BaseOffset()); err != nil {
			p.mu.Unlock()
			return out, fmt.Errorf("follower append to %s-%d: restart the log at %d: %w", p.Topic, p.Index, first.BaseOffset(), err)
		}
	}
	n, ticket, err := l.AppendAsFollower(bs)
	for _, b := range bs[:n] {
		p.updateProducer(b, b.MaxTimestamp())
		out.Batches++
		out.Bytes += len(b)
		out.LastOffset, out.LastEpoch = b.LastOffset(), b.PartitionLeaderEpoch()
	}
	p.mu.Unlock()
	if err != nil {
		return out, fmt.Errorf("follower append to %s-%d: %w", p.Topic, p.Index, err)
	}
	if ticket > 0 {
		if err := l.SyncThrough(ticket); err != nil {
			return out, fmt.Errorf("sync %s-%d: %w", p.Topic, p.Index, err)
		}
	}
	leo, start := l.LogEndOffset(), l.LogStartOffset()
	p.repl.acked.Store(leo)
	p.step(func(r *Replica) Effects { return r.FollowerProgress(leo, start, r.HighWatermark()) })
	p.notifyAppend()
	return out, nil
}

// FollowerLearned records what a fetch response said of the leader's log: its high
// watermark (the follower's becomes the smaller of it and the local log end) and its log
// start offset (the follower's moves up to it, DeleteRecords on the leader, but never
// past the high watermark, as Kafka's maybeIncrementLogStartOffset refuses).
func (p *Partition) FollowerLearned(leaderHW, leaderLogStart int64) error {
	p.mu.Lock()
	if p.closed || p.repl.role != RoleFollower {
		p.mu.Unlock()
		return nil
	}
	leo := p.log.LogEndOffset()
	if hw := min(leaderHW, leo); leaderLogStart > p.log.LogStartOffset() && leaderLogStart <= hw {
		if err := p.log.SetLogStartOffset(leaderLogStart); err != nil {
			p.mu.Unlock()
			return fmt.Errorf("log start offset of %s-%d: %w", p.Topic, p.Index, err)
		}
	}
	start := p.log.LogStartOffset()
	p.mu.Unlock()
	p.step(func(r *Replica) Effects { return r.FollowerProgress(leo, start, leaderHW) })
	return nil
}

// LatestEpoch is the newest leader epoch in the log's epoch cache, -1 if none: a
// follower's last fetched epoch.
func (p *Partition) LatestEpoch() int32 { return p.log.LatestEpoch() }

// LocalEndOffsetForEpoch is where the local log's epoch ends (the largest epoch at or
// below epoch, and the start of the next): the follower's side of the truncation rule.
func (p *Partition) LocalEndOffsetForEpoch(epoch int32) (int32, int64) {
	return p.log.EndOffsetForEpoch(epoch)
}

// TruncateAsFollower cuts the log to end at offset (at a batch boundary at or below it),
// as the leader's epoch answer decided, and rebuilds the producer state for what is left.
func (p *Partition) TruncateAsFollower(offset int64) error {
	return p.truncate(func() error { return p.log.TruncateAsFollower(offset) })
}

// TruncateFullyAndStartAt empties the log and starts it at offset (a follower whose log
// ends before the leader's log start); the producer state starts empty.
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	return p.truncate(func() error { return p.log.TruncateFullyAndStartAt(offset) })
}

func (p *Partition) truncate(cut func() error) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.repl.rep == nil || p.repl.role != RoleFollower {
		p.mu.Unlock()
		return fmt.Errorf("truncate %s-%d: %w", p.Topic, p.Index, ErrNotFollower)
	}
	err := cut()
	if err == nil {
		err = p.rebuildProducersLocked()
	}
	leo, start := p.log.LogEndOffset(), p.log.LogStartOffset()
	p.mu.Unlock()
	p.repl.acked.Store(leo)
	p.step(func(r *Replica) Effects { return r.Truncated(leo, start) })
	if err != nil {
		return fmt.Errorf("truncate %s-%d: %w", p.Topic, p.Index, err)
	}
	return nil
}

// rebuildProducersLocked rebuilds the producer state after a truncation from the newest
// usable rolling snapshot (those past the new log end are removed: they describe batches
// that are gone) and the batches after it. p.mu is held.
func (p *Partition) rebuildProducersLocked() error {
	l := p.log
	off, producers, ok, _, err := loadRolling(l.FS(), l.Dir(), l.LogStartOffset(), l.LogEndOffset())
	if err != nil {
		return err
	}
	if !ok {
		off, producers = l.LogStartOffset(), map[int64]*producerEntry{}
	}
	p.producers = producers
	p.snapBase.Store(l.ActiveSegmentBase())
	err = l.Batches(off, func(b batch.Batch) bool {
		p.updateProducer(b, b.MaxTimestamp())
		return true
	})
	if err != nil {
		return fmt.Errorf("rebuild producer state: %w", err)
	}
	p.expireLocked(p.now())
	return nil
}
