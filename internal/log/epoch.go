// Leader epoch cache (KIP-101, KIP-279): the first offset of each leader epoch, so a
// follower can ask "where did your epoch E end" and truncate what the new leader never
// had. Persisted in leader-epoch-checkpoint (format in checkpoint.go) on every change.
//
// Invariants: epochs strictly increase; start offsets never decrease.
package log

import "fmt"

// AssignEpoch records that epoch starts at startOffset (the leader's log end offset when
// it became leader, or a follower seeing a batch of a new epoch). As Kafka's
// LeaderEpochFileCache.assign does, the latest epoch again with a start offset not lower
// than recorded changes nothing; otherwise every entry the new one contradicts (an epoch
// at or above it, or a start offset at or after its start) is dropped first.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return errClosed
	}
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("assign epoch %d at %d: negative", epoch, startOffset)
	}
	l.mu.RLock()
	old := l.epochs
	l.mu.RUnlock()
	if n := len(old); n > 0 && old[n-1].Epoch == epoch && old[n-1].StartOffset <= startOffset {
		return nil
	}
	next := make([]epochEntry, 0, len(old)+1)
	for _, e := range old {
		if e.Epoch < epoch && e.StartOffset < startOffset {
			next = append(next, e)
		}
	}
	next = append(next, epochEntry{Epoch: epoch, StartOffset: startOffset})
	return l.setEpochsLocked(next)
}

// setEpochsLocked persists and publishes a new epoch list; writeMu must be held.
func (l *Log) setEpochsLocked(next []epochEntry) error {
	if err := writeCheckpoint(l.fsys, l.dir, leaderEpochFile, formatEpochCheckpoint(next)); err != nil {
		return err
	}
	l.mu.Lock()
	l.epochs = next
	l.mu.Unlock()
	return nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch and the start
// offset of the next larger epoch (or LogEndOffset); (-1, -1) if no such epoch.
//
// As Kafka's LeaderEpochFileCache.endOffsetFor does, a request for an epoch older than
// every known one answers (epoch, start offset of the first known epoch): the requester
// holds nothing the leader can vouch for below that offset.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	es := l.epochs
	if epoch < 0 || len(es) == 0 {
		return -1, -1
	}
	if last := es[len(es)-1]; epoch >= last.Epoch {
		if epoch == last.Epoch {
			return epoch, l.logEndOffset.Load()
		}
		return -1, -1
	}
	// First entry with a larger epoch; there is one since epoch < last.Epoch.
	i := 0
	for i < len(es) && es[i].Epoch <= epoch {
		i++
	}
	if i == 0 {
		return epoch, es[0].StartOffset
	}
	return es[i-1].Epoch, es[i].StartOffset
}

// LatestEpoch returns the newest leader epoch recorded, or -1.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1].Epoch
}

// truncateEpochsFromEndLocked drops epochs starting at or after offset (TruncateTo).
func (l *Log) truncateEpochsFromEndLocked(offset int64) error {
	l.mu.RLock()
	old := l.epochs
	l.mu.RUnlock()
	n := len(old)
	for n > 0 && old[n-1].StartOffset >= offset {
		n--
	}
	if n == len(old) {
		return nil
	}
	return l.setEpochsLocked(old[:n:n])
}

// truncateEpochsFromStartLocked drops epochs wholly below a new log start offset and
// moves the start of the one containing it up to it, as Kafka does.
func (l *Log) truncateEpochsFromStartLocked(offset int64) error {
	l.mu.RLock()
	old := l.epochs
	l.mu.RUnlock()
	i := 0
	for i+1 < len(old) && old[i+1].StartOffset <= offset {
		i++
	}
	if len(old) == 0 || (i == 0 && old[0].StartOffset >= offset) {
		return nil
	}
	next := append([]epochEntry(nil), old[i:]...)
	next[0].StartOffset = max(next[0].StartOffset, offset)
	return l.setEpochsLocked(next)
}
