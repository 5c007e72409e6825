// Rewriting a group of segments into one cleaned segment, swapping it in, and finishing
// a swap that a crash interrupted.
//
// Files of a group whose first segment has base b, in order:
//
//  1. write b.log.cleaned, b.index.cleaned, b.timeindex.cleaned and fsync them (no lock);
//  2. under writeMu, if the group is still what was read: rename the three to *.swap,
//     index files first, and fsync the directory. b.log.swap being durable decides the
//     swap: from then on recovery finishes it;
//  3. rename the group's other segments' files to *.deleted;
//  4. rename the *.swap files over b.index, b.timeindex and b.log, fsync the directory,
//     publish the new segment. Readers holding the old files keep reading them until
//     file.delete.delay.ms has passed.
//
// Recovery (completeSwaps, before anything else in Open): for each b.log.swap, the
// segments with a base above b and below the swap file's end are deleted (step 3 may not
// have been durable), each index .swap is renamed over its file or, if it is missing,
// the index file is removed (it may be the old one; Open rebuilds it), and b.log.swap is
// renamed over b.log. Leftover *.cleaned and other *.swap files are removed: without
// b.log.swap the old segments are whole. A crash at any point thus leaves either the
// old segments or the new one, never both or neither.
package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"bufio"

	"github.com/vltava/vltava/internal/batch"
)

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// cleanRun is what one clean decides records by.
type cleanRun struct {
	m               *offsetMap
	end, firstDirty int64 // records at or past end were not mapped and are kept
	cp              cleanerCheckpoint
	nowMs           int64
	retentionMs     int64
	producerLast    map[int64]int64 // producer ID -> last offset of its last batch below end
	maxDecompressed int
	tombstoneDue    int64 // earliest time a kept tombstone may go, -1 if none
}

// filter returns b without its superseded records and expired tombstones, nil if the
// batch can go altogether (empty, and neither its producer's last nor its group's last).
func (r *cleanRun) filter(b batch.Batch, groupLast bool) (out batch.Batch, removed, tombstones int64, err error) {
	if b.Control() || b.Transactional() {
		return b, 0, 0, nil
	}
	out, changed, err := batch.Filter(b, func(rec batch.Record) bool {
		if rec.Offset >= r.end || rec.Key == nil {
			return true
		}
		if latest := r.m.get(rec.Key); latest > rec.Offset {
			return false
		}
		if rec.Value != nil {
			return true
		}
		due := r.nowMs + r.retentionMs
		if rec.Offset < r.firstDirty {
			due = r.cp.cleanedAt(rec.Offset) + r.retentionMs
		}
		if rec.Offset < r.firstDirty && due <= r.nowMs {
			tombstones++
			return false
		}
		if r.tombstoneDue < 0 || due < r.tombstoneDue {
			r.tombstoneDue = due
		}
		return true
	}, r.maxDecompressed)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("filter batch at %d: %w", b.BaseOffset(), err)
	}
	removed = int64(b.RecordCount() - out.RecordCount())
	if out.RecordCount() == 0 {
		// Emptied now or by an earlier clean.
		if pid := b.ProducerID(); !groupLast && (pid < 0 || r.producerLast[pid] != b.LastOffset()) {
			return nil, removed, tombstones, nil
		}
		if changed {
			out = emptyBatch(out)
		}
	}
	return out, removed, tombstones, nil
}

// emptyBatch returns b's header alone, uncompressed, as Kafka's cleaner writes a batch it
// keeps with no records (DefaultRecordBatch.writeEmptyHeader): clients would otherwise
// try to decompress an empty payload, which some codecs reject.
func emptyBatch(b batch.Batch) batch.Batch {
	const (
		offBatchLength = 8
		offAttributes  = 21
		offRecordCount = 57
		codecMask      = 0x07
	)
	out := batch.Batch(append([]byte(nil), b[:batch.HeaderSize]...))
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(batch.HeaderSize-12))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(out.Attributes()&^codecMask))
	binary.BigEndian.PutUint32(out[offRecordCount:], 0)
	binary.BigEndian.PutUint32(out[17:], out.ComputeCRC())
	return out
}

// cleanGroup rewrites group g into one segment and swaps it in. It returns false if the
// log changed under the clean (nothing of g was swapped).
func (c *Cleaner) cleanGroup(l *Log, g []cleanSeg, run *cleanRun, cfg Config, gen int64, stats *CleanStats) (bool, error) {
	base := g[0].base
	name := func(suffix string) string { return path.Join(l.dir, segmentName(base, suffix)) }
	f, err := l.fsys.OpenFile(name(logSuffix)+cleanedSuffix, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return false, fmt.Errorf("clean segment %d: %w", base, err)
	}
	fileOpen := true
	defer func() {
		if fileOpen {
			f.Close()
		}
	}()
	c.wr.Reset(f)
	st := indexState{next: base, maxTs: -1, maxTsBase: -1}
	var pos, before, removed, tombstones int64
	changed := len(g) > 1
	for gi, v := range g {
		before += v.size
		err := c.forEachBatch(v.segView, func(b batch.Batch, last bool) error {
			out, rm, tb, err := run.filter(b, gi == len(g)-1 && last)
			if err != nil {
				return err
			}
			removed += rm
			tombstones += tb
			if rm > 0 || out == nil {
				changed = true
			}
			if out == nil {
				return nil
			}
			if _, err := c.wr.Write(out); err != nil {
				return fmt.Errorf("write cleaned segment %d: %w", base, err)
			}
			if !c.throttle.wait(len(out), c.abort) {
				return ErrCleanAborted
			}
			st.observe(out.BaseOffset(), base, out.LastOffset(), out.MaxTimestamp(), pos, int64(len(out)), cfg.IndexIntervalBytes)
			pos += int64(len(out))
			return nil
		})
		if err != nil {
			l.removeCleaned(base)
			return false, err
		}
	}
	err = c.wr.Flush()
	c.wr.Reset(nil)
	if err == nil && !changed {
		f.Close()
		fileOpen = false
		l.removeCleaned(base)
		return true, nil
	}
	st.maybeTimeEntry(base)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	fileOpen = false
	if err == nil {
		err = l.writeCleanedIndexes(base, st)
	}
	if err != nil {
		l.removeCleaned(base)
		return false, fmt.Errorf("write cleaned segment %d: %w", base, err)
	}
	if c.hooks.beforeSwap != nil {
		c.hooks.beforeSwap()
	}
	ok, err := l.swapCleaned(g, gen, st)
	if !ok {
		if !errors.Is(err, errSwapUndecided) {
			l.removeCleaned(base)
		}
		return false, err
	}
	stats.Segments += len(g)
	stats.SegmentsAfter++
	stats.RecordsRemoved += removed
	stats.TombstonesDelete += tombstones
	stats.BytesBefore += before
	stats.BytesAfter += pos
	return true, nil
}

// writeCleanedIndexes writes and syncs the cleaned segment's index files.
func (l *Log) writeCleanedIndexes(base int64, st indexState) error {
	var idx, times []byte
	for _, e := range st.index {
		idx = appendIndexEntry(idx, e)
	}
	for _, e := range st.times {
		times = appendTimeEntry(times, e)
	}
	for _, w := range []struct {
		suffix string
		data   []byte
	}{{indexSuffix, idx}, {timeIndexSuffix, times}} {
		p := path.Join(l.dir, segmentName(base, w.suffix)) + cleanedSuffix
		f, err := l.fsys.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(w.data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path.Base(p), err)
		}
	}
	return nil
}

// removeCleaned removes a group's unswapped files, best effort: Open removes any left.
func (l *Log) removeCleaned(base int64) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		p := path.Join(l.dir, segmentName(base, suf))
		l.fsys.Remove(p + cleanedSuffix)
		l.fsys.Remove(p + swapSuffix)
	}
}

// errSwapUndecided: a swap failed after its log .swap file may have become durable;
// the files are left for recovery to finish.
var errSwapUndecided = errors.New("swap failed half way; reopen the log to finish it")

// A rename or directory sync that fails during a swap poisons the log, as any other
// failed write or fsync does (Kafka's cleaner takes the log dir offline on an I/O
// error): the directory may or may not hold the renames, and Linux may have dropped
// them, so only a reopen (recovery finishes or undoes the swap) knows what the log is.

// swapCleaned swaps the cleaned files of group g in (see the file comment). It returns
// false without an error if the group is no longer in the log as it was read.
func (l *Log) swapCleaned(g []cleanSeg, gen int64, st indexState) (bool, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return false, err
	}
	if l.cleanGen != gen {
		return false, nil
	}
	i := slices.Index(l.segs, g[0].seg)
	if i < 0 || i+len(g) >= len(l.segs) {
		return false, nil
	}
	for j, v := range g {
		if l.segs[i+j] != v.seg || v.seg.size != v.size {
			return false, nil
		}
	}
	base := g[0].base
	name := func(suffix string) string { return path.Join(l.dir, segmentName(base, suffix)) }
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := l.fsys.Rename(name(suf)+cleanedSuffix, name(suf)+swapSuffix); err != nil {
			return false, l.fail(fmt.Errorf("swap segment %d: %w", base, err))
		}
	}
	if err := l.fsys.Rename(name(logSuffix)+cleanedSuffix, name(logSuffix)+swapSuffix); err != nil {
		return false, l.fail(fmt.Errorf("swap segment %d: %w", base, err))
	}
	undecided := func(err error) (bool, error) {
		return false, l.fail(fmt.Errorf("swap segment %d: %w: %w", base, errSwapUndecided, err))
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return undecided(err)
	}
	for _, v := range g[1:] {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			p := v.seg.path(l.dir, suf)
			if err := l.fsys.Rename(p, p+deletedSuffix); err != nil {
				return undecided(err)
			}
		}
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if err := l.fsys.Rename(name(suf)+swapSuffix, name(suf)); err != nil {
			return undecided(err)
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return undecided(err)
	}
	s, err := openSegmentFiles(l.fsys, l.dir, base, false)
	if err != nil {
		return undecided(err)
	}
	s.created = g[0].seg.created
	segs := make([]*segment, 0, len(l.segs)-len(g)+1)
	segs = append(append(append(segs, l.segs[:i]...), s), l.segs[i+len(g):]...)
	l.mu.Lock()
	s.publishInactive(st)
	l.segs = segs
	l.mu.Unlock()
	due := l.now().Add(l.cfg.FileDeleteDelay)
	l.pendingDeletes = append(l.pendingDeletes, pendingDelete{seg: g[0].seg, due: due, closeOnly: true})
	for _, v := range g[1:] {
		l.pendingDeletes = append(l.pendingDeletes, pendingDelete{seg: v.seg, due: due})
	}
	if l.cfg.FileDeleteDelay <= 0 {
		if err := l.removeDueLocked(false); err != nil {
			return true, err
		}
	}
	return true, nil
}

// completeSwaps finishes swaps a crash interrupted and removes unswapped cleaner files
// (see the file comment), recording both in rep. Open calls it before listing segments.
func (l *Log) completeSwaps(rep *RecoveryReport) error {
	ents, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var bases, swaps []int64
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, b)
		}
		if stem, ok := strings.CutSuffix(e.Name(), swapSuffix); ok {
			if b, ok := parseSegmentName(stem); ok {
				swaps = append(swaps, b)
			}
		}
	}
	changed := false
	remove := func(name string) error {
		err := l.fsys.Remove(path.Join(l.dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("finish swap: %w", err)
		}
		if err == nil {
			rep.Removed = append(rep.Removed, name)
		}
		changed = true
		return nil
	}
	for _, b := range swaps {
		end, err := l.swapEnd(b)
		if err != nil {
			return err
		}
		for _, o := range bases {
			if o > b && o < end {
				for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
					if err := remove(segmentName(o, suf)); err != nil {
						return err
					}
				}
			}
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
			p := path.Join(l.dir, segmentName(b, suf))
			err := l.fsys.Rename(p+swapSuffix, p)
			switch {
			case errors.Is(err, fs.ErrNotExist) && suf != logSuffix:
				err = remove(segmentName(b, suf))
			case err != nil:
				err = fmt.Errorf("finish swap of segment %d: %w", b, err)
			}
			if err != nil {
				return err
			}
			changed = true
		}
		rep.SwapsFinished = append(rep.SwapsFinished, b)
	}
	ents, err = l.fsys.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), swapSuffix) {
			if err := remove(e.Name()); err != nil {
				return err
			}
		}
	}
	if changed {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return fmt.Errorf("finish swap: sync dir: %w", err)
		}
	}
	return nil
}

// swapEnd returns the offset after the last whole batch of segment b's .swap file.
func (l *Log) swapEnd(b int64) (int64, error) {
	p := path.Join(l.dir, segmentName(b, logSuffix)) + swapSuffix
	f, err := l.fsys.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("finish swap: %w", err)
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return 0, fmt.Errorf("finish swap: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10)
	var buf []byte
	end := b
	for pos := int64(0); pos < size; {
		bt, reason := readBatch(r, &buf, size-pos)
		if reason != "" {
			break
		}
		end = bt.LastOffset() + 1
		pos += int64(len(bt))
	}
	return end, nil
}
