// Opening a log and recovering it.
//
// Open lists the directory, removes leftovers (*.deleted, *.tmp, index files without a
// segment), reads the checkpoints and loads every segment in base offset order:
//
//   - after a clean shutdown (clean-shutdown present), and after an unclean one for
//     segments below the recovery point's segment (synced before the stop), a segment's
//     indexes are loaded and sanity-checked, and only the batches after its last index
//     entry are walked (headers only) to find its end and largest timestamp; an index
//     that fails the check, or a walk that does not end exactly at the file's end, makes
//     the segment go through the full scan instead;
//   - the other segments (possibly torn by the stop) get the full scan of segment.go:
//     every batch's length, magic, CRC and offsets are checked, the file is truncated at
//     the first bad batch, the indexes are rebuilt and later segments are deleted.
//
// Every segment but the last drops its index entries from memory once loaded.
//
// Then segments wholly below the log start offset are deleted, leader epochs past the
// log end offset are dropped, and the clean-shutdown marker is removed (durably) before
// the log accepts a write, so a crash from then on is seen as unclean.
package log

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// Open opens (creating if needed) the log in dir and recovers it: scans segments after
// the last clean shutdown marker, truncates a torn or corrupt tail, rebuilds missing or
// corrupt indexes.
func Open(fsys vfs.FS, dir string, cfg Config, now func() time.Time) (*Log, error) {
	if now == nil {
		now = time.Now
	}
	l := &Log{fsys: fsys, dir: dir, now: now, cfg: cfg.withDefaults()}
	l.indexInterval.Store(l.cfg.IndexIntervalBytes)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.close()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) recover() error {
	if err := l.completeSwaps(); err != nil {
		return err
	}
	bases, err := l.cleanDir()
	if err != nil {
		return err
	}
	_, statErr := l.fsys.Stat(path.Join(l.dir, cleanShutdownFile))
	clean := statErr == nil

	lso, err := l.readOffsetCheckpoint(logStartOffsetFile)
	if err != nil {
		return err
	}
	rp, err := l.readOffsetCheckpoint(recoveryPointFile)
	if err != nil {
		return err
	}
	l.recoveryPoint = rp
	if data, err := readCheckpoint(l.fsys, l.dir, leaderEpochFile); err != nil {
		return err
	} else if data != nil {
		if l.epochs, err = parseEpochCheckpoint(data); err != nil {
			l.epochs = nil // rebuilt by the partition as leaders are learned again
		}
	}

	for i, base := range bases {
		// Segments wholly below the recovery point were synced before the stop.
		synced := clean || (i+1 < len(bases) && bases[i+1] <= rp)
		s, err := openSegmentFiles(l.fsys, l.dir, base, false)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		truncated, err := l.loadSegment(s, synced)
		if err != nil {
			return err
		}
		// A segment is rolled at its predecessor's end, so a scanned segment that ends
		// elsewhere lost batches that a later segment's creation outlived: what follows
		// is not a continuation of the log.
		if !synced && i+1 < len(bases) && bases[i+1] != s.next {
			truncated = true
		}
		if !truncated && i+1 < len(bases) {
			// Not the active segment: lookups read its index files (index.go).
			s.publishInactive(s.state())
		}
		if truncated {
			// Whatever follows a torn batch was written after it: drop it.
			for _, b := range bases[i+1:] {
				for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
					if err := l.fsys.Remove(path.Join(l.dir, segmentName(b, suf))); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("remove segment after a torn one: %w", err)
					}
				}
			}
			l.dirDirty = true
			break
		}
	}
	if len(l.segs) == 0 {
		s, err := l.createEmptySegment(lso)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
	}
	leo := l.active().next
	switch {
	case lso > leo:
		// Everything up to lso was deleted (DeleteRecords) but the log now ends before it
		// (data lost in the crash): start empty at lso, as Kafka does.
		for _, s := range l.segs {
			s.close()
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				l.fsys.Remove(s.path(l.dir, suf))
			}
		}
		s, err := l.createEmptySegment(lso)
		if err != nil {
			return err
		}
		l.segs, leo = []*segment{s}, lso
	case lso < l.segs[0].base:
		lso = l.segs[0].base
	}
	l.logStartOffset = lso
	l.logEndOffset.Store(leo)
	if err := l.loadRollBase(l.active()); err != nil {
		return err
	}

	if k := l.belowStartLocked(); k > 0 {
		gone := append([]*segment(nil), l.segs[:k]...)
		l.segs = l.segs[k:]
		if err := l.deleteSegmentsLocked(gone); err != nil {
			return err
		}
	}
	if err := l.truncateEpochsFromEndLocked(leo + 1); err != nil {
		return err
	}
	if clean {
		if err := l.fsys.Remove(path.Join(l.dir, cleanShutdownFile)); err != nil {
			return fmt.Errorf("remove clean shutdown marker: %w", err)
		}
		l.dirDirty = true
	}
	if l.dirDirty {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return fmt.Errorf("sync log dir: %w", err)
		}
		l.dirDirty = false
	}
	return nil
}

// RecoveryPoint returns the persisted recovery point: every segment below the one
// holding it was synced. The cleaner compacts only below it, and recovery refuses to
// cut the log below it (Options.TruncateBelowRecoveryPoint).
func (l *Log) RecoveryPoint() int64 {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.recoveryPoint
}

// loadRollBase reads the active segment's first batch timestamp, which segment.ms
// counts from across restarts.
func (l *Log) loadRollBase(s *segment) error {
	s.created = l.now()
	if s.size == 0 {
		return nil
	}
	var buf [batch.HeaderSize]byte
	h, err := readHeader(s.log, 0, buf[:])
	if err != nil {
		return fmt.Errorf("read first batch of segment %d: %w", s.base, err)
	}
	s.firstTs = h.MaxTimestamp()
	return nil
}

// batchHasTimestamp reports whether the batch with base offset base exists in s and has
// maxTimestamp ts, walking headers from the offset index entry before it.
func (l *Log) batchHasTimestamp(s *segment, index []indexEntry, size, base, ts int64) bool {
	e, _ := lookupIndex(index, base-s.base)
	var buf [batch.HeaderSize]byte
	for pos := int64(e.pos); pos+batch.HeaderSize <= size; {
		h, err := readHeader(s.log, pos, buf[:])
		if err != nil || h.BaseOffset() > base {
			return false
		}
		if h.BaseOffset() == base {
			return h.MaxTimestamp() == ts
		}
		n := int64(h.BatchLength()) + 12
		if n < batch.HeaderSize {
			return false
		}
		pos += n
	}
	return false
}

// cleanDir removes leftovers and returns the segment base offsets, sorted.
func (l *Log) cleanDir() ([]int64, error) {
	ents, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var bases []int64
	logs := map[string]bool{}
	for _, e := range ents {
		if base, ok := parseSegmentName(e.Name()); ok && !e.IsDir() {
			bases = append(bases, base)
			logs[strings.TrimSuffix(e.Name(), logSuffix)] = true
		}
	}
	for _, e := range ents {
		name := e.Name()
		stem := strings.TrimSuffix(strings.TrimSuffix(name, indexSuffix), timeIndexSuffix)
		orphanIndex := stem != name && len(stem) == 20 && !logs[stem]
		if strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, cleanedSuffix) || orphanIndex {
			if err := l.fsys.Remove(path.Join(l.dir, name)); err != nil {
				return nil, fmt.Errorf("remove leftover %s: %w", name, err)
			}
			l.dirDirty = true
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// readOffsetCheckpoint returns a checkpoint's offset, 0 if it is missing or malformed
// (the safe value: recovery scans more, the log start comes from the segments).
func (l *Log) readOffsetCheckpoint(name string) (int64, error) {
	data, err := readCheckpoint(l.fsys, l.dir, name)
	if err != nil || data == nil {
		return 0, err
	}
	off, err := parseOffsetCheckpoint(data)
	if err != nil {
		return 0, nil
	}
	return off, nil
}

// loadSegment fills s's state from its files, trusting the indexes only if synced and
// they pass their checks; it reports whether the segment was truncated.
func (l *Log) loadSegment(s *segment, synced bool) (bool, error) {
	if synced {
		ok, err := l.loadIndexes(s)
		if err != nil || ok {
			return false, err
		}
	}
	res, err := s.scan(l.cfg.IndexIntervalBytes)
	if err != nil {
		return false, err
	}
	if res.truncated {
		if err := s.log.Truncate(res.st.size); err != nil {
			return false, fmt.Errorf("truncate torn segment %d %s: %w", s.base, res.reason, err)
		}
		s.dirty = true
	}
	// A rebuilt index is complete up to the last batch; give an inactive segment its
	// final time entry too (a no-op for the active one until it rolls).
	if err := s.writeIndexes(res.st.index, res.st.times); err != nil {
		return false, err
	}
	s.publish(res.st)
	return res.truncated, nil
}

// loadIndexes loads both index files and walks the batches after the last index entry.
// It returns false if anything fails a check, so the caller rebuilds by a full scan.
func (l *Log) loadIndexes(s *segment) (bool, error) {
	size, err := fileSize(s.log)
	if err != nil {
		return false, fmt.Errorf("stat segment %d: %w", s.base, err)
	}
	if size > maxSegmentSize {
		return false, nil
	}
	idxData, err := vfs.ReadFile(l.fsys, s.path(l.dir, indexSuffix), int64(l.cfg.SegmentIndexBytes)+indexEntrySize)
	if err != nil {
		return false, nil
	}
	index, err := parseIndex(idxData, size, -1)
	if err != nil {
		return false, nil
	}
	timeData, err := vfs.ReadFile(l.fsys, s.path(l.dir, timeIndexSuffix), int64(l.cfg.SegmentIndexBytes)+timeEntrySize)
	if err != nil {
		return false, nil
	}
	times, err := parseTimeIndex(timeData, -1)
	if err != nil {
		return false, nil
	}
	st := indexState{next: s.base, index: index, times: times, nIndex: len(index), nTimes: len(times), maxTs: -1, maxTsBase: -1}
	if n := len(times); n > 0 {
		st.maxTs, st.maxTsBase = times[n-1].ts, s.base+int64(times[n-1].rel)
	}
	var pos int64
	if n := len(index); n > 0 {
		pos = int64(index[n-1].pos)
	}
	var buf [batch.HeaderSize]byte
	first := true
	for pos < size {
		if size-pos < batch.HeaderSize {
			return false, nil
		}
		h, err := readHeader(s.log, pos, buf[:])
		if err != nil {
			return false, nil
		}
		n := int64(h.BatchLength()) + 12
		if n < batch.HeaderSize || pos+n > size || h.Magic() != 2 || checkFollows(h, s.base, st.next) != "" {
			return false, nil
		}
		if first && len(index) > 0 && h.BaseOffset() != s.base+int64(index[len(index)-1].rel) {
			return false, nil
		}
		first = false
		if ts := h.MaxTimestamp(); ts > st.maxTs {
			st.maxTs, st.maxTsBase = ts, h.BaseOffset()
		}
		st.next = h.LastOffset() + 1
		pos += n
	}
	// The time index must not point past the segment's end, and its last entry, which
	// gives the segment's largest timestamp, must name a batch with that timestamp.
	if n := len(times); n > 0 {
		last := times[n-1]
		if s.base+int64(last.rel) >= st.next || !l.batchHasTimestamp(s, index, size, s.base+int64(last.rel), last.ts) {
			return false, nil
		}
	}
	st.size = size
	if n := len(index); n > 0 {
		st.bytesSinceIndex = size - int64(index[n-1].pos)
	} else {
		st.bytesSinceIndex = size
	}
	s.publish(st)
	return true, nil
}
