// Compaction (cleanup.policy=compact): keep only the latest record of each key, after
// Kafka's log cleaner (LogCleaner, Cleaner, LogCleanerManager, LogToClean).
//
// The log has a clean section (already compacted) followed by a dirty section, split
// at the first dirty offset kept in the cleaner checkpoint (compact_checkpoint.go). The
// dirty section ends at the first uncleanable offset: the active segment's base, the
// high watermark the caller passes, the recovery point (what is known synced), and the
// first segment holding a record younger than min.compaction.lag.ms, whichever is
// lowest. The recovery point bound is Vltava's (Kafka has none; it counts on replicas):
// a cleaned segment is fsynced before it is swapped in, so a record it drops because a
// newer record of its key exists must only be dropped once that newer record is synced,
// or a crash loses both (committed offsets in __consumer_offsets, for instance).
//
// A log is worth cleaning when its dirty ratio (dirty bytes / clean+dirty bytes) reaches
// min.cleanable.dirty.ratio, when its oldest dirty record is older than
// max.compaction.lag.ms, or when a tombstone it keeps has outlived delete.retention.ms
// (KIP-534).
//
// One clean:
//  1. maps the key of every record of the dirty section to its latest offset, in a map of
//     bounded memory (compact_map.go); if the map fills, the dirty section is cut where it
//     filled and the rest waits for the next clean;
//  2. walks batch headers from the log start to note each producer's last batch, which
//     is kept even when emptied so producer state (sequence numbers) survives a restart;
//  3. makes the cleaner checkpoint's gap end at least the mapped end, durably, so that
//     recovery knows where batches may not follow one another (recovery_checks.go);
//  4. rewrites the segments from the log start up to the mapped end in groups of
//     consecutive segments whose sizes add up to at most segment.bytes (Kafka's
//     groupSegmentsBySize), each group into one new segment (compact_swap.go), dropping
//     records superseded by a later offset of their key and tombstones first cleaned more
//     than delete.retention.ms ago;
//  5. moves the first dirty offset to the mapped end in the checkpoint.
//
// Records keep their offsets: a batch keeps its base and last offsets when records go
// (batch.Filter re-encodes, and recompresses with the batch's codec), an emptied batch
// is dropped unless it is the last of its producer or of its group (so a segment still
// ends where the next begins, which recovery checks). Transactional and control batches
// are kept whole (aborted data needs a transaction index we do not have) and their
// records are not mapped, so a transactional write never supersedes anything; records
// without a key are kept.
//
// Locking: a clean holds Log.cleanMu (one clean per log at a time) but not writeMu while
// it reads and writes: appends, reads and retention go on. It reads inactive segments
// below their published sizes, which nothing changes in place except truncation (which
// bumps Log.cleanGen). writeMu is taken only to swap a group's new segment in, after
// checking that the group is still what was read; otherwise the clean stops and leaves
// the rest for the next one.
//
// Memory and I/O: the map's budget, one read buffer, one batch and its decoded records
// (bounded by MaxDecompressed) and one write buffer; a segment is never held whole. The
// batches a clean reads (in the map and rewrite passes, and the headers of the producer
// walk) and writes go through the cleaner's throttle (throttle.go), which sleeps to keep
// them to CleanOptions.IOMaxBytesPerSecond; an abort ends the sleep.
package log

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

// DefaultDedupeBufferBytes is log.cleaner.dedupe.buffer.size's default.
const DefaultDedupeBufferBytes = 128 << 20

const cleanerIOBufferBytes = 256 << 10

// ErrCleanAborted reports a clean stopped by CleanOptions.Abort or by Delete.
var ErrCleanAborted = errors.New("clean aborted")

// CleanOptions are one clean's limits and the topic's compaction settings.
type CleanOptions struct {
	// HighWatermark: nothing at or above it is cleaned (the high watermark or last
	// stable offset). Nothing at or above the recovery point is cleaned either.
	HighWatermark     int64
	DeleteRetention   time.Duration // delete.retention.ms
	MinCleanableRatio float64       // min.cleanable.dirty.ratio
	MinCompactionLag  time.Duration // min.compaction.lag.ms
	MaxCompactionLag  time.Duration // max.compaction.lag.ms, <= 0 for none
	// MaxDecompressed bounds one batch's decoded records (0: 256 MiB).
	MaxDecompressed int
	// Abort, when closed, stops a clean between batches (broker shutdown), or in a
	// throttle sleep.
	Abort <-chan struct{}
	// IOMaxBytesPerSecond is log.cleaner.io.max.bytes.per.second: the bytes a clean
	// reads and writes, together, per second. <= 0 or Kafka's default (Double.MAX_VALUE)
	// is unlimited.
	IOMaxBytesPerSecond float64
}

// Cleanable describes a log's dirty section.
type Cleanable struct {
	FirstDirty       int64
	FirstUncleanable int64
	CleanBytes       int64
	DirtyBytes       int64
	DirtyRatio       float64
	MaxLagExceeded   bool // the oldest dirty record is older than max.compaction.lag.ms
	TombstonesDue    bool // a kept tombstone has outlived delete.retention.ms
}

// Needed reports whether a clean would do something worth its I/O.
func (c Cleanable) Needed(minRatio float64) bool {
	return c.DirtyBytes > 0 && (c.MaxLagExceeded || c.DirtyRatio >= minRatio) || c.TombstonesDue
}

// CleanStats reports what a clean did.
type CleanStats struct {
	Segments         int   // source segments rewritten
	SegmentsAfter    int   // segments they became
	RecordsRemoved   int64 // records dropped
	TombstonesDelete int64 // of which tombstones past delete.retention.ms
	BytesBefore      int64 // size of the rewritten segments before
	BytesAfter       int64 // and after
	FirstDirty       int64 // the dirty section cleaned: [FirstDirty, End)
	End              int64
	Interrupted      bool          // the log changed under the clean; the rest waits for the next one
	IOBytes          int64         // bytes read and written, as the throttle counts them
	Throttled        time.Duration // sleeps the throttle asked for
}

// Cleaner compacts logs one at a time with a reusable offset map and buffers. It is not
// safe for concurrent use; its owner (the broker's cleaner loop) serialises calls.
type Cleaner struct {
	m        *offsetMap
	rd       *bufio.Reader
	wr       *bufio.Writer
	buf      []byte
	hooks    cleanerHooks
	throttle *throttle
	abort    abortSignal // of the clean running: its Abort and its log's flag
}

// cleanerHooks let tests act at points of a clean.
type cleanerHooks struct {
	afterMap   func()
	beforeSwap func()
}

// NewCleaner returns a cleaner whose offset map may use up to dedupeBufferBytes.
func NewCleaner(dedupeBufferBytes int64) *Cleaner {
	return &Cleaner{
		m:        newOffsetMap(dedupeBufferBytes),
		rd:       bufio.NewReaderSize(nil, cleanerIOBufferBytes),
		wr:       bufio.NewWriterSize(nil, cleanerIOBufferBytes),
		throttle: newThrottle(),
	}
}

// CompactOptions and Compact are the first compaction API, kept for callers that want a
// clean now whatever the dirty ratio.
type CompactOptions struct {
	UpTo            int64
	DeleteRetention time.Duration
}

type CompactStats = CleanStats

// Compact cleans whatever is dirty below opts.UpTo, whatever the dirty ratio.
func (l *Log) Compact(opts CompactOptions) (CompactStats, error) {
	return NewCleaner(16<<20).Clean(l, CleanOptions{HighWatermark: opts.UpTo, DeleteRetention: opts.DeleteRetention})
}

// Cleanable reports the log's dirty section under opts.
func (l *Log) Cleanable(opts CleanOptions) (Cleanable, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	c, _, _, err := l.cleanable(opts)
	return c, err
}

// cleanable computes the dirty section from the checkpoint and the published segments.
func (l *Log) cleanable(opts CleanOptions) (Cleanable, cleanerCheckpoint, []cleanSeg, error) {
	cp, err := l.readCleanerCheckpoint()
	if err != nil {
		return Cleanable{}, cp, nil, err
	}
	synced := l.RecoveryPoint()
	l.mu.RLock()
	lso, leo := l.logStartOffset, l.logEndOffset.Load()
	views := make([]cleanSeg, 0, len(l.segs))
	for _, s := range l.segs {
		views = append(views, cleanSeg{segView{s, s.base, s.size, s.next}, s.maxTs, s.nIndex, s.nTimes})
	}
	l.mu.RUnlock()
	if cp.firstDirty < lso || cp.firstDirty > leo {
		// Never cleaned, or the log was truncated or moved past the checkpoint, as Kafka
		// resets an out-of-range checkpoint to the log start.
		cp = cleanerCheckpoint{firstDirty: lso, tombstoneDue: -1, gapEnd: cp.gapEnd}
	}
	now := l.now()
	c := Cleanable{FirstDirty: cp.firstDirty}
	unc := min(views[len(views)-1].base, opts.HighWatermark, synced)
	for _, v := range views[:len(views)-1] {
		if v.next <= cp.firstDirty || v.base >= unc {
			continue
		}
		if opts.MinCompactionLag > 0 && v.maxTs > now.Add(-opts.MinCompactionLag).UnixMilli() {
			unc = min(unc, v.base)
		}
	}
	unc = max(unc, cp.firstDirty)
	c.FirstUncleanable = unc
	for _, v := range views[:len(views)-1] {
		switch {
		case v.next <= cp.firstDirty:
			c.CleanBytes += v.size
		case v.base < unc:
			c.DirtyBytes += v.size
		}
	}
	if total := c.CleanBytes + c.DirtyBytes; total > 0 {
		c.DirtyRatio = float64(c.DirtyBytes) / float64(total)
	}
	// Kafka's default max.compaction.lag.ms (Long.MAX_VALUE) means never: skip the read.
	if c.DirtyBytes > 0 && opts.MaxCompactionLag > 0 && opts.MaxCompactionLag < math.MaxInt64 {
		err := l.Batches(cp.firstDirty, func(b batch.Batch) bool {
			c.MaxLagExceeded = now.Sub(time.UnixMilli(b.MaxTimestamp())) > opts.MaxCompactionLag
			return false
		})
		if err != nil {
			return c, cp, nil, fmt.Errorf("cleanable: first dirty batch: %w", err)
		}
	}
	c.TombstonesDue = cp.tombstoneDue >= 0 && cp.tombstoneDue <= now.UnixMilli() && len(cp.ranges) > 0
	return c, cp, views, nil
}

// Clean compacts l if its dirty section is worth it under opts (see Cleanable.Needed).
func (c *Cleaner) Clean(l *Log, opts CleanOptions) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	if err := l.cleanFailed(); err != nil {
		return CleanStats{}, err
	}
	info, cp, views, err := l.cleanable(opts)
	if err != nil {
		return CleanStats{}, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	if !info.Needed(opts.MinCleanableRatio) {
		return CleanStats{}, nil
	}
	c.abort = abortSignal{ch: opts.Abort, flag: &l.cleanAbort}
	c.throttle.setRate(opts.IOMaxBytesPerSecond)
	bytes0, slept0 := c.throttle.bytes, c.throttle.slept
	stats, err := c.clean(l, opts, info, cp, views)
	stats.IOBytes, stats.Throttled = c.throttle.bytes-bytes0, c.throttle.slept-slept0
	c.abort = abortSignal{}
	c.rd.Reset(nil) // hold no segment file between cleans
	if err != nil {
		return stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	return stats, nil
}

// cleanFailed returns why l must not be cleaned: closed, or poisoned (a swap that failed
// half way leaves files only recovery (Open) sorts out; so does any storage failure).
func (l *Log) cleanFailed() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.usableLocked()
}

// cleanSeg is a clean's copy of one segment's published state.
type cleanSeg struct {
	segView
	maxTs          int64
	nIndex, nTimes int
}

func (c *Cleaner) clean(l *Log, opts CleanOptions, info Cleanable, cp cleanerCheckpoint, views []cleanSeg) (CleanStats, error) {
	if opts.MaxDecompressed <= 0 {
		opts.MaxDecompressed = maxDecodeBytes
	}
	l.writeMu.Lock()
	gen, cfg := l.cleanGen, l.cfg
	l.writeMu.Unlock()
	stats := CleanStats{FirstDirty: info.FirstDirty}

	end, err := c.buildMap(views, info.FirstDirty, info.FirstUncleanable, opts)
	if err != nil {
		return l.interrupted(stats, err, gen)
	}
	stats.End = end
	if end == info.FirstDirty && !info.TombstonesDue {
		// Nothing below the first uncleanable offset could be mapped (the high watermark
		// lies inside the first dirty batch): rewriting the clean section would change
		// nothing.
		return stats, nil
	}
	if c.hooks.afterMap != nil {
		c.hooks.afterMap()
	}
	producerLast := map[int64]int64{}
	aborted := false
	err = l.Batches(views[0].base, func(b batch.Batch) bool {
		if b.BaseOffset() >= end {
			return false
		}
		if !c.throttle.wait(batch.HeaderSize, c.abort) {
			aborted = true
			return false
		}
		if pid := b.ProducerID(); pid >= 0 {
			producerLast[pid] = b.LastOffset()
		}
		return true
	})
	if err == nil && aborted {
		err = ErrCleanAborted
	}
	if err != nil {
		return l.interrupted(stats, err, gen)
	}

	now := l.now()
	run := cleanRun{
		m: c.m, end: end, firstDirty: info.FirstDirty, cp: cp, nowMs: now.UnixMilli(),
		retentionMs: opts.DeleteRetention.Milliseconds(), producerLast: producerLast,
		maxDecompressed: opts.MaxDecompressed, tombstoneDue: -1,
	}
	var candidates []cleanSeg
	for _, v := range views[:len(views)-1] {
		if v.base < end {
			candidates = append(candidates, v)
		}
	}
	// Recovery must know where gaps may be before the first cleaned segment is in.
	if done, err := l.markGaps(&cp, end, gen); err != nil || !done {
		if err != nil {
			return l.interrupted(stats, err, gen)
		}
		stats.Interrupted = true
		return stats, nil
	}
	for _, g := range groupBySize(candidates, cfg) {
		done, err := c.cleanGroup(l, g, &run, cfg, gen, &stats)
		if err != nil {
			return l.interrupted(stats, err, gen)
		}
		if !done {
			stats.Interrupted = true
			return stats, nil
		}
	}
	next := cp.advance(end, views[0].base, now, opts.DeleteRetention)
	next.tombstoneDue = run.tombstoneDue
	// Under writeMu, so a truncation (which lowers the checkpoint) is not overwritten.
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed || l.cleanGen != gen {
		stats.Interrupted = true
		return stats, nil
	}
	if err := writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, next.format()); err != nil {
		return stats, err
	}
	return stats, nil
}

// markGaps moves the cleaner checkpoint's gap end to at least end (markGapsLocked) and
// records it in cp; false if the log changed under the clean.
func (l *Log) markGaps(cp *cleanerCheckpoint, end, gen int64) (bool, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed || l.cleanGen != gen {
		return false, nil
	}
	g, err := l.markGapsLocked(end)
	if err != nil {
		return false, err
	}
	cp.gapEnd = g
	return true, nil
}

// interrupted ends a clean that failed to read or swap: with the error, or as
// interrupted if the log changed under it.
func (l *Log) interrupted(stats CleanStats, err error, gen int64) (CleanStats, error) {
	if err = l.readErr(err, gen); err != nil {
		return stats, err
	}
	stats.Interrupted = true
	return stats, nil
}

// readErr turns a read error caused by the log changing under the clean (closed,
// truncated) into errClosed or nothing.
func (l *Log) readErr(err error, gen int64) error {
	if errors.Is(err, ErrCleanAborted) {
		return err
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.cleanGen != gen {
		return nil
	}
	return err
}

// buildMap maps the keys of the dirty section [from, to) and returns where the mapping
// stopped: to, or the first offset not mapped because the map filled.
func (c *Cleaner) buildMap(views []cleanSeg, from, to int64, opts CleanOptions) (int64, error) {
	c.m.reset()
	end, full := from, false
	for _, v := range views[:len(views)-1] {
		if v.next <= from {
			continue
		}
		if v.base >= to {
			break
		}
		err := c.forEachBatch(v.segView, func(b batch.Batch, _ bool) error {
			if b.LastOffset() < from {
				return nil
			}
			if b.LastOffset() >= to {
				return errStop
			}
			if !b.Control() && !b.Transactional() {
				recs, err := batch.Records(b, opts.MaxDecompressed)
				if err != nil {
					return fmt.Errorf("map keys at %d: %w", b.BaseOffset(), err)
				}
				for _, r := range recs {
					if r.Key == nil || r.Offset < from {
						continue
					}
					if c.m.full() && c.m.get(r.Key) < 0 {
						end, full = r.Offset, true
						return errStop
					}
					c.m.put(r.Key, r.Offset)
				}
			}
			end = b.LastOffset() + 1
			return nil
		})
		if err != nil {
			return end, err
		}
		if full || end < v.next {
			break
		}
	}
	if full && end == from {
		return end, fmt.Errorf("the dedupe buffer holds no key of the dirty section at %d", from)
	}
	return end, nil
}

var errStop = errors.New("stop")

// forEachBatch streams the batches of v through the cleaner's read buffer and its
// throttle; last says the batch is the segment's last. fn returning errStop ends the walk
// without an error. An abort (checked before each batch and during a throttle sleep)
// ends it with ErrCleanAborted.
func (c *Cleaner) forEachBatch(v segView, fn func(b batch.Batch, last bool) error) error {
	c.rd.Reset(io.NewSectionReader(v.seg.log, 0, v.size))
	for pos := int64(0); pos < v.size; {
		if c.abort.aborted() {
			return ErrCleanAborted
		}
		b, reason := readBatch(c.rd, &c.buf, v.size-pos)
		if reason != "" {
			return fmt.Errorf("segment %d: %w at position %d: %s", v.base, batch.ErrCorrupt, pos, reason)
		}
		pos += int64(len(b))
		if !c.throttle.wait(len(b), c.abort) {
			return ErrCleanAborted
		}
		if err := fn(b, pos == v.size); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return fmt.Errorf("segment %d: %w", v.base, err)
		}
	}
	return nil
}

// groupBySize splits consecutive segments into groups that fit one segment: total size
// within segment.bytes, index entries within segment.index.bytes, offsets within
// MaxInt32 of the group's base (Kafka's groupSegmentsBySize).
func groupBySize(segs []cleanSeg, cfg Config) [][]cleanSeg {
	var groups [][]cleanSeg
	maxIdx := int(cfg.SegmentIndexBytes) / indexEntrySize
	maxTimes := int(cfg.SegmentIndexBytes)/timeEntrySize - 1
	for len(segs) > 0 {
		n, size := 1, segs[0].size
		idx, times := segs[0].nIndex, segs[0].nTimes
		for n < len(segs) {
			s := segs[n]
			if size+s.size > cfg.SegmentBytes || s.next-1-segs[0].base > math.MaxInt32 ||
				idx+s.nIndex+n+1 > maxIdx || times+s.nTimes+n+1 > maxTimes {
				break
			}
			size += s.size
			idx += s.nIndex
			times += s.nTimes
			n++
		}
		groups = append(groups, segs[:n])
		segs = segs[n:]
	}
	return groups
}
