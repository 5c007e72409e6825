// Deleting segments: retention by time and size, a log start offset moved by
// DeleteRecords, and truncation.
//
// A deleted segment's three files are renamed to <name>.deleted at once and removed after
// file.delete.delay.ms, by EnforceRetention or Close (no goroutine of our own): a reader
// that was handed a Range over the segment keeps a valid file until then.
//
// Recovery: *.deleted files found by Open are removed (the rename already decided their
// fate). A rename that was not yet durable may bring a segment back after a crash; it is
// below the persisted log start offset, so Open deletes it again.
package log

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"time"
)

type pendingDelete struct {
	seg       *segment
	due       time.Time
	closeOnly bool // the files were replaced by compaction, not renamed
}

// deleteSegmentsLocked renames the given segments (already removed from l.segs) to
// *.deleted and schedules their removal.
func (l *Log) deleteSegmentsLocked(segs []*segment) error {
	var errs []error
	due := l.now().Add(l.cfg.FileDeleteDelay)
	l.cleanGen++ // a clean reading these segments must not swap them back
	for _, s := range segs {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			p := s.path(l.dir, suf)
			if err := l.fsys.Rename(p, p+deletedSuffix); err != nil {
				errs = append(errs, fmt.Errorf("delete segment %d: %w", s.base, err))
			}
		}
		l.pendingDeletes = append(l.pendingDeletes, pendingDelete{seg: s, due: due})
	}
	l.dirDirty = true
	if l.cfg.FileDeleteDelay <= 0 {
		errs = append(errs, l.removeDueLocked(false))
	}
	return errors.Join(errs...)
}

// removeDueLocked closes and removes deleted segments whose delay has passed (all of
// them with force).
func (l *Log) removeDueLocked(force bool) error {
	now := l.now()
	var errs []error
	kept := l.pendingDeletes[:0]
	for _, p := range l.pendingDeletes {
		if !force && now.Before(p.due) {
			kept = append(kept, p)
			continue
		}
		errs = append(errs, p.seg.close())
		if p.closeOnly {
			continue
		}
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			name := p.seg.path(l.dir, suf) + deletedSuffix
			// A later segment of the same name may have been deleted over this one.
			if err := l.fsys.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", path.Base(name), err))
			}
		}
	}
	clear(l.pendingDeletes[len(kept):])
	l.pendingDeletes = kept
	return errors.Join(errs...)
}

// EnforceRetention is EnforceRetentionBelow with no bound but the log end: for a log
// whose every offset is committed (tests, tools). A partition applies retention below
// its high watermark.
func (l *Log) EnforceRetention() (int, error) { return l.EnforceRetentionBelow(math.MaxInt64) }

// EnforceRetentionBelow deletes segments by retention.ms and retention.bytes (never the
// active segment) and returns how many it deleted; the owner calls it periodically. It
// also deletes segments wholly below the log start offset and removes deleted segments
// whose file.delete.delay.ms has passed.
//
// Only a segment that lies wholly below highWatermark is deleted, as in Kafka's
// UnifiedLog.deleteOldSegments: the log start offset, which moves up to the next
// segment's base, then never passes the high watermark, so a leader never deletes what
// a follower in its ISR has not fetched yet, and a consumer is never sent past what
// is committed.
func (l *Log) EnforceRetentionBelow(highWatermark int64) (int, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, err
	}
	err := l.removeDueLocked(false)
	candidates := l.segs[:len(l.segs)-1]
	// A candidate ends where the next segment begins.
	below := 0
	for below < len(candidates) && l.segs[below+1].base <= highWatermark {
		below++
	}
	k := l.belowStartLocked()
	if ms := l.cfg.RetentionMs; ms > 0 {
		nowMs := l.now().UnixMilli()
		n := 0
		// An empty segment has no timestamp to keep it.
		for n < len(candidates) && nowMs-candidates[n].maxTs > ms.Milliseconds() {
			n++
		}
		k = max(k, n)
	}
	if rb := l.cfg.RetentionBytes; rb > 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		diff, n := total-rb, 0
		for n < len(candidates) && diff-candidates[n].size >= 0 {
			diff -= candidates[n].size
			n++
		}
		k = max(k, n)
	}
	k = min(k, below)
	if k == 0 {
		return 0, err
	}
	return k, errors.Join(err, l.deleteFirstLocked(k))
}

// belowStartLocked counts the leading segments wholly below the log start offset.
func (l *Log) belowStartLocked() int {
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].base <= l.logStartOffset {
		n++
	}
	return n
}

// deleteFirstLocked deletes the first k segments (k < len(segs)) and moves the log start
// offset up to the new first segment.
func (l *Log) deleteFirstLocked(k int) error {
	gone := append([]*segment(nil), l.segs[:k]...)
	newStart := max(l.logStartOffset, l.segs[k].base)
	if newStart != l.logStartOffset {
		// Persist first: after a crash the log must not start below what was deleted.
		if err := writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, formatOffsetCheckpoint(newStart)); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.segs = append(l.segs[:0:0], l.segs[k:]...)
	l.logStartOffset = newStart
	l.mu.Unlock()
	return errors.Join(l.deleteSegmentsLocked(gone), l.truncateEpochsFromStartLocked(newStart))
}

// SetLogStartOffset advances the log start offset (DeleteRecords), persists it, and deletes
// segments wholly below it. Offsets above LogEndOffset are an error; offsets at or below the
// current log start offset change nothing.
func (l *Log) SetLogStartOffset(offset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if leo := l.logEndOffset.Load(); offset > leo {
		return fmt.Errorf("set log start offset %d: %w: log end offset is %d", offset, ErrOffsetOutOfRange, leo)
	}
	if offset <= l.logStartOffset {
		return nil
	}
	if err := writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, formatOffsetCheckpoint(offset)); err != nil {
		return err
	}
	l.mu.Lock()
	l.logStartOffset = offset
	l.mu.Unlock()
	if k := l.belowStartLocked(); k > 0 {
		return l.deleteFirstLocked(k)
	}
	return l.truncateEpochsFromStartLocked(offset)
}

// TruncateTo removes every batch at or above offset (replication, and undoing a failed append).
//
// As in Kafka, truncation happens at a batch boundary: if offset falls inside a batch, that
// whole batch goes and the log end offset becomes its base offset. An offset below the log
// start offset (or the first segment) empties the log and restarts it at offset.
func (l *Log) TruncateTo(offset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if offset >= l.logEndOffset.Load() {
		return nil
	}
	if offset < 0 {
		return fmt.Errorf("truncate to %d: negative offset", offset)
	}
	l.cleanGen++
	if offset < l.logStartOffset || offset <= l.segs[0].base {
		if err := l.truncateCleanerCheckpointLocked(offset, offset); err != nil {
			return err
		}
		if err := l.lowerRecoveryPointLocked(offset); err != nil {
			return err
		}
		return l.truncateFullyLocked(offset)
	}
	i := len(l.segs) - 1
	for l.segs[i].base > offset {
		i--
	}
	if err := l.lowerRecoveryPointLocked(l.segs[i].base); err != nil {
		return err
	}
	gone := append([]*segment(nil), l.segs[i+1:]...)
	s := l.segs[i]
	if len(gone) > 0 {
		// s becomes the active segment: its entries come back into memory, and no reader
		// may rebuild its files meanwhile.
		s.rebuildMu.Lock()
		defer s.rebuildMu.Unlock()
	}
	full, err := l.loadEntries(s)
	if err != nil {
		return fmt.Errorf("truncate segment %d: %w", s.base, err)
	}
	st, err := l.truncatedState(s, full, offset)
	if err != nil {
		return err
	}
	if err := l.truncateCleanerCheckpointLocked(offset, st.next); err != nil {
		return err
	}
	if err := s.log.Truncate(st.size); err != nil {
		return fmt.Errorf("truncate segment %d: %w", s.base, err)
	}
	if err := s.idx.Truncate(int64(len(st.index)) * indexEntrySize); err != nil {
		return fmt.Errorf("truncate offset index %d: %w", s.base, err)
	}
	if err := s.tidx.Truncate(int64(len(st.times)) * timeEntrySize); err != nil {
		return fmt.Errorf("truncate time index %d: %w", s.base, err)
	}
	s.dirty = true
	if st.size == 0 {
		s.firstTs = -1
	}
	l.mu.Lock()
	s.publish(st)
	l.segs = l.segs[:i+1]
	l.logEndOffset.Store(st.next)
	l.mu.Unlock()
	return errors.Join(l.deleteSegmentsLocked(gone), l.truncateEpochsFromEndLocked(st.next))
}

// lowerRecoveryPointLocked persists a recovery point no higher than base before a
// truncation: segments written after it reuse offsets below the old recovery point, and
// an unclean restart must scan them rather than trust them as synced.
func (l *Log) lowerRecoveryPointLocked(base int64) error {
	if base >= l.recoveryPoint {
		return nil
	}
	if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, formatOffsetCheckpoint(base)); err != nil {
		return err
	}
	l.recoveryPoint = base
	return nil
}

// truncatedState computes the state of segment s, whose state with its entries is full,
// after cutting it before the batch holding offset: the index entries before the cut,
// and the largest timestamp from the time index plus a scan of the batches after the
// last remaining index entry.
func (l *Log) truncatedState(s *segment, full indexState, offset int64) (indexState, error) {
	e, _ := lookupIndex(full.index, offset-s.base)
	pos, cut := int64(e.pos), int64(-1)
	next := s.base
	if len(full.index) > 0 && e.pos > 0 {
		next = s.base + int64(e.rel)
	}
	for pos < full.size {
		base, last, n, err := batchAt(s.log, pos, &l.hdr)
		if err != nil {
			return indexState{}, fmt.Errorf("truncate segment %d: read batch at %d: %w", s.base, pos, err)
		}
		if last >= offset {
			cut, next = pos, base
			break
		}
		pos += n
		next = last + 1
	}
	if cut < 0 {
		return full, nil // offset lies after this segment's last batch
	}
	st := indexState{size: cut, next: next, maxTs: -1, maxTsBase: -1}
	for _, ie := range full.index {
		if int64(ie.pos) < cut {
			st.index = append(st.index, ie)
		}
	}
	for _, te := range full.times {
		if s.base+int64(te.rel) < next {
			st.times = append(st.times, te)
			st.maxTs, st.maxTsBase = te.ts, s.base+int64(te.rel)
		}
	}
	st.nIndex, st.nTimes = len(st.index), len(st.times)
	// Batches after the last remaining index entry may hold a larger timestamp than the
	// time index recorded.
	var from int64
	if n := len(st.index); n > 0 {
		from = int64(st.index[n-1].pos)
	}
	for pos := from; pos < cut; {
		h, err := readHeader(s.log, pos, l.hdr[:])
		if err != nil {
			return indexState{}, fmt.Errorf("truncate segment %d: read batch at %d: %w", s.base, pos, err)
		}
		if ts := h.MaxTimestamp(); ts > st.maxTs {
			st.maxTs, st.maxTsBase = ts, h.BaseOffset()
		}
		pos += int64(h.BatchLength()) + 12
	}
	st.bytesSinceIndex = cut - from
	return st, nil
}

// truncateFullyLocked deletes every segment and starts an empty log at offset.
func (l *Log) truncateFullyLocked(offset int64) error {
	gone := append([]*segment(nil), l.segs...)
	// The new segment may share the name of an old one: move the old ones aside first.
	// Readers keep seeing the old list (whose files stay open) until the new one is
	// published.
	errDel := l.deleteSegmentsLocked(gone)
	s, err := l.createEmptySegment(offset)
	if err != nil {
		return errors.Join(errDel, fmt.Errorf("truncate fully to %d: %w", offset, err))
	}
	if err := writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, formatOffsetCheckpoint(offset)); err != nil {
		return errors.Join(errDel, err)
	}
	l.mu.Lock()
	l.segs = []*segment{s}
	l.logStartOffset = offset
	l.logEndOffset.Store(offset)
	l.mu.Unlock()
	return errors.Join(errDel, l.truncateEpochsFromEndLocked(offset))
}
