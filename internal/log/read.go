// Reading: byte ranges of whole batches for Fetch, header walks for rebuilding producer
// state, and timestamp lookups for ListOffsets. Nothing here decodes records except the
// one or two batches a timestamp lookup lands in.
//
// A reader copies what it needs of the published state under Log.mu, then reads files
// without any lock: positions it reads lie below the published sizes, so the bytes are
// whole batches that no append will touch again. That includes the index lookup, which
// for an inactive segment reads its index file (indexlookup.go).
package log

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// headerWindow is how much of a segment one pread brings in while walking batch
// headers: many small batches cost one read per window instead of one per batch, and a
// large batch costs one small read.
const headerWindow = 8 << 10

// headerBufs holds headerWindow-sized scratch buffers. Like copyBufs it is a cache of
// interchangeable buffers, not state.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, headerWindow); return &b }}

// headerReader reads batch headers of one segment file through a window.
type headerReader struct {
	buf   *[]byte
	f     vfs.File
	start int64 // file position of the window's first byte
	n     int   // valid bytes in the window
	// large is set when the last batch seen was larger than half a window: the next
	// window would hold little more than its header, so only the header is read.
	large bool
}

func newHeaderReader() *headerReader {
	return &headerReader{buf: headerBufs.Get().(*[]byte)}
}

func (r *headerReader) release() { headerBufs.Put(r.buf) }

// scratch lends the window's buffer to other reads (index lookups), forgetting the window.
func (r *headerReader) scratch() []byte {
	r.f = nil
	return *r.buf
}

// header returns the need bytes at pos of f, reading no further than limit.
func (r *headerReader) header(f vfs.File, pos, limit int64, need int) (batch.Batch, error) {
	if f == r.f && pos >= r.start && pos+int64(need) <= r.start+int64(r.n) {
		off := pos - r.start
		h := batch.Batch((*r.buf)[off : off+int64(need)])
		r.large = h.BatchLength() > headerWindow/2
		return h, nil
	}
	want := min(int64(len(*r.buf)), limit-pos)
	if r.large {
		want = min(want, batch.HeaderSize)
	}
	if want < int64(need) {
		return nil, fmt.Errorf("%w: %d bytes left at %d, shorter than a batch header", batch.ErrCorrupt, limit-pos, pos)
	}
	m, err := f.ReadAt((*r.buf)[:want], pos)
	if m < need {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		r.f = nil
		return nil, err
	}
	r.f, r.start, r.n = f, pos, m
	h := batch.Batch((*r.buf)[:need])
	r.large = h.BatchLength() > headerWindow/2
	return h, nil
}

// batch returns the base offset, last offset and size of the batch at pos.
func (r *headerReader) batch(f vfs.File, pos, limit int64) (base, last, size int64, err error) {
	h, err := r.header(f, pos, limit, headerPrefix)
	if err != nil {
		return 0, 0, 0, err
	}
	base = h.BaseOffset()
	return base, base + int64(h.LastOffsetDelta()), int64(h.BatchLength()) + 12, nil
}

// maxDecodeBytes bounds what one timestamp lookup (ListOffsets) decompresses, across the
// batches it opens: the records are streamed (batch.FindTimestamp), so this bounds work,
// not memory. A batch past it is answered by its header (timestampLookupShallow).
const maxDecodeBytes = 64 << 20

// Range is a byte range of one segment file holding whole batches.
type Range struct {
	File vfs.File
	Pos  int64
	Len  int64
}

// segView is a reader's copy of one segment's published state.
type segView struct {
	seg  *segment
	base int64
	size int64
	next int64
}

// cursor is where a reader starts: a segment list and a position in its first segment.
type cursor struct {
	segs []segView
	pos  int64
	// indexedBase is the base offset the batch at pos must have, or -1 if pos is the
	// segment's start (no index entry was used).
	indexedBase int64
	// idx is the first segment's index state, for locate.
	idx segIndex
}

// locateLocked returns a cursor over the segments from the one holding offset on, at
// the first segment's start; mu is held. locate then moves it to the index entry at or
// before offset, once mu is released.
func (l *Log) locateLocked(offset int64) cursor {
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > offset {
		i--
	}
	views := make([]segView, 0, len(l.segs)-i)
	for _, s := range l.segs[i:] {
		views = append(views, segView{s, s.base, s.size, s.next})
	}
	return cursor{segs: views, indexedBase: -1, idx: l.segs[i].indexView()}
}

// locate moves c, fresh from locateLocked, to the offset index entry at or before offset
// in its first segment, reading the index file if the segment is inactive. An index file
// found lying is rebuilt and c left at the segment's start.
func (l *Log) locate(c *cursor, offset int64, hr *headerReader) error {
	c.pos, c.indexedBase = 0, -1
	e, ok, err := c.idx.floor(offset-c.idx.seg.base, hr.scratch())
	switch {
	case errors.Is(err, errIndexLied):
		l.rebuildIndexes(c.idx, hr)
	case err != nil:
		return fmt.Errorf("read offset index %d: %w", c.idx.seg.base, err)
	case ok:
		c.pos, c.indexedBase = int64(e.pos), c.idx.seg.base+int64(e.rel)
	}
	return nil
}

// seek moves c, fresh from locateLocked, to the batch containing offset, or the first
// batch after it, reading batch headers. It returns false if no such batch exists below
// the views' sizes.
func (l *Log) seek(c *cursor, offset int64, hr *headerReader) (bool, error) {
	if err := l.locate(c, offset, hr); err != nil {
		return false, err
	}
	for len(c.segs) > 0 {
		v := c.segs[0]
		for c.pos < v.size {
			base, last, n, err := hr.batch(v.seg.log, c.pos, v.size)
			if err != nil {
				return false, fmt.Errorf("read segment %d at %d: %w", v.base, c.pos, err)
			}
			if c.indexedBase >= 0 && base != c.indexedBase {
				// The index is not what it claims: fall back to the segment's start, and
				// rebuild an inactive segment's index files.
				l.rebuildIndexes(c.idx, hr)
				c.pos, c.indexedBase = 0, -1
				continue
			}
			c.indexedBase = -1
			if n < batch.HeaderSize || c.pos+n > v.size {
				return false, fmt.Errorf("read segment %d at %d: %w: batch of %d bytes", v.base, c.pos, batch.ErrCorrupt, n)
			}
			if last >= offset {
				return true, nil
			}
			c.pos += n
		}
		c.segs, c.pos, c.indexedBase = c.segs[1:], 0, -1
	}
	return false, nil
}

// Read returns the byte ranges that hold whole batches starting with the batch containing
// offset, stopping before any batch whose last offset is >= maxOffset (the high watermark)
// and at maxBytes, except that with minOne the first batch is returned whole even if it is
// larger than maxBytes. Offset == LogEndOffset returns no ranges.
func (l *Log) Read(offset, maxOffset int64, maxBytes int64, minOne bool) ([]Range, error) {
	if err := l.Err(); err != nil {
		return nil, err // storage failed: what the files hold is not known
	}
	l.mu.RLock()
	lso, leo := l.logStartOffset, l.logEndOffset.Load()
	if offset < lso || offset > leo {
		l.mu.RUnlock()
		return nil, fmt.Errorf("read offset %d (log %d..%d): %w", offset, lso, leo, ErrOffsetOutOfRange)
	}
	if offset == leo || offset >= maxOffset {
		l.mu.RUnlock()
		return nil, nil
	}
	c := l.locateLocked(offset)
	l.mu.RUnlock()

	hr := newHeaderReader()
	defer hr.release()
	found, err := l.seek(&c, offset, hr)
	if err != nil || !found {
		return nil, err
	}
	var out []Range
	var total int64
	for len(c.segs) > 0 {
		v := c.segs[0]
		start := c.pos
		// The common tail read: the rest of the segment is below maxOffset and fits, so
		// it is whole batches (the published size ends at one) and needs no walk.
		if rem := v.size - c.pos; v.next <= maxOffset && total+rem <= maxBytes {
			if rem > 0 {
				out = append(out, Range{File: v.seg.log, Pos: start, Len: rem})
				total += rem
			}
			c.segs, c.pos = c.segs[1:], 0
			continue
		}
		for c.pos < v.size {
			_, last, n, err := hr.batch(v.seg.log, c.pos, v.size)
			if err != nil {
				return nil, fmt.Errorf("read segment %d at %d: %w", v.base, c.pos, err)
			}
			if n < batch.HeaderSize || c.pos+n > v.size {
				return nil, fmt.Errorf("read segment %d at %d: %w: batch of %d bytes", v.base, c.pos, batch.ErrCorrupt, n)
			}
			if last >= maxOffset || (total+n > maxBytes && !(minOne && total == 0)) {
				if c.pos > start {
					out = append(out, Range{File: v.seg.log, Pos: start, Len: c.pos - start})
				}
				return out, nil
			}
			total += n
			c.pos += n
		}
		if c.pos > start {
			out = append(out, Range{File: v.seg.log, Pos: start, Len: c.pos - start})
		}
		c.segs, c.pos = c.segs[1:], 0
	}
	return out, nil
}

// copyBufs holds scratch buffers for WriteRanges. It is a cache of interchangeable
// buffers, not state: nothing observable depends on which buffer a call gets.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// WriteRanges copies ranges to w (pread into a pooled buffer).
func WriteRanges(w io.Writer, rs []Range) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var written int64
	for _, r := range rs {
		for pos, end := r.Pos, r.Pos+r.Len; pos < end; {
			n := int(min(int64(len(buf)), end-pos))
			m, err := r.File.ReadAt(buf[:n], pos)
			if m < n && err == nil {
				err = io.ErrUnexpectedEOF
			}
			if m < n {
				return written, fmt.Errorf("read %s at %d: %w", r.File.Name(), pos, err)
			}
			k, err := w.Write(buf[:n])
			written += int64(k)
			if err != nil {
				return written, err
			}
			pos += int64(n)
		}
	}
	return written, nil
}

// Batches calls fn for the header of each batch from offset on (the batch bytes may be just
// the header: use only header getters), until fn returns false. Used to rebuild producer state.
// An offset below the log start offset starts at the log start offset. b is valid only
// during fn (it aliases a reused buffer).
func (l *Log) Batches(from int64, fn func(b batch.Batch) bool) error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	from = max(from, l.logStartOffset)
	if from >= l.logEndOffset.Load() {
		l.mu.RUnlock()
		return nil
	}
	c := l.locateLocked(from)
	l.mu.RUnlock()
	hr := newHeaderReader()
	defer hr.release()
	found, err := l.seek(&c, from, hr)
	if err != nil || !found {
		return err
	}
	for len(c.segs) > 0 {
		v := c.segs[0]
		for c.pos < v.size {
			h, err := hr.header(v.seg.log, c.pos, v.size, batch.HeaderSize)
			if err != nil {
				return fmt.Errorf("read segment %d at %d: %w", v.base, c.pos, err)
			}
			n := int64(h.BatchLength()) + 12
			if n < batch.HeaderSize || c.pos+n > v.size {
				return fmt.Errorf("read segment %d at %d: %w: batch of %d bytes", v.base, c.pos, batch.ErrCorrupt, n)
			}
			if !fn(h) {
				return nil
			}
			c.pos += n
		}
		c.segs, c.pos = c.segs[1:], 0
	}
	return nil
}

// OffsetForTimestamp returns the first offset whose record timestamp is >= ts (scanning
// inside the batch found through the time index), and that record's timestamp; found is
// false if no record has such a timestamp.
//
// As in Kafka, "first" is in log order: the first batch whose maxTimestamp is >= ts, and
// the first record in it with a timestamp >= ts. Records below the log start offset are
// skipped.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	if err := l.Err(); err != nil {
		return 0, 0, false, err
	}
	l.mu.RLock()
	lso := l.logStartOffset
	var c cursor
	var times segIndex // the time index of the first segment with a timestamp >= ts
	from := int64(-1)
	for _, s := range l.segs {
		if s.maxTs < ts {
			continue
		}
		from = max(s.base, lso)
		times = s.indexView()
		c = l.locateLocked(from)
		break
	}
	l.mu.RUnlock()
	hr := newHeaderReader()
	defer hr.release()
	budget := maxDecodeBytes
	// verify is the time index entry the scan starts from, checked when reached.
	var verify struct {
		base, ts int64
		ok       bool
	}
	if from >= 0 {
		e, ok, err := times.timeFloor(ts, hr.scratch())
		switch {
		case errors.Is(err, errIndexLied):
			l.rebuildIndexes(times, hr)
		case err != nil:
			return 0, 0, false, fmt.Errorf("read time index %d: %w", times.seg.base, err)
		case ok && times.seg == c.idx.seg && times.seg.base+int64(e.rel) > from:
			from = times.seg.base + int64(e.rel)
			verify.base, verify.ts, verify.ok = from, e.ts, true
		}
		if err := l.locate(&c, from, hr); err != nil {
			return 0, 0, false, err
		}
	}
	first := c.segs
scan:
	for len(c.segs) > 0 {
		v := c.segs[0]
		for c.pos < v.size {
			h, err := hr.header(v.seg.log, c.pos, v.size, batch.HeaderSize)
			if err != nil {
				return 0, 0, false, fmt.Errorf("read segment %d at %d: %w", v.base, c.pos, err)
			}
			if c.indexedBase >= 0 && h.BaseOffset() != c.indexedBase {
				l.rebuildIndexes(c.idx, hr)
				c.pos, c.indexedBase = 0, -1
				continue
			}
			c.indexedBase = -1
			n := int64(h.BatchLength()) + 12
			if n < batch.HeaderSize || c.pos+n > v.size {
				return 0, 0, false, fmt.Errorf("read segment %d at %d: %w: batch of %d bytes", v.base, c.pos, batch.ErrCorrupt, n)
			}
			if verify.ok {
				// Batches up to the entry's must have timestamps up to the entry's, and the
				// entry's batch exactly its timestamp; otherwise the time index lied: scan
				// the segment from its start.
				lied := h.MaxTimestamp() > verify.ts || h.BaseOffset() > verify.base ||
					h.BaseOffset() == verify.base && h.MaxTimestamp() != verify.ts
				if lied {
					// The lie may show only past the entry's segment: start over from the
					// first segment's start.
					l.rebuildIndexes(times, hr)
					c.segs, c.pos, c.indexedBase, verify.ok = first, 0, -1, false
					continue scan
				}
				if h.BaseOffset() < verify.base {
					c.pos += n
					continue
				}
				verify.ok = false
			}
			if h.MaxTimestamp() >= ts && h.LastOffset() >= lso {
				off, rts, found, read, err := l.findAt(v.seg.log, c.pos, n, ts, lso, budget)
				switch {
				case errors.Is(err, batch.ErrTooLarge):
					return max(h.BaseOffset(), lso), h.MaxTimestamp(), true, nil // timestampLookupShallow
				case err != nil:
					return 0, 0, false, err
				case found:
					return off, rts, true, nil
				}
				budget -= read
			}
			c.pos += n
		}
		c.segs, c.pos = c.segs[1:], 0
	}
	return 0, 0, false, nil
}

// findAt reads the batch of n bytes at pos and streams its records for the first with a
// timestamp at least ts and an offset at least minOffset, decompressing at most budget
// bytes (batch.ErrTooLarge beyond). read is what it decompressed.
//
// timestampLookupShallow: a batch that would take more than the budget is answered by
// its base offset and header max timestamp, the answer Kafka gives for a batch it does
// not open (its shallow offset); since produce checks and fixes the header, only a batch
// larger than maxDecodeBytes decompressed is answered so.
func (l *Log) findAt(f vfs.File, pos, n, ts, minOffset int64, budget int) (offset, timestamp int64, found bool, read int, err error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, pos); err != nil {
		return 0, 0, false, 0, fmt.Errorf("read batch at %d: %w", pos, err)
	}
	offset, timestamp, found, read, err = batch.FindTimestamp(b, ts, minOffset, budget)
	if err != nil {
		return 0, 0, false, read, fmt.Errorf("search batch at %d of %s: %w", pos, f.Name(), err)
	}
	return offset, timestamp, found, read, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the largest timestamp
// (ListOffsets MAX_TIMESTAMP, KIP-734); offset -1 if the log is empty. Of several records
// with that timestamp, the first is returned.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	if err := l.Err(); err != nil {
		return 0, 0, err
	}
	l.mu.RLock()
	var best *segment
	for _, s := range l.segs {
		if s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		l.mu.RUnlock()
		return -1, -1, nil
	}
	ts, batchBase := best.maxTs, best.maxTsBase
	c := l.locateLocked(batchBase)
	l.mu.RUnlock()
	hr := newHeaderReader()
	defer hr.release()
	found, err := l.seek(&c, batchBase, hr)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return -1, -1, nil
	}
	v := c.segs[0]
	_, _, n, err := hr.batch(v.seg.log, c.pos, v.size)
	if err != nil {
		return 0, 0, err
	}
	off, rts, found, _, err := l.findAt(v.seg.log, c.pos, n, ts, 0, maxDecodeBytes)
	switch {
	case errors.Is(err, batch.ErrTooLarge):
	case err != nil:
		return 0, 0, err
	case found && rts == ts:
		return off, ts, nil
	}
	// The header's maxTimestamp matches no record (a batch written before produce fixed
	// headers that disagree with their records), or the batch is past maxDecodeBytes:
	// answer with the batch, as Kafka's shallow offset does.
	return batchBase, ts, nil
}
