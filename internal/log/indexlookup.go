// Lookups in the index files of inactive segments, and rebuilding files that lie.
//
// An inactive segment holds no index entries in memory (index.go): a lookup copies the
// segment's entry counts under Log.mu (segIndex), then, without any lock, binary-searches
// the file with small preads into the reader's header buffer, so it allocates nothing.
// What it finds is checked like any entry: against the segment's bounds here, and against
// the batch at its position by the caller. An entry that fails either check means the file
// lies (a corrupt file that passed the checks at open, or a race with truncation or a
// rebuild): the lookup starts from the segment's first batch, which is always right, and
// the reader that found the lie rebuilds both index files from the segment's batch
// headers (rebuildIndexes), so later lookups are fast again.
package log

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// indexSearchBytes is how many bytes of candidate entries a file lookup reads in one go
// once the binary search has narrowed them down that far.
const indexSearchBytes = 4 << 10

// errIndexLied reports index file contents that cannot be right (short, out of order, out
// of the segment): the lookup falls back to the segment's start and the files are rebuilt.
var errIndexLied = errors.New("index file does not match its segment")

// searchFile binary-searches the first n entries of size sz in f for the last entry whose
// key is <= limit, as sort.Search would over entries in memory. It reads single entries
// until the candidates fit in buf, then reads those in one go: about log2(n*sz/len(buf))+1
// preads, into buf (which it clobbers). It returns the entry's bytes (aliasing buf), or
// nil if no entry's key is <= limit. For contents that are not sorted it returns some
// entry whose key is <= limit, or none; the caller checks the entry against the segment.
// A key it reads above maxKey, which no entry of the segment can have, is errIndexLied:
// without that check an index whose entries are all too large would go unnoticed, and
// every lookup would scan from the segment's start.
func searchFile(f vfs.File, n, sz int, limit, maxKey int64, key func([]byte) int64, buf []byte) ([]byte, error) {
	lo, hi := 0, n // entries below lo have keys <= limit, entries from hi on do not
	for (hi-lo+1)*sz > len(buf) {
		mid := int(uint(lo+hi) >> 1)
		e := buf[:sz]
		if err := readEntries(f, e, int64(mid)*int64(sz)); err != nil {
			return nil, err
		}
		k := key(e)
		if k > maxKey {
			return nil, errIndexLied
		}
		if k <= limit {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	// Read [lo-1, hi): the candidates, and the entry below them, which is the answer if
	// no candidate's key is <= limit.
	start := max(lo-1, 0)
	chunk := buf[:(hi-start)*sz]
	if err := readEntries(f, chunk, int64(start)*int64(sz)); err != nil {
		return nil, err
	}
	k := lo
	for j := hi; k < j; {
		m := int(uint(k+j) >> 1)
		mk := key(chunk[(m-start)*sz:])
		if mk > maxKey {
			return nil, errIndexLied
		}
		if mk <= limit {
			k = m + 1
		} else {
			j = m
		}
	}
	if k == 0 {
		return nil, nil
	}
	e := chunk[(k-1-start)*sz : (k-start)*sz]
	if key(e) > limit {
		return nil, errIndexLied // the file changed between reads
	}
	return e, nil
}

// readEntries fills b from f at off; a file shorter than its published entry count lies.
func readEntries(f vfs.File, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errIndexLied
		}
		return err
	}
	return nil
}

// segIndex is a reader's copy of one segment's index state, taken under Log.mu: the
// entries themselves while the segment is active, else how many its files hold. Lookups
// through it run after Log.mu is released.
type segIndex struct {
	seg            *segment
	size, next     int64
	index          []indexEntry
	times          []timeEntry
	nIndex, nTimes int
	maxTs          int64
	gen            uint64 // the segment's indexGen: whether a rebuild happened since
}

// indexView copies s's index state; Log.mu is held.
func (s *segment) indexView() segIndex {
	return segIndex{seg: s, size: s.size, next: s.next, index: s.index, times: s.times,
		nIndex: s.nIndex, nTimes: s.nTimes, maxTs: s.maxTs, gen: s.indexGen}
}

func (x *segIndex) indexOnDisk() bool { return len(x.index) != x.nIndex }
func (x *segIndex) timesOnDisk() bool { return len(x.times) != x.nTimes }

// floor returns the last offset index entry whose relative offset is <= rel; false if
// there is none (start at the segment's first batch). An entry read from the file must
// lie inside the segment (errIndexLied otherwise); the caller checks the batch at its
// position.
func (x *segIndex) floor(rel int64, buf []byte) (indexEntry, bool, error) {
	if !x.indexOnDisk() {
		e, k := lookupIndex(x.index, rel)
		return e, k >= 0, nil
	}
	if x.nIndex == 0 || rel < 0 {
		return indexEntry{}, false, nil
	}
	b, err := searchFile(x.seg.idx, x.nIndex, indexEntrySize, min(rel, math.MaxUint32), x.next-x.seg.base-1, indexKey, buf[:indexSearchBytes])
	if err != nil || b == nil {
		return indexEntry{}, false, err
	}
	e := decodeIndexEntry(b)
	if e.pos == 0 || int64(e.pos) >= x.size || int64(e.rel) >= x.next-x.seg.base {
		return indexEntry{}, false, errIndexLied
	}
	return e, true, nil
}

// timeFloor is lookupTime over the entries in memory or, for an inactive segment, in its
// file. An entry read from the file must name an offset inside the segment (errIndexLied
// otherwise); the caller checks the batch it names.
func (x *segIndex) timeFloor(ts int64, buf []byte) (timeEntry, bool, error) {
	if !x.timesOnDisk() {
		e, ok := lookupTime(x.times, ts)
		return e, ok, nil
	}
	if x.nTimes == 0 || ts == math.MinInt64 {
		return timeEntry{}, false, nil
	}
	b, err := searchFile(x.seg.tidx, x.nTimes, timeEntrySize, ts-1, x.maxTs, timeKey, buf[:indexSearchBytes])
	if err != nil || b == nil {
		return timeEntry{}, false, err
	}
	e := decodeTimeEntry(b)
	if int64(e.rel) >= x.next-x.seg.base {
		return timeEntry{}, false, errIndexLied
	}
	return e, true, nil
}

// rebuildIndexes rewrites the index files of the inactive segment x describes from its
// batch headers, after a lookup through x found them lying. A reader calls it: it takes
// the segment's rebuildMu and Log.mu briefly, never writeMu. It does nothing if the
// segment has changed since x was taken (another reader rebuilt it, truncation made it
// active, retention or compaction removed it). Failures are left for the next lookup:
// the reader's answer does not depend on the rebuild.
func (l *Log) rebuildIndexes(x segIndex, hr *headerReader) {
	if !x.indexOnDisk() && !x.timesOnDisk() {
		return // the active segment's entries: only the writer may change them
	}
	s := x.seg
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	l.mu.RLock()
	i, found := slices.BinarySearchFunc(l.segs, s.base, func(o *segment, base int64) int { return cmp.Compare(o.base, base) })
	ok := found && l.segs[i] == s && i+1 < len(l.segs) && s.indexGen == x.gen
	size := s.size
	l.mu.RUnlock()
	if !ok {
		return
	}
	st, err := s.walkIndexes(size, l.indexInterval.Load(), hr)
	if err != nil {
		return // the segment itself is damaged: the reader reports that
	}
	st.maybeTimeEntry(s.base)
	if err := s.writeIndexFiles(st.index, st.times); err != nil {
		return
	}
	if s.idx.Sync() != nil || s.tidx.Sync() != nil {
		return
	}
	l.mu.Lock()
	s.nIndex, s.nTimes = st.nIndex, st.nTimes
	s.indexGen++
	l.mu.Unlock()
}

// walkIndexes computes s's index state from the headers of its batches below size,
// without reading records: for inactive segments, whose batches were checked when they
// were written or when the log was opened.
func (s *segment) walkIndexes(size int64, intervalBytes int32, hr *headerReader) (indexState, error) {
	st := indexState{next: s.base, maxTs: -1, maxTsBase: -1}
	for pos := int64(0); pos < size; {
		h, err := hr.header(s.log, pos, size, batch.HeaderSize)
		if err != nil {
			return indexState{}, fmt.Errorf("segment %d at %d: %w", s.base, pos, err)
		}
		n := int64(h.BatchLength()) + 12
		if n < batch.HeaderSize || pos+n > size {
			return indexState{}, fmt.Errorf("segment %d at %d: %w: batch of %d bytes", s.base, pos, batch.ErrCorrupt, n)
		}
		if reason := checkFollows(h, s.base, st.next); reason != "" {
			return indexState{}, fmt.Errorf("segment %d at %d: %w: %s", s.base, pos, batch.ErrCorrupt, reason)
		}
		st.observe(h.BaseOffset(), s.base, h.LastOffset(), h.MaxTimestamp(), pos, n, intervalBytes)
		pos += n
	}
	return st, nil
}

// loadEntries returns s's index state with its entries in memory: as published for the
// active segment; for an inactive one read from its files, or rebuilt from its batch
// headers (and rewritten) if the files fail the checks of Open. Truncation calls it, with
// writeMu and, for an inactive segment, s.rebuildMu held, before making s active.
func (l *Log) loadEntries(s *segment) (indexState, error) {
	st := s.state()
	if st.entriesInMemory() {
		return st, nil
	}
	index, times, err := s.readIndexFiles(st)
	if err == nil {
		st.index, st.times = index, times
		return st, nil
	}
	hr := newHeaderReader()
	defer hr.release()
	rebuilt, err := s.walkIndexes(st.size, l.cfg.IndexIntervalBytes, hr)
	if err != nil {
		return indexState{}, fmt.Errorf("rebuild indexes: %w", err)
	}
	rebuilt.maybeTimeEntry(s.base)
	if err := s.writeIndexes(rebuilt.index, rebuilt.times); err != nil {
		return indexState{}, err
	}
	return rebuilt, nil
}

// readIndexFiles reads and sanity-checks the entries st counts from s's index files.
func (s *segment) readIndexFiles(st indexState) ([]indexEntry, []timeEntry, error) {
	data := make([]byte, max(st.nIndex*indexEntrySize, st.nTimes*timeEntrySize))
	if err := readEntries(s.idx, data[:st.nIndex*indexEntrySize], 0); err != nil {
		return nil, nil, err
	}
	index, err := parseIndex(data[:st.nIndex*indexEntrySize], st.size, st.next-s.base)
	if err != nil {
		return nil, nil, err
	}
	if err := readEntries(s.tidx, data[:st.nTimes*timeEntrySize], 0); err != nil {
		return nil, nil, err
	}
	times, err := parseTimeIndex(data[:st.nTimes*timeEntrySize], st.next-s.base)
	if err != nil {
		return nil, nil, err
	}
	return index, times, nil
}
