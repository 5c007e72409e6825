// A follower's log operations (KIP-101, KIP-279): appending the leader's batches as they
// are, and truncating what the leader never had.
//
// A follower appends the leader's batches with the leader's offsets and leader epochs,
// never assigning its own. Two files must say what the new batches need before they are
// written, or recovery after a crash would cut them as corrupt (recovery_checks.go):
//
//   - the leader-epoch cache (leader-epoch-checkpoint) gets each newer epoch a batch
//     starts, at that batch's base offset, as Kafka's follower assigns them; recovery
//     refuses a batch whose epoch the cache does not know. Entries at or past the log end
//     offset are stale (written by this replica as a leader that then appended nothing,
//     or left by a truncation) and are dropped first;
//   - the cleaner checkpoint's gap end (compact_checkpoint.go) is raised to the base of
//     the last batch that follows a gap: the leader's cleaner removed those offsets, and
//     recovery allows a gap only below the gap end.
//
// Both are written durably (vfs.WriteFileAtomic) before the batches; a crash in between
// leaves entries past the log end, which Open drops.
package log

import (
	"fmt"
	"math"

	"github.com/vltava/vltava/internal/batch"
)

// AppendAsFollower appends bs, batches fetched from the leader, as they are: offsets and
// leader epochs are the leader's. The first batch may not start below the log end offset;
// offsets then increase from batch to batch, with gaps allowed. Each batch is checked as
// Kafka checks a follower's batches (length, magic, CRC), and epochs may not go back.
// Nothing is written if a batch fails these checks. It returns how many batches were
// appended and, as AppendBatches does, a ticket for SyncThrough when the flush policy
// asks for an fsync.
func (l *Log) AppendAsFollower(bs []batch.Batch) (n int, ticket int64, err error) {
	if len(bs) == 0 {
		return 0, 0, nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, 0, err
	}
	leo := l.logEndOffset.Load()
	l.mu.RLock()
	epochs := l.epochs
	l.mu.RUnlock()
	// Entries at or past the log end are stale: the batches decide what comes after it.
	k := len(epochs)
	for k > 0 && epochs[k-1].StartOffset >= leo {
		k--
	}
	next := append([]epochEntry(nil), epochs[:k]...)
	changed := k != len(epochs)
	latest := int32(-1)
	if k > 0 {
		latest = next[k-1].Epoch
	}
	end, gapBase := leo, int64(-1)
	for i, b := range bs {
		if err := checkAppendAt(b, end, true); err != nil {
			return 0, 0, fmt.Errorf("follower append, batch %d: %w", i, err)
		}
		if err := batch.CheckHeader(b); err != nil {
			return 0, 0, fmt.Errorf("follower append, batch %d at offset %d: %w", i, b.BaseOffset(), err)
		}
		if b.RecordCount() < 0 || b.LastOffset()-leo > math.MaxInt32 {
			return 0, 0, fmt.Errorf("follower append, batch %d at offset %d: %w: record count %d, last offset %d",
				i, b.BaseOffset(), batch.ErrCorrupt, b.RecordCount(), b.LastOffset())
		}
		if b.BaseOffset() > end {
			gapBase = b.BaseOffset()
		}
		switch e := b.PartitionLeaderEpoch(); {
		case e > latest:
			next = append(next, epochEntry{Epoch: e, StartOffset: b.BaseOffset()})
			latest, changed = e, true
		case e < latest:
			return 0, 0, fmt.Errorf("follower append, batch %d at offset %d: %w: leader epoch %d below %d",
				i, b.BaseOffset(), batch.ErrCorrupt, e, latest)
		}
		end = b.LastOffset() + 1
	}
	if changed {
		if err := l.setEpochsLocked(next); err != nil {
			return 0, 0, l.fail(err)
		}
	}
	if gapBase >= 0 {
		if _, err := l.markGapsLocked(gapBase); err != nil {
			return 0, 0, l.fail(err)
		}
	}
	return l.appendBatchesLocked(bs, true)
}

// TruncateAsFollower truncates to offset as a follower does once it knows where its log
// and the leader's diverge (TruncateTo). An offset at or past the log end offset removes
// no batch but still drops the leader-epoch entries starting at or past the log end, as
// Kafka's UnifiedLog.truncateTo does: a replica that became leader and appended nothing
// before losing leadership holds such an entry, and as long as it stays, the follower's
// last fetched epoch names an epoch the new leader never had and every fetch answers
// with the same divergence.
//
// The truncation is synced before it returns: a follower appends the leader's batches
// right after it, and a crash that undid the cut (a truncation is a metadata change the
// disk may not have made durable) would bring back the diverged tail under a leader-epoch
// cache that no longer describes it, where neither recovery nor the next fetch would
// notice it.
func (l *Log) TruncateAsFollower(offset int64) error {
	if offset < l.LogEndOffset() {
		if err := l.TruncateTo(offset); err != nil {
			return err
		}
		return l.Flush()
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	return l.truncateEpochsFromEndLocked(l.logEndOffset.Load())
}

// TruncateFullyAndStartAt deletes every segment and starts the log, empty, at offset,
// which may lie past the log end: a follower whose log ends before the leader's log
// start has nothing the leader still keeps. The leader-epoch cache is cleared, as Kafka
// clears it: the epochs come back with the leader's batches. Like TruncateAsFollower it
// syncs before returning.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("truncate fully to %d: negative offset", offset)
	}
	if err := l.truncateFullyAndStartAt(offset); err != nil {
		return err
	}
	return l.Flush()
}

func (l *Log) truncateFullyAndStartAt(offset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	l.cleanGen++
	if err := l.truncateCleanerCheckpointLocked(offset, offset); err != nil {
		return err
	}
	if err := l.lowerRecoveryPointLocked(offset); err != nil {
		return err
	}
	if err := l.truncateFullyLocked(offset); err != nil {
		return err
	}
	return l.setEpochsLocked(nil)
}
