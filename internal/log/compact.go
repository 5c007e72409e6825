// Compaction (cleanup.policy=compact): keep only the latest record of each key.
//
// Compact works on whole inactive segments below a limit the caller gives (the high
// watermark, or the last stable offset). It first maps every key to the offset of its
// latest record in those segments, then rewrites each segment that holds a superseded
// record, or a tombstone older than delete.retention.ms. Each segment keeps its base
// offset and its end: a batch keeps its base and last offsets even when records go
// (batch.Filter), and an emptied batch stays as a header with no records, as Kafka's
// cleaner leaves one; so offsets never move and recovery's checks on segment boundaries
// still hold.
//
// Transactional and control batches are kept as they are (cleaning them needs the
// transaction index this log does not have yet); records without a key are kept.
//
// Swap, crash-safe in this order: write <base>.log.cleaned and fsync it; remove the
// segment's index files; rename .cleaned over .log; fsync the directory; rebuild the
// indexes. A crash before the rename leaves the old segment (and a *.cleaned file Open
// removes); after it, the new one with missing indexes, which Open rebuilds. A reader
// holding the old file keeps reading it until file.delete.delay.ms has passed.
//
// Compact holds the log's write lock while it works, so appends wait: it suits internal
// topics like __consumer_offsets, whose segments are small.
package log

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

const cleanedSuffix = ".cleaned"

// CompactOptions bound one compaction.
type CompactOptions struct {
	// UpTo: only segments that end at or below this offset are cleaned (the high
	// watermark or last stable offset); the active segment never is.
	UpTo int64
	// DeleteRetention is delete.retention.ms: a tombstone whose batch's maxTimestamp is
	// older than this is removed once it is the latest record of its key.
	DeleteRetention time.Duration
}

// CompactStats reports what a compaction did.
type CompactStats struct {
	Segments       int   // segments rewritten
	RecordsRemoved int64 // records dropped
	BytesBefore    int64 // size of the rewritten segments before
	BytesAfter     int64 // and after
}

// Compact removes superseded records and expired tombstones from the inactive segments
// below opts.UpTo.
func (l *Log) Compact(opts CompactOptions) (CompactStats, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	var stats CompactStats
	if l.closed {
		return stats, errClosed
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n].next <= opts.UpTo {
		n++
	}
	if n == 0 {
		return stats, nil
	}
	latest := map[string]int64{}
	for _, s := range l.segs[:n] {
		err := forEachBatch(s, func(b batch.Batch) error {
			if b.Transactional() || b.Control() {
				return nil
			}
			recs, err := batch.Records(b, maxDecodeBytes)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Key != nil {
					latest[string(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if err != nil {
			return stats, fmt.Errorf("compact: map keys of segment %d: %w", s.base, err)
		}
	}
	horizon := l.now().Add(-opts.DeleteRetention).UnixMilli()
	for i := range n {
		s := l.segs[i]
		var out []byte
		var removed int64
		err := forEachBatch(s, func(b batch.Batch) error {
			if b.Transactional() || b.Control() {
				out = append(out, b...)
				return nil
			}
			expired := b.MaxTimestamp() < horizon
			nb, changed, err := batch.Filter(b, func(r batch.Record) bool {
				if r.Key == nil {
					return true
				}
				if latest[string(r.Key)] != r.Offset {
					return false
				}
				return r.Value != nil || !expired
			}, maxDecodeBytes)
			if err != nil {
				return err
			}
			if changed {
				removed += int64(b.RecordCount() - nb.RecordCount())
			}
			out = append(out, nb...)
			return nil
		})
		if err != nil {
			return stats, fmt.Errorf("compact segment %d: %w", s.base, err)
		}
		if removed == 0 {
			continue
		}
		before := s.size
		if err := l.swapSegment(i, out); err != nil {
			return stats, err
		}
		stats.Segments++
		stats.RecordsRemoved += removed
		stats.BytesBefore += before
		stats.BytesAfter += int64(len(out))
	}
	return stats, nil
}

// forEachBatch calls fn for each whole batch of s below its published size.
func forEachBatch(s *segment, fn func(b batch.Batch) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, s.size), 64<<10)
	var buf []byte
	for pos := int64(0); pos < s.size; {
		b, reason := readBatch(r, &buf, s.size-pos)
		if reason != "" {
			return fmt.Errorf("%w at position %d: %s", batch.ErrCorrupt, pos, reason)
		}
		if err := fn(b); err != nil {
			return err
		}
		pos += int64(len(b))
	}
	return nil
}

// swapSegment replaces segment i's content with data (see the file comment for the order).
func (l *Log) swapSegment(i int, data []byte) error {
	old := l.segs[i]
	logPath := old.path(l.dir, logSuffix)
	tmp := logPath + cleanedSuffix
	f, err := l.fsys.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("compact segment %d: %w", old.base, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("compact segment %d: write: %w", old.base, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compact segment %d: sync: %w", old.base, err)
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := l.fsys.Remove(old.path(l.dir, suf)); err != nil {
			return fmt.Errorf("compact segment %d: remove old index: %w", old.base, err)
		}
	}
	if err := l.fsys.Rename(tmp, logPath); err != nil {
		return fmt.Errorf("compact segment %d: swap: %w", old.base, err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("compact segment %d: sync dir: %w", old.base, err)
	}
	s, err := openSegmentFiles(l.fsys, l.dir, old.base, false)
	if err != nil {
		return fmt.Errorf("compact segment %d: reopen: %w", old.base, err)
	}
	res, err := s.scan(l.cfg.IndexIntervalBytes)
	if err == nil && (res.truncated || res.st.next != old.next) {
		err = fmt.Errorf("rewritten segment does not end at %d: %s", old.next, res.reason)
	}
	if err == nil {
		st := res.st
		st.maybeTimeEntry(s.base)
		err = s.writeIndexes(st.index, st.times)
		res.st = st
	}
	if err != nil {
		s.close()
		return fmt.Errorf("compact segment %d: %w", old.base, err)
	}
	s.created = old.created
	s.dirty = true
	l.dirDirty = true
	l.mu.Lock()
	s.publish(res.st)
	l.segs[i] = s
	l.mu.Unlock()
	// Readers may hold the old files: close them after the delete delay. Their names
	// are gone (or taken by the new files), so only closing is left to do.
	l.pendingDeletes = append(l.pendingDeletes, pendingDelete{seg: old, due: l.now().Add(l.cfg.FileDeleteDelay), closeOnly: true})
	return nil
}
