// Package log is one partition's segmented, append-only log on disk: segment files,
// sparse offset and time indexes, roll, retention, log start offset, leader-epoch
// checkpoint and recovery after an unclean stop. It knows nothing of sockets,
// Kafka requests or replication.
//
// A partition directory holds:
//
//	00000000000000000000.log        segments (segment.go), named by base offset
//	00000000000000000000.index      their offset indexes (index.go)
//	00000000000000000000.timeindex  their time indexes (timeindex.go)
//	*.deleted                       segments deleted by retention, removed after file.delete.delay.ms
//	*.cleaned, *.swap               a compaction's new segment before and while it is swapped in (compact_swap.go)
//	log-start-offset.checkpoint     checkpoint files (checkpoint.go)
//	recovery-point.checkpoint
//	leader-epoch-checkpoint
//	cleaner-offset-checkpoint       the compaction's first dirty offset and cleaning times (compact_checkpoint.go)
//	clean-shutdown                  present only while the log is closed cleanly
//
// Concurrency: writeMu serialises everything that changes the log (Append, roll,
// truncation, retention, flush, checkpoints) and may be held across I/O; readers never
// take it. mu guards the state readers look at (the segment list and each segment's
// published size, next offset and index entries) and is held only to copy or publish it,
// never across I/O. A batch is written to the file before the segment's size and the log
// end offset are published, so a reader sees only whole batches. Flushes (sync.go) take
// the flush turn, one flusher at a time, and fsync outside writeMu; the first failed
// write or fsync poisons the log (poison.go). A segment's rebuildMu
// (indexlookup.go) lets a reader that found an inactive segment's index files lying
// rebuild them without writeMu.
package log

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// ErrOffsetOutOfRange is returned by Read for an offset below the log start offset
// or above the log end offset.
var ErrOffsetOutOfRange = errors.New("offset out of range")

var errClosed = errors.New("log is closed")

// Config is the per-log configuration (topic configs with broker defaults applied).
// Zero or negative retention values mean "unlimited" as in Kafka (-1).
type Config struct {
	SegmentBytes          int64         // segment.bytes
	SegmentMs             time.Duration // segment.ms: roll a segment older than this
	RetentionBytes        int64         // retention.bytes, -1 unlimited
	RetentionMs           time.Duration // retention.ms, negative = unlimited
	FlushIntervalMessages int64         // flush.messages: fsync after this many messages
	FlushInterval         time.Duration // flush.ms: fsync when this old (FlushIfDue)
	IndexIntervalBytes    int32         // index.interval.bytes
	SegmentIndexBytes     int32         // segment.index.bytes: max index file size, roll when full
	FileDeleteDelay       time.Duration // file.delete.delay.ms: deleted segments are renamed *.deleted then removed after this
}

// Defaults used for zero values of the size settings (Kafka's defaults). Zero
// SegmentMs, FlushIntervalMessages and FlushInterval mean "never".
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultIndexIntervalBytes = 4096
	DefaultSegmentIndexBytes  = 10 << 20
)

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, maxSegmentSize)
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = DefaultSegmentIndexBytes
	}
	// An index must hold at least one entry, or every append would roll.
	c.SegmentIndexBytes = max(c.SegmentIndexBytes, 2*timeEntrySize)
	return c
}

// Log is one partition's log. All methods are safe for concurrent use; Append is
// serialised by the caller (the partition) but may run concurrently with Read.
type Log struct {
	fsys    vfs.FS
	dir     string
	now     func() time.Time
	logger  *slog.Logger
	report  RecoveryReport // what Open did (recovery.go); read-only after Open
	timings Timings        // read-only after Open

	writeMu sync.Mutex
	// guarded by writeMu
	cfg              Config
	closed           bool
	unflushedRecords int64
	firstUnflushed   time.Time // zero when everything is synced
	rolledUnsynced   bool      // a segment was rolled or created since the last flush
	dirDirty         bool      // files were created or renamed since the last SyncDir
	recoveryPoint    int64     // persisted: segments below the one holding it are synced
	pendingDeletes   []pendingDelete
	hdr              [batch.HeaderSize]byte
	appendSeq        int64 // appends so far: the tickets of sync.go
	cleanGen         int64 // bumped by truncation: a clean that started before it stops (compact.go)

	// The flush turn (sync.go): flushBusy is set while one flusher runs, the others wait
	// on flushCond. Taken before writeMu. syncedSeq is the last append (appendSeq) known
	// to be on stable storage; only the flusher holding the turn moves it.
	flushMu   sync.Mutex
	flushCond *sync.Cond // created by the first flusher that waits
	flushBusy bool
	syncedSeq atomic.Int64

	// failed is the error that poisoned the log, nil while it is healthy; dirState is
	// its log directory's shared state, nil for a log on its own (poison.go).
	failed   atomic.Pointer[error]
	dirState *DirState

	// cleanMu serialises compactions of this log (compact.go); taken before writeMu.
	cleanMu    sync.Mutex
	cleanAbort atomic.Bool // set by Close and Delete: a clean stops at the next batch

	mu sync.RWMutex
	// guarded by mu
	segs           []*segment
	logStartOffset int64
	epochs         []epochEntry

	logEndOffset atomic.Int64
	// indexInterval is cfg.IndexIntervalBytes for readers rebuilding index files.
	indexInterval atomic.Int32
}

func (l *Log) Dir() string { return l.dir }

// FS is the filesystem the log lives on, for files that live beside it.
func (l *Log) FS() vfs.FS { return l.fsys }

func (l *Log) SetConfig(cfg Config) {
	l.writeMu.Lock()
	l.cfg = cfg.withDefaults()
	l.indexInterval.Store(l.cfg.IndexIntervalBytes)
	l.writeMu.Unlock()
}

func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStartOffset
}

func (l *Log) LogEndOffset() int64 { return l.logEndOffset.Load() }

// Size is the bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// NumSegments returns how many segments the log has (tests and metrics).
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segs)
}

// ActiveSegmentBase returns the base offset of the segment appends go to: it changes
// when the log rolls.
func (l *Log) ActiveSegmentBase() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[len(l.segs)-1].base
}

// active returns the last segment; callers hold writeMu (or mu).
func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Append appends one validated batch whose BaseOffset equals LogEndOffset(); rolls first if
// the active segment is full (bytes, index) or older than SegmentMs; updates indexes; fsyncs
// per FlushIntervalMessages (outside writeMu, as a group commit).
func (l *Log) Append(b batch.Batch) error {
	ticket, err := l.AppendDeferred(b)
	if err != nil || ticket == 0 {
		return err
	}
	return l.SyncThrough(ticket)
}

// appendLocked writes b and reports whether the flush policy (FlushIntervalMessages) now
// asks for an fsync; the caller has it done (sync.go). A failed write or roll poisons
// the log.
func (l *Log) appendLocked(b batch.Batch) (flushDue bool, err error) {
	if err := l.usableLocked(); err != nil {
		return false, err
	}
	if err := checkAppend(b, l.logEndOffset.Load()); err != nil {
		return false, err
	}
	if l.timings.Append != nil {
		defer l.timeAppend(time.Now())
	}
	if l.shouldRoll(l.active(), b) {
		if err := l.rollLocked(); err != nil {
			return false, l.fail(err)
		}
	}
	s := l.active()
	if err := l.appendToSegment(s, b); err != nil {
		return false, l.fail(err)
	}
	l.logEndOffset.Store(b.LastOffset() + 1)
	l.appendSeq++
	l.unflushedRecords += int64(b.RecordCount())
	if l.firstUnflushed.IsZero() {
		l.firstUnflushed = l.now()
	}
	n := l.cfg.FlushIntervalMessages
	return n > 0 && l.unflushedRecords >= n, nil
}

// timeAppend reports the time since start to Timings.Append.
func (l *Log) timeAppend(start time.Time) { l.timings.Append(time.Since(start)) }

// checkAppend checks that b is one whole batch that can go at offset next.
func checkAppend(b batch.Batch, next int64) error { return checkAppendAt(b, next, false) }

// checkAppendAt is checkAppend; with gaps, b may also start past next (a follower's
// append of batches the leader's cleaner left gaps between).
func checkAppendAt(b batch.Batch, next int64, gaps bool) error {
	if len(b) < batch.HeaderSize || b.Size() != len(b) {
		return fmt.Errorf("append: %w: %d bytes are not exactly one batch", batch.ErrCorrupt, len(b))
	}
	if base := b.BaseOffset(); base != next && (!gaps || base < next) {
		return fmt.Errorf("append: batch base offset %d is not the log end offset %d", base, next)
	}
	if b.LastOffsetDelta() < 0 {
		return fmt.Errorf("append: %w: negative last offset delta", batch.ErrCorrupt)
	}
	if len(b) > maxSegmentSize {
		return fmt.Errorf("append: %w: %d bytes", batch.ErrTooLarge, len(b))
	}
	return nil
}

func (l *Log) shouldRoll(s *segment, b batch.Batch) bool {
	return l.shouldRollAt(s, s.size, s.nIndex, s.nTimes, s.rollBase(), b)
}

// shouldRollAt is shouldRoll for segment s as it would be with size bytes and the given
// entry counts and roll base (AppendBatches asks it about batches it has not written yet).
func (l *Log) shouldRollAt(s *segment, size int64, nIndex, nTimes int, rollBase time.Time, b batch.Batch) bool {
	if size == 0 {
		return false
	}
	cfg := &l.cfg
	maxEntries := int(cfg.SegmentIndexBytes)
	return size+int64(len(b)) > cfg.SegmentBytes ||
		nIndex >= maxEntries/indexEntrySize ||
		nTimes >= maxEntries/timeEntrySize-1 || // room for the final entry at roll
		b.LastOffset()-s.base > math.MaxInt32 ||
		(cfg.SegmentMs > 0 && l.now().Sub(rollBase) >= cfg.SegmentMs)
}

// appendToSegment writes bs at the end of s (one write) and their index entries, then publishes the
// new size. On an error nothing is published and the files are cut back to where they
// were (best effort: the caller poisons the log, and recovery sorts out the rest).
func (l *Log) appendToSegment(s *segment, bs ...batch.Batch) error {
	pos0 := s.size
	if pos0 == 0 {
		s.firstTs = bs[0].MaxTimestamp()
	}
	st := s.state()
	nIdx, nTimes := st.nIndex, st.nTimes
	pos := pos0
	for _, b := range bs {
		st.observe(b.BaseOffset(), s.base, b.LastOffset(), b.MaxTimestamp(), pos, int64(len(b)), l.cfg.IndexIntervalBytes)
		pos += int64(len(b))
	}
	// The entries the batches added, offset index then time index, in one reused buffer.
	entries := s.scratch[:0]
	for _, e := range st.index[len(st.index)-(st.nIndex-nIdx):] {
		entries = appendIndexEntry(entries, e)
	}
	idxLen := len(entries)
	for _, e := range st.times[len(st.times)-(st.nTimes-nTimes):] {
		entries = appendTimeEntry(entries, e)
	}
	s.scratch = entries
	s.dirty = true
	undo := func(err error) error {
		// Best effort: a failure here leaves bytes past the published size, which the
		// next append overwrites and recovery truncates.
		s.log.Truncate(pos0)
		s.idx.Truncate(int64(nIdx) * indexEntrySize)
		s.tidx.Truncate(int64(nTimes) * timeEntrySize)
		return err
	}
	if err := writevAt(s.log, bs, pos0); err != nil {
		return undo(fmt.Errorf("append to segment %d at %d: %w", s.base, pos0, err))
	}
	if idxLen > 0 {
		if _, err := s.idx.WriteAt(entries[:idxLen], int64(nIdx)*indexEntrySize); err != nil {
			return undo(fmt.Errorf("append to offset index %d: %w", s.base, err))
		}
	}
	if len(entries) > idxLen {
		if _, err := s.tidx.WriteAt(entries[idxLen:], int64(nTimes)*timeEntrySize); err != nil {
			return undo(fmt.Errorf("append to time index %d: %w", s.base, err))
		}
	}
	l.mu.Lock()
	s.publish(st)
	l.mu.Unlock()
	return nil
}

// finishSegment writes the segment's final time index entry (its largest timestamp),
// as Kafka does when a segment stops being active.
func (l *Log) finishSegment(s *segment) error {
	st := s.state()
	n := st.nTimes
	if !st.maybeTimeEntry(s.base) {
		return nil
	}
	if _, err := s.tidx.WriteAt(appendTimeEntry(nil, st.times[n]), int64(n)*timeEntrySize); err != nil {
		return fmt.Errorf("final time index entry of segment %d: %w", s.base, err)
	}
	s.dirty = true
	l.mu.Lock()
	s.publish(st)
	l.mu.Unlock()
	return nil
}

// rollLocked starts a new active segment at the log end offset. The old one's index
// entries leave memory: lookups in it read its files from now on.
func (l *Log) rollLocked() error {
	old := l.active()
	if err := l.finishSegment(old); err != nil {
		return err
	}
	s, err := openSegmentFiles(l.fsys, l.dir, l.logEndOffset.Load(), true)
	if err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	s.created = l.now()
	l.dirDirty = true
	l.rolledUnsynced = true
	l.mu.Lock()
	l.segs = append(l.segs, s)
	old.publishInactive(old.state())
	l.mu.Unlock()
	return nil
}

// Roll starts a new segment now if the active one is not empty (tests, and an operator's
// forced roll).
func (l *Log) Roll() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if l.active().size == 0 {
		return nil
	}
	if err := l.rollLocked(); err != nil {
		return l.fail(err)
	}
	return nil
}

// Close flushes, writes the clean-shutdown marker and closes every file. A clean running
// now is stopped (at its next batch) and waited for, as in Delete: otherwise it could go
// on creating and removing cleaner files in a directory that the log's next Open is
// already reading. A flush running now is waited for: Close's own flush must not claim
// what that one is still fsyncing. A poisoned log is closed without writing anything, so
// its next Open scans it.
func (l *Log) Close() error {
	l.cleanAbort.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.awaitFlush(math.MaxInt64)
	defer l.releaseFlush()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.closeLocked(true)
}

// closeLocked closes the log; writeMu and the flush turn are held.
func (l *Log) closeLocked(marker bool) error {
	if l.closed {
		return nil
	}
	l.closed = true
	if l.Err() != nil {
		var errs []error
		for _, s := range l.segs {
			errs = append(errs, s.close())
		}
		for _, p := range l.pendingDeletes {
			errs = append(errs, p.seg.close())
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("close poisoned log %s: %w", l.dir, err)
		}
		return nil
	}
	// A healthy log has no bytes past what it published: a failed append poisons it.
	errs := []error{l.finishSegment(l.active()), l.flushHeldLocked()}
	if marker && errors.Join(errs...) == nil {
		errs = append(errs, l.writeShutdownMarkerLocked())
	}
	errs = append(errs, l.removeDueLocked(true))
	for _, s := range l.segs {
		errs = append(errs, s.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close log %s: %w", l.dir, err)
	}
	return nil
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	// A clean running now would create files in the directory being removed: stop it
	// (it checks the flag between batches) and wait for it.
	l.cleanAbort.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if !l.closed {
		l.closed = true
		for _, s := range l.segs {
			s.close()
		}
		l.removeDueLocked(true)
	}
	if err := l.fsys.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("delete log %s: %w", l.dir, err)
	}
	return nil
}

// createEmptySegment replaces the segment list with one empty segment at base (a new
// log, or a truncation below everything).
func (l *Log) createEmptySegment(base int64) (*segment, error) {
	s, err := openSegmentFiles(l.fsys, l.dir, base, true)
	if err != nil {
		return nil, err
	}
	s.created = l.now()
	s.dirty = true
	l.dirDirty = true
	l.rolledUnsynced = true
	return s, nil
}
