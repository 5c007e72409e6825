// Segment files (<base>.log): a partition's batches, as clients sent them with offsets
// patched, back to back. The name is the segment's base offset zero-padded to 20 digits
// (00000000000000000000.log), beside its .index and .timeindex.
//
// Layout: v2 record batches (internal/batch's header layout), nothing else: no file
// header, no padding. Batch base offsets increase (gaps are allowed, as after compaction);
// every batch's offsets lie in [base, base+MaxInt32] so the indexes can hold them as
// uint32, and the file stays below 2 GiB so positions fit in uint32.
//
// Recovery: a segment that may hold unsynced data (at or after the recovery point after
// an unclean stop) is scanned from its start: each batch's length must fit in the file,
// its magic be 2, its CRC match, and its offsets and leader epoch follow the previous
// batch (recovery_checks.go). The file is truncated at the first batch that fails (a torn
// write, garbage after the last batch, a flipped bit), its indexes are rebuilt from the
// scan, and any later segment is dropped (recovery.go).
package log

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	deletedSuffix   = ".deleted"

	// maxSegmentSize keeps positions representable in an index entry.
	maxSegmentSize = math.MaxInt32

	// headerPrefix is how much of a batch header locating batches needs: base offset,
	// length, epoch, magic, crc, attributes and lastOffsetDelta.
	headerPrefix = 27
)

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(s, 10, 64)
	return base, err == nil && base >= 0
}

// segment is one .log file and its two indexes. The fields after the files are published
// state, guarded by Log.mu (written under Log.mu.Lock by the writer, which also holds
// Log.writeMu, or by a reader rebuilding lying index files under rebuildMu; read under
// Log.mu.RLock). The writer-only fields are guarded by writeMu.
type segment struct {
	base           int64
	log, idx, tidx vfs.File

	// rebuildMu serialises changes to an inactive segment's index files: a reader's
	// rebuild (indexlookup.go) and truncation loading them back. Taken before Log.mu.
	rebuildMu sync.Mutex

	// published (Log.mu)
	size int64 // bytes of whole batches; readers never look past it
	next int64 // offset after the last batch (base if empty)
	// index and times hold the entries while the segment is active, nil once it is not
	// (index.go); nIndex and nTimes count the entries in the files either way.
	index          []indexEntry
	times          []timeEntry
	nIndex, nTimes int
	indexGen       uint64 // bumped by each rebuild of the index files by a reader
	maxTs          int64  // largest batch maxTimestamp, -1 if none
	maxTsBase      int64  // base offset of the batch holding maxTs

	// writer only (Log.writeMu)
	bytesSinceIndex int64
	created         time.Time // when this process created or opened the segment
	firstTs         int64     // first batch's maxTimestamp, -1 if empty or unknown
	dirty           bool      // unsynced writes to any of the three files
	scratch         []byte    // index entry encoding
}

func (s *segment) path(dir, suffix string) string { return path.Join(dir, segmentName(s.base, suffix)) }

// openSegmentFiles opens (creating if asked) the three files of the segment at base.
func openSegmentFiles(fsys vfs.FS, dir string, base int64, create bool) (*segment, error) {
	s := &segment{base: base, next: base, maxTs: -1, maxTsBase: -1, firstTs: -1}
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	var err error
	if s.log, err = fsys.OpenFile(s.path(dir, logSuffix), flag, 0o644); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	// Index files are recreated when missing: they are derived data.
	if s.idx, err = fsys.OpenFile(s.path(dir, indexSuffix), flag|os.O_CREATE, 0o644); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("open offset index %d: %w", base, err)
	}
	if s.tidx, err = fsys.OpenFile(s.path(dir, timeIndexSuffix), flag|os.O_CREATE, 0o644); err != nil {
		s.log.Close()
		s.idx.Close()
		return nil, fmt.Errorf("open time index %d: %w", base, err)
	}
	return s, nil
}

func (s *segment) close() error {
	return errors.Join(s.log.Close(), s.idx.Close(), s.tidx.Close())
}

func (s *segment) sync() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", s.base, err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("sync offset index %d: %w", s.base, err)
	}
	if err := s.tidx.Sync(); err != nil {
		return fmt.Errorf("sync time index %d: %w", s.base, err)
	}
	return nil
}

// indexState is what an append or a scan changes besides the file: computed first,
// published under Log.mu afterwards. index and times hold all nIndex and nTimes entries,
// except in the state of an inactive segment, which has none in memory.
type indexState struct {
	size, next      int64
	index           []indexEntry
	times           []timeEntry
	nIndex, nTimes  int
	maxTs           int64
	maxTsBase       int64
	bytesSinceIndex int64
}

func (s *segment) state() indexState {
	return indexState{s.size, s.next, s.index, s.times, s.nIndex, s.nTimes, s.maxTs, s.maxTsBase, s.bytesSinceIndex}
}

func (s *segment) publish(st indexState) {
	s.size, s.next, s.index, s.times = st.size, st.next, st.index, st.times
	s.nIndex, s.nTimes = st.nIndex, st.nTimes
	s.maxTs, s.maxTsBase, s.bytesSinceIndex = st.maxTs, st.maxTsBase, st.bytesSinceIndex
}

// publishInactive publishes st for a segment that is not active: its entries stay in the
// files only.
func (s *segment) publishInactive(st indexState) {
	st.index, st.times = nil, nil
	s.publish(st)
}

// entriesInMemory reports whether st holds its entries (the active segment's state).
func (st *indexState) entriesInMemory() bool {
	return len(st.index) == st.nIndex && len(st.times) == st.nTimes
}

// observe accounts for one batch of length n at pos, as an append or a scan sees it:
// it tracks the largest timestamp and adds index entries every intervalBytes. It returns
// whether an offset index entry and a time index entry were added.
func (st *indexState) observe(base, segBase, lastOffset, maxTs int64, pos, n int64, intervalBytes int32) (addIdx, addTime bool) {
	if maxTs > st.maxTs {
		st.maxTs, st.maxTsBase = maxTs, base
	}
	if st.bytesSinceIndex > int64(intervalBytes) {
		st.index = append(st.index, indexEntry{rel: uint32(base - segBase), pos: uint32(pos)})
		st.nIndex++
		addIdx = true
		addTime = st.maybeTimeEntry(segBase)
		st.bytesSinceIndex = 0
	}
	st.bytesSinceIndex += n
	st.size = pos + n
	st.next = lastOffset + 1
	return addIdx, addTime
}

// maybeTimeEntry appends a time index entry for the largest timestamp so far if it is
// larger than the last entry's. st must hold its entries.
func (st *indexState) maybeTimeEntry(segBase int64) bool {
	if st.maxTs < 0 || (len(st.times) > 0 && st.times[len(st.times)-1].ts >= st.maxTs) {
		return false
	}
	st.times = append(st.times, timeEntry{ts: st.maxTs, rel: uint32(st.maxTsBase - segBase)})
	st.nTimes++
	return true
}

// writeIndexes rewrites both index files from the in-memory entries (after a rebuild).
func (s *segment) writeIndexes(index []indexEntry, times []timeEntry) error {
	s.dirty = true
	return s.writeIndexFiles(index, times)
}

// writeIndexFiles is writeIndexes for a caller that does not hold Log.writeMu (and so
// cannot mark the segment dirty).
func (s *segment) writeIndexFiles(index []indexEntry, times []timeEntry) error {
	buf := make([]byte, 0, max(len(index)*indexEntrySize, len(times)*timeEntrySize))
	for _, e := range index {
		buf = appendIndexEntry(buf, e)
	}
	if err := rewrite(s.idx, buf); err != nil {
		return fmt.Errorf("rewrite offset index %d: %w", s.base, err)
	}
	buf = buf[:0]
	for _, e := range times {
		buf = appendTimeEntry(buf, e)
	}
	if err := rewrite(s.tidx, buf); err != nil {
		return fmt.Errorf("rewrite time index %d: %w", s.base, err)
	}
	return nil
}

// rewrite replaces f's contents with data. It writes before it truncates, so a reader of
// an inactive segment's index racing a rebuild finds old or new entries rather than a
// short file where it can.
func rewrite(f vfs.File, data []byte) error {
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(data)))
}

func fileSize(f vfs.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// errTorn marks where a scan stopped: the bytes from there on are not a valid batch.
var errTorn = errors.New("torn or corrupt batch")

// scanResult is what scanning a segment's file found.
type scanResult struct {
	st        indexState
	fileSize  int64
	truncated bool   // the file holds bytes after the last valid batch
	reason    string // why the scan stopped early
}

// scan reads the segment's batches from the start, validating length, magic and CRC, and
// offsets and leader epochs with chk (recovery_checks.go), and rebuilds the index state.
// It stops at the first invalid batch.
func (s *segment) scan(intervalBytes int32, chk *batchCheck) (scanResult, error) {
	fsize, err := fileSize(s.log)
	if err != nil {
		return scanResult{}, fmt.Errorf("stat segment %d: %w", s.base, err)
	}
	st := indexState{next: s.base, maxTs: -1, maxTsBase: -1}
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, fsize), 64<<10)
	var buf []byte
	var pos int64
	for pos < fsize {
		b, reason := readBatch(r, &buf, fsize-pos)
		if reason == "" {
			reason = chk.check(b, pos)
		}
		if reason != "" {
			return scanResult{st: st, fileSize: fsize, truncated: true, reason: reason}, nil
		}
		chk.advance(b)
		st.observe(b.BaseOffset(), s.base, b.LastOffset(), b.MaxTimestamp(), pos, int64(len(b)), intervalBytes)
		pos += int64(len(b))
	}
	return scanResult{st: st, fileSize: fsize}, nil
}

// readBatch reads one whole batch of at most remaining bytes into *buf and checks its
// framing and CRC; a non-empty reason says why the bytes are not a valid batch.
func readBatch(r io.Reader, buf *[]byte, remaining int64) (batch.Batch, string) {
	if remaining < batch.HeaderSize {
		return nil, fmt.Sprintf("%d trailing bytes, shorter than a batch header", remaining)
	}
	if cap(*buf) < batch.HeaderSize {
		*buf = make([]byte, 0, 64<<10)
	}
	b := (*buf)[:12]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Sprintf("reading header: %v", err)
	}
	size := int64(int32(binary.BigEndian.Uint32(b[8:]))) + 12
	if size < batch.HeaderSize || size > remaining {
		return nil, fmt.Sprintf("batch length %d does not fit the %d bytes left", size, remaining)
	}
	if int64(cap(*buf)) < size {
		nb := make([]byte, size)
		copy(nb, b)
		*buf = nb
	}
	b = (*buf)[:size]
	if _, err := io.ReadFull(r, b[12:]); err != nil {
		return nil, fmt.Sprintf("reading batch: %v", err)
	}
	if err := batch.CheckHeader(b); err != nil {
		return nil, err.Error()
	}
	return batch.Batch(b), ""
}

// checkFollows checks a batch's offsets against the segment base and the previous batch.
func checkFollows(b batch.Batch, segBase, next int64) string {
	switch {
	case b.BaseOffset() < next:
		return fmt.Sprintf("base offset %d below the previous batch's end %d", b.BaseOffset(), next)
	case b.LastOffsetDelta() < 0:
		return fmt.Sprintf("negative last offset delta %d", b.LastOffsetDelta())
	case b.LastOffset()-segBase > math.MaxInt32:
		return fmt.Sprintf("offset %d too far from segment base %d", b.LastOffset(), segBase)
	}
	return ""
}

// readHeader reads the start of the batch at pos (headerPrefix bytes, or all HeaderSize
// bytes if full) into buf, which must be large enough.
func readHeader(f vfs.File, pos int64, buf []byte) (batch.Batch, error) {
	if _, err := f.ReadAt(buf, pos); err != nil {
		return nil, err
	}
	return batch.Batch(buf), nil
}

// rollBase is the time segment.ms counts from, as in Kafka: the first batch's
// maxTimestamp, or the segment's creation if it has no batch.
func (s *segment) rollBase() time.Time {
	if s.firstTs >= 0 {
		return time.UnixMilli(s.firstTs)
	}
	return s.created
}

// batchAt returns the base offset, last offset and size of the batch at pos.
func batchAt(f vfs.File, pos int64, buf *[batch.HeaderSize]byte) (base, last, size int64, err error) {
	h, err := readHeader(f, pos, buf[:headerPrefix])
	if err != nil {
		return 0, 0, 0, err
	}
	base = h.BaseOffset()
	return base, base + int64(h.LastOffsetDelta()), int64(h.BatchLength()) + 12, nil
}
