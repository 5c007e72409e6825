package log

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

// Group commit. With flush.messages set low (1: every append is fsynced before it is
// acknowledged), appends from concurrent requests would otherwise queue behind one
// another's fsyncs. AppendDeferred writes the batch and, when the flush policy asks for
// an fsync, hands back a ticket instead of syncing; the caller releases its own locks
// and calls SyncThrough, which fsyncs outside writeMu, so appends go on meanwhile and
// one fsync covers every append written before it started. The appenders that queued
// during an fsync find their tickets covered, or share the next one.

// AppendDeferred appends b like Append, except that a flush the policy asks for is left
// to the caller: ticket > 0 means call SyncThrough(ticket) before acknowledging b.
func (l *Log) AppendDeferred(b batch.Batch) (ticket int64, err error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	due, err := l.appendLocked(b)
	if err != nil || !due {
		return 0, err
	}
	return l.appendSeq, nil
}

// SyncThrough returns once every append up to ticket is on stable storage, fsyncing
// if no other caller's fsync has covered it.
func (l *Log) SyncThrough(ticket int64) error {
	if l.syncedSeq.Load() >= ticket {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncedSeq.Load() >= ticket {
		return nil // an fsync that started after our append covered it
	}

	// Take what is unsynced now; everything appended so far is covered by this fsync.
	l.writeMu.Lock()
	if l.closed {
		l.writeMu.Unlock()
		return errClosed
	}
	seq := l.appendSeq
	var segs []*segment
	for _, s := range l.segs {
		if s.dirty {
			segs = append(segs, s)
			s.dirty = false
		}
	}
	dir := l.dirDirty
	l.dirDirty = false
	rp, gen := l.active().base, l.cleanGen
	l.unflushedRecords = 0
	l.firstUnflushed = time.Time{}
	l.rolledUnsynced = false
	l.writeMu.Unlock()

	errs := make([]error, len(segs))
	for i, s := range segs {
		errs[i] = s.sync()
	}
	var dirErr error
	if dir {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			dirErr = fmt.Errorf("sync log dir: %w", err)
		}
	}

	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return errClosed // Close synced what it could; the caller's retry will tell
	}
	// A segment that failed because retention or a compaction swap closed it meanwhile
	// is not an error: its data is gone on purpose, or synced by the swap.
	failed := dirErr
	for i, s := range segs {
		if errs[i] != nil && slices.Contains(l.segs, s) {
			s.dirty = true
			failed = errors.Join(failed, errs[i])
		}
	}
	if failed != nil {
		l.dirDirty = l.dirDirty || dirErr != nil
		l.rolledUnsynced = true // FlushIfDue retries
		return failed
	}
	// Segments below the one that was active are now synced: move the recovery point,
	// unless a truncation since (which lowers it) makes that claim stale.
	if rp > l.recoveryPoint && l.cleanGen == gen {
		if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, formatOffsetCheckpoint(rp)); err != nil {
			return err
		}
		l.recoveryPoint = rp
	}
	l.advanceSynced(seq)
	return nil
}

func (l *Log) advanceSynced(seq int64) {
	for {
		cur := l.syncedSeq.Load()
		if seq <= cur || l.syncedSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}
