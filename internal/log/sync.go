package log

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

// Flushing, and group commit.
//
// One flusher at a time per log: Flush, FlushIfDue, Close and SyncThrough all take the
// flush turn (awaitFlush) first, so exactly one goroutine owns "what is synced", as
// pebble's LogWriter has one flusher and one synced position. The flusher takes, under
// writeMu, the segments to sync and the append count they cover, releases writeMu so
// appends go on during the fsyncs, and afterwards advances the synced append count
// (syncedSeq) and the recovery point to exactly what its fsyncs covered. No other path
// moves either forward, so a flush that finds another one running waits for it rather
// than declaring segments synced that are still being fsynced.
//
// A failed fsync or directory sync poisons the log (poison.go): it is not retried.
//
// Group commit: with flush.messages set low (1: every append is fsynced before it is
// acknowledged), appends from concurrent requests would otherwise queue behind one
// another's fsyncs. AppendDeferred writes the batch and, when the flush policy asks for
// an fsync, hands back a ticket instead of syncing; the caller releases its own locks
// and calls SyncThrough, which returns at once if a flush that started after the append
// has covered it, and otherwise flushes. The appenders that queued during an fsync find
// their tickets covered, or share the next one.

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

// SyncTicket returns a ticket covering every append so far (for SyncThrough): a caller
// that must not acknowledge something before the appends already written are durable.
func (l *Log) SyncTicket() int64 {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.appendSeq
}

// SyncThrough returns once every append up to ticket is on stable storage, flushing if
// no other flush has covered it.
func (l *Log) SyncThrough(ticket int64) error {
	if l.syncedSeq.Load() >= ticket {
		return nil
	}
	if !l.awaitFlush(ticket) {
		return nil // a flush that started after our append covered it
	}
	defer l.releaseFlush()
	return l.flush(nil, errClosed)
}

// Flush fsyncs every append so far. A closed log has nothing to flush.
func (l *Log) Flush() error {
	l.awaitFlush(math.MaxInt64)
	defer l.releaseFlush()
	return l.flush(nil, nil)
}

// FlushIfDue fsyncs if unflushed data is older than FlushInterval. Segments rolled since
// the last flush are synced regardless of FlushInterval, as Kafka flushes a segment when
// it rolls, so the recovery point advances and an unclean restart scans only the active
// segment. The owner calls it periodically.
func (l *Log) FlushIfDue() error {
	l.writeMu.Lock()
	due := l.flushDueLocked()
	l.writeMu.Unlock()
	if !due {
		return nil
	}
	l.awaitFlush(math.MaxInt64)
	defer l.releaseFlush()
	return l.flush(l.flushDueLocked, nil)
}

// flushDueLocked reports whether FlushIfDue should flush; writeMu is held.
func (l *Log) flushDueLocked() bool {
	if l.rolledUnsynced {
		return true
	}
	iv := l.cfg.FlushInterval
	return iv > 0 && !l.firstUnflushed.IsZero() && l.now().Sub(l.firstUnflushed) >= iv
}

// awaitFlush waits until the appends up to ticket are synced, returning false, or until
// no flush runs, returning true with the flush turn taken (release it with releaseFlush).
// Every waiter wakes when a flush ends, so the ones it covered return without taking
// the turn: they would otherwise queue behind one another for it, and appenders coming
// back for their next append would cut in and flush a batch at a time. The wait is on a
// sync.Cond, not a Mutex, so tests see a flusher waiting for another as durably blocked
// (testing/synctest).
func (l *Log) awaitFlush(ticket int64) bool {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	for {
		if l.syncedSeq.Load() >= ticket {
			return false
		}
		if !l.flushBusy {
			l.flushBusy = true
			return true
		}
		if l.flushCond == nil {
			l.flushCond = sync.NewCond(&l.flushMu)
		}
		l.flushCond.Wait()
	}
}

func (l *Log) releaseFlush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.flushBusy = false
	if l.flushCond != nil {
		l.flushCond.Broadcast()
	}
}

// flushTake is what one flush covers, taken under writeMu.
type flushTake struct {
	seq  int64      // appends so far
	segs []*segment // segments to fsync
	dir  bool       // the directory has unsynced entries
	rp   int64      // the recovery point once they are synced: the active segment's base
	gen  int64      // cleanGen: a truncation since makes rp stale
}

// takeFlushLocked takes the work of a flush: the segments with writes since their last
// fsync, and every segment not below the recovery point. The latter may hold data that
// recovery accepted after an unclean stop without any fsync having covered it (a killed
// process leaves its writes in the page cache): the recovery point must not pass them
// until a flush has. writeMu and the flush turn are held.
func (l *Log) takeFlushLocked() flushTake {
	t := flushTake{seq: l.appendSeq, dir: l.dirDirty, rp: l.active().base, gen: l.cleanGen}
	for i, s := range l.segs {
		belowRP := i+1 < len(l.segs) && l.segs[i+1].base <= l.recoveryPoint
		if s.dirty || !belowRP {
			t.segs = append(t.segs, s)
			s.dirty = false
		}
	}
	l.dirDirty = false
	l.unflushedRecords = 0
	l.firstUnflushed = time.Time{}
	l.rolledUnsynced = false
	return t
}

// fsync syncs what t covers; it needs no lock but the flush turn.
func (l *Log) fsync(t flushTake) (segErrs []error, dirErr error) {
	if l.timings.Flush != nil {
		start := time.Now()
		defer func() { l.timings.Flush(time.Since(start)) }()
	}
	segErrs = make([]error, len(t.segs))
	for i, s := range t.segs {
		segErrs[i] = s.sync()
	}
	if t.dir {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			dirErr = fmt.Errorf("sync log dir: %w", err)
		}
	}
	return segErrs, dirErr
}

// commitFlushLocked records a flush's outcome: a failure poisons the log; a success moves
// the recovery point (persisted first) and then the synced append count to what t
// covered. writeMu and the flush turn are held.
func (l *Log) commitFlushLocked(t flushTake, segErrs []error, dirErr error) error {
	// A segment that failed because retention or a compaction swap closed it meanwhile
	// is not a storage failure: its data is gone on purpose, or synced by the swap.
	failed := dirErr
	for i, s := range t.segs {
		if segErrs[i] != nil && slices.Contains(l.segs, s) {
			failed = errors.Join(failed, segErrs[i])
		}
	}
	if failed != nil {
		return l.fail(failed)
	}
	// Segments below the one that was active are now synced: move the recovery point,
	// unless a truncation since (which lowers it) makes that claim stale.
	if t.rp > l.recoveryPoint && l.cleanGen == t.gen {
		if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, formatOffsetCheckpoint(t.rp)); err != nil {
			return l.fail(err)
		}
		l.recoveryPoint = t.rp
	}
	if t.seq > l.syncedSeq.Load() {
		l.syncedSeq.Store(t.seq) // only the flusher writes it
	}
	return nil
}

// flush is one flusher's turn (the caller holds it): take under writeMu, fsync outside
// it, commit under it. due, if not nil, is asked first whether there is anything to do;
// ifClosed is returned for a log closed before or during the flush.
func (l *Log) flush(due func() bool, ifClosed error) error {
	l.writeMu.Lock()
	if l.closed {
		l.writeMu.Unlock()
		return ifClosed
	}
	if err := l.Err(); err != nil {
		l.writeMu.Unlock()
		return err
	}
	if due != nil && !due() {
		l.writeMu.Unlock()
		return nil
	}
	t := l.takeFlushLocked()
	l.writeMu.Unlock()

	segErrs, dirErr := l.fsync(t)

	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ifClosed // Delete closed the files under the fsync
	}
	return l.commitFlushLocked(t, segErrs, dirErr)
}

// flushHeldLocked is flush for Close, which holds writeMu and the flush turn throughout.
func (l *Log) flushHeldLocked() error {
	if err := l.Err(); err != nil {
		return err
	}
	t := l.takeFlushLocked()
	segErrs, dirErr := l.fsync(t)
	return l.commitFlushLocked(t, segErrs, dirErr)
}
