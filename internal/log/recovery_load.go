// Loading one segment's files at Open, and the directory listing recovery starts from.
package log

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

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

// cleanDir removes leftovers (recorded in rep) and returns the segments' files, sorted
// by base offset.
func (l *Log) cleanDir(rep *RecoveryReport) ([]segmentFile, error) {
	ents, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var files []segmentFile
	logs := map[string]bool{}
	for _, e := range ents {
		base, ok := parseSegmentName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", e.Name(), err)
		}
		size, mtime := fileStamp(info)
		files = append(files, segmentFile{base: base, size: size, mtime: mtime})
		logs[strings.TrimSuffix(e.Name(), logSuffix)] = true
	}
	for _, e := range ents {
		name := e.Name()
		stem := strings.TrimSuffix(strings.TrimSuffix(name, indexSuffix), timeIndexSuffix)
		orphanIndex := stem != name && len(stem) == 20 && !logs[stem]
		if strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, cleanedSuffix) || orphanIndex {
			if err := l.fsys.Remove(path.Join(l.dir, name)); err != nil {
				return nil, fmt.Errorf("remove leftover %s: %w", name, err)
			}
			rep.Removed = append(rep.Removed, name)
			l.dirDirty = true
		}
	}
	slices.SortFunc(files, func(a, b segmentFile) int { return cmp.Compare(a.base, b.base) })
	return files, nil
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

// indexWitness returns the entries of s's offset index file if it holds a valid index
// for the file as it is, else nil: a scan checks batches against them where the cleaner
// may have left gaps (recovery_checks.go).
func (l *Log) indexWitness(s *segment) []indexEntry {
	size, err := fileSize(s.log)
	if err != nil || size > maxSegmentSize {
		return nil
	}
	data, err := vfs.ReadFile(l.fsys, s.path(l.dir, indexSuffix), int64(l.cfg.SegmentIndexBytes)+indexEntrySize)
	if err != nil {
		return nil
	}
	index, err := parseIndex(data, size, -1)
	if err != nil {
		return nil
	}
	return index
}

// loadIndexes loads both index files and walks the batches after the last index entry,
// checking them as a scan does (recovery_checks.go) against the segment's successor at
// limit and the leader epoch so far (updated). It returns false if anything fails a
// check, so the caller rebuilds by a full scan.
func (r *recovery) loadIndexes(s *segment, limit int64, epoch *int32) (bool, error) {
	l := r.l
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
	chk := r.newBatchCheck(s, limit, *epoch)
	if n := len(index); n > 0 {
		chk.next = s.base + int64(index[n-1].rel) // the batches before it are not read
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
		if n < batch.HeaderSize || pos+n > size || h.Magic() != 2 || chk.check(h, pos) != "" {
			return false, nil
		}
		chk.advance(h)
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
	*epoch = chk.epoch
	return true, nil
}
