// Streaming the records of a compressed batch: the decompressed records section is read
// through one fixed window (a pooled buffer, defaultWindow bytes) and walked as it
// arrives, so validating or searching a batch costs the window and the decoder's own
// state, not the decompressed size. That size is still bounded (the caller's max), since
// it is what a decompression bomb costs in CPU.
//
// Records that lie wholly in the window are walked in runs by validRun (the produce path)
// or recordAt (searches). A record that does not fit the window at all, such as one
// value of a few MiB, is walked field by field and its key, value and headers are read
// past without being kept.
package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

const (
	// defaultWindow is the window through which decompressed records are walked.
	defaultWindow = 128 << 10
	// minWindow is the smallest window the walker works with: a record's length and its
	// fixed fields (attributes, timestamp, offset delta, key length) fit in it.
	minWindow = 32
	// snappyMaxExpansion bounds what a snappy block may claim to decode to: the densest
	// snappy element is a 3-byte copy of 64 bytes. A claim beyond it is corrupt, and
	// refusing it up front bounds the one buffer a raw block is decoded into.
	snappyMaxExpansion = 22
)

var windows = sync.Pool{New: func() any { b := make([]byte, defaultWindow); return &b }}

// streamWalker walks count records of hdr's batch read from src through win.
type streamWalker struct {
	src      io.Reader
	codec    Codec
	win      []byte
	pos, end int  // unread bytes are win[pos:end]
	total    int  // decompressed bytes read from src so far
	max      int  // the bound on total
	eof      bool // src has nothing more
	stalls   int  // reads that returned nothing

	hdr         Batch
	count       int32
	strict      bool
	requireKeys bool
	st          runState
	// visit, if set, is called with each record's offset delta and timestamp once the
	// record is checked; it returns false to stop the walk. Without it the walk validates
	// runs of records with validRun, the produce path's fast walker.
	visit   func(offsetDelta int32, ts int64) bool
	stopped bool
}

// walkAll walks the records, then checks that the stream holds nothing after them.
func (w *streamWalker) walkAll() error {
	for w.st.i < w.count {
		if err := w.fill(len(w.win)); err != nil {
			return err
		}
		progress, err := w.run()
		if err != nil || w.stopped {
			return err
		}
		if w.st.i == w.count || progress {
			continue
		}
		// With the window topped up, no whole record starts at pos: the stream ended
		// inside one, or the window is full and the record is longer than it.
		if w.eof {
			return w.truncated()
		}
		if err := w.large(); err != nil || w.stopped {
			return err
		}
	}
	if err := w.fill(1); err != nil {
		return err
	}
	if w.end > w.pos {
		return fmt.Errorf("%w: bytes after the last of %d records", ErrInvalidRecord, w.count)
	}
	return nil
}

// fill makes at least n bytes (n <= len(win)) readable from pos unless the stream ends
// first, moving the unread bytes to the window's start when they would not fit after it.
func (w *streamWalker) fill(n int) error {
	if w.end-w.pos >= n || w.eof {
		return nil
	}
	if len(w.win)-w.pos < n {
		w.end = copy(w.win, w.win[w.pos:w.end])
		w.pos = 0
	}
	for w.end-w.pos < n {
		m, err := w.src.Read(w.win[w.end:])
		w.end += m
		w.total += m
		if w.total > w.max {
			return fmt.Errorf("%w: %s records decompress to more than %d bytes", ErrTooLarge, w.codec, w.max)
		}
		switch {
		case err == io.EOF:
			w.eof = true
			return nil
		case err != nil:
			return decodeError(w.codec, err, w.max)
		case m == 0:
			if w.stalls++; w.stalls > 100 {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, w.codec, io.ErrNoProgress)
			}
		}
	}
	return nil
}

// decodeError classes an error of a decoder: a size bound the codec itself enforces is
// ErrTooLarge, anything else a stream that does not decode, ErrCorrupt.
func decodeError(c Codec, err error, max int) error {
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return fmt.Errorf("%w: %s frame needs more than %d bytes: %w", ErrTooLarge, c, max, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, c, err)
}

// run walks the records lying wholly in the window from pos, reporting whether it got
// past any.
func (w *streamWalker) run() (progress bool, err error) {
	data := w.win[:w.end]
	if w.visit == nil {
		st := w.st
		used, ok := validRun(data[w.pos:], w.count, w.hdr.LastOffsetDelta(), w.hdr.BaseTimestamp(), w.strict, w.requireKeys, true, &w.st)
		if !ok {
			return false, w.explain(st)
		}
		w.pos += used
		return used > 0, nil
	}
	for w.st.i < w.count {
		if !wholeRecordAt(data, w.pos) {
			break
		}
		end, off, tsd, err := recordAt(data, w.pos, w.st.i, w.st.prev, w.hdr, nil, w.strict, w.requireKeys)
		if err != nil {
			return false, err
		}
		w.pos, progress = end, true
		if w.record(off, tsd) {
			return true, nil
		}
	}
	return progress, nil
}

// record counts a checked record and visits it; it reports whether the visitor stopped
// the walk.
func (w *streamWalker) record(off int32, tsd int64) bool {
	ts := w.hdr.BaseTimestamp() + tsd
	if w.hdr.LogAppendTime() {
		ts = w.hdr.MaxTimestamp()
	}
	w.st.i++
	w.st.prev = off
	w.st.maxTS = max(w.st.maxTS, ts)
	if ts != -1 {
		w.st.minTS = min(w.st.minTS, ts)
	}
	if w.visit != nil && !w.visit(off, ts) {
		w.stopped = true
	}
	return w.stopped
}

// explain returns walk's error for the run validRun refused, which began at pos with st.
func (w *streamWalker) explain(st runState) error {
	data := w.win[:w.end]
	for pos := w.pos; st.i < w.count && wholeRecordAt(data, pos); st.i++ {
		end, off, _, err := recordAt(data, pos, st.i, st.prev, w.hdr, nil, w.strict, w.requireKeys)
		if err != nil {
			return err
		}
		pos, st.prev = end, off
	}
	return fmt.Errorf("%w: record %d", ErrInvalidRecord, st.i)
}

// truncated returns the error for a stream that ended inside record st.i.
func (w *streamWalker) truncated() error {
	if w.pos == w.end {
		return fmt.Errorf("%w: the records section ends after %d of %d records", ErrInvalidRecord, w.st.i, w.count)
	}
	// The partial record's own error, as walk would report it at the end of the data.
	if _, _, _, err := recordAt(w.win[:w.end], w.pos, w.st.i, w.st.prev, w.hdr, nil, w.strict, w.requireKeys); err != nil {
		return err
	}
	return fmt.Errorf("%w: record %d is cut short", ErrInvalidRecord, w.st.i)
}

// wholeRecordAt reports whether the record at data[pos:] lies wholly in data, or its
// length is invalid whatever follows it (recordAt then reports why).
func wholeRecordAt(data []byte, pos int) bool {
	length, n := varint12(data, pos)
	if n == 0 {
		if length, n = varint32Slow(data, pos); n == 0 {
			return len(data)-pos >= binary.MaxVarintLen32
		}
	}
	return length < 0 || int(length) <= len(data)-pos-n
}

// large walks record st.i, which starts at pos and is longer than the window (which is
// full): its fixed fields are in the window, its key, value and headers are read past.
func (w *streamWalker) large() error {
	i := w.st.i
	lr := reader{buf: w.win[:w.end], pos: w.pos}
	length, err := lr.varint()
	if err != nil {
		return fmt.Errorf("record %d: %w", i, err)
	}
	w.pos = lr.pos
	left := int(length) // bytes of the record not yet walked
	// r reads fields of the record from the window, never past the record's end.
	field := func() *reader {
		return &reader{buf: w.win[:w.pos+min(left, w.end-w.pos)], pos: w.pos}
	}
	done := func(r *reader) {
		left -= r.pos - w.pos
		w.pos = r.pos
	}
	r := field()
	if _, err := r.int8(); err != nil {
		return fmt.Errorf("record %d attributes: %w", i, err)
	}
	tsd, err := r.varlong()
	if err != nil {
		return fmt.Errorf("record %d timestamp delta: %w", i, err)
	}
	off, err := r.varint()
	if err != nil {
		return fmt.Errorf("record %d offset delta: %w", i, err)
	}
	if w.strict && off != i || !w.strict && (off <= w.st.prev || off > w.hdr.LastOffsetDelta()) {
		return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, off)
	}
	done(r)
	// skipBytes reads a length varint and reads past that many bytes, as reader.bytes.
	skipBytes := func(nullable bool, what string) (null bool, err error) {
		if err := w.fill(min(left, binary.MaxVarintLen32)); err != nil {
			return false, err
		}
		r := field()
		n, err := r.varint()
		if err != nil {
			return false, err
		}
		done(r)
		if n < 0 {
			if n == -1 && nullable {
				return true, nil
			}
			return false, fmt.Errorf("%w: %s length %d", ErrInvalidRecord, what, n)
		}
		if int(n) > left {
			return false, fmt.Errorf("%w: %s of %d bytes overruns the record", ErrInvalidRecord, what, n)
		}
		left -= int(n)
		return false, w.skip(int(n))
	}
	null, err := skipBytes(true, "key")
	if err != nil {
		return fmt.Errorf("record %d: %w", i, err)
	}
	if w.requireKeys && null {
		return fmt.Errorf("%w: record %d has no key, which a compacted topic requires", ErrInvalidRecord, i)
	}
	if _, err := skipBytes(true, "value"); err != nil {
		return fmt.Errorf("record %d: %w", i, err)
	}
	if err := w.fill(min(left, binary.MaxVarintLen32)); err != nil {
		return err
	}
	r = field()
	nh, err := r.varint()
	if err != nil {
		return fmt.Errorf("record %d header count: %w", i, err)
	}
	done(r)
	if nh < 0 || int64(nh) > int64(left)/minHeaderSize {
		return fmt.Errorf("%w: record %d header count %d", ErrInvalidRecord, i, nh)
	}
	for h := int32(0); h < nh; h++ {
		if _, err := skipBytes(false, "header key"); err != nil {
			return fmt.Errorf("record %d header %d: %w", i, h, err)
		}
		if _, err := skipBytes(true, "header value"); err != nil {
			return fmt.Errorf("record %d header %d: %w", i, h, err)
		}
	}
	if left != 0 {
		return fmt.Errorf("%w: record %d has %d bytes beyond its fields", ErrInvalidRecord, i, left)
	}
	w.record(off, tsd)
	return nil
}

// skip reads past n bytes of the stream.
func (w *streamWalker) skip(n int) error {
	for n > 0 {
		if w.pos == w.end {
			if err := w.fill(1); err != nil {
				return err
			}
			if w.pos == w.end {
				return fmt.Errorf("%w: record %d is cut short", ErrInvalidRecord, w.st.i)
			}
		}
		k := min(n, w.end-w.pos)
		w.pos += k
		n -= k
	}
	return nil
}

// streamDecoder reads a decompressed records section; release returns it to its pool.
type streamDecoder interface {
	io.Reader
	release()
}

// openStream returns a reader of the decompressed records section src of a batch
// compressed with c (not None). The decoders are pooled: none is made per batch.
func openStream(c Codec, src []byte, max int) (streamDecoder, error) {
	switch c {
	case Gzip:
		d, _ := gzipReaders.Get().(*gzipDecoder)
		if d == nil {
			d = new(gzipDecoder)
		}
		d.src.Reset(src)
		if err := d.zr.Reset(&d.src); err != nil {
			d.release()
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		return d, nil
	case Snappy:
		s, _ := snappyReaders.Get().(*snappyStream)
		if s == nil {
			s = new(snappyStream)
		}
		*s = snappyStream{src: src, max: max, buf: getOutputBuffer()}
		if len(src) > xerialHeaderSize && bytes.HasPrefix(src, xerialMagic[:]) {
			s.src, s.xerial = src[xerialHeaderSize:], true
		}
		return s, nil
	case LZ4:
		d, _ := lz4Readers.Get().(*lz4Decoder)
		if d == nil {
			d = newLZ4Decoder()
		}
		d.src.Reset(src)
		d.zr.Reset(&d.src)
		return d, nil
	case Zstd:
		pool := zstdDecoders(max, true)
		d, _ := pool.Get().(*zstdStream)
		if d == nil {
			zr, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(max)+1), // bounds the frame's window too
				zstd.WithDecodeBuffersBelow(0),           // stream, never decode a frame whole
			)
			if err != nil {
				return nil, fmt.Errorf("zstd decoder: %w", err)
			}
			d = &zstdStream{zr: zr, pool: pool}
		}
		d.src.Reset(src)
		if err := d.zr.Reset(&d.src); err != nil {
			d.release()
			return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
}

type zstdStream struct {
	src  bytes.Reader
	zr   *zstd.Decoder
	pool *sync.Pool
}

func (d *zstdStream) Read(p []byte) (int, error) { return d.zr.Read(p) }

func (d *zstdStream) release() {
	d.zr.Reset(nil) // drops its reference to src
	d.src.Reset(nil)
	d.pool.Put(d)
}

// snappyStream decodes a snappy records section one block at a time: each xerial chunk,
// or the one raw block, into a pooled buffer. A block's decoded length is declared up
// front and checked before anything is decoded.
type snappyStream struct {
	src    []byte // the blocks not yet decoded
	xerial bool
	max    int
	total  int     // decoded lengths declared so far
	buf    *[]byte // the pooled block buffer
	out    []byte  // the unread part of the decoded block
	done   bool
}

func (s *snappyStream) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.done || s.xerial && len(s.src) == 0 {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

func (s *snappyStream) next() error {
	block := s.src
	if s.xerial {
		if len(s.src) < 4 {
			return fmt.Errorf("%w: snappy: torn xerial chunk header", ErrCorrupt)
		}
		size := int64(binary.BigEndian.Uint32(s.src))
		if size > int64(len(s.src)-4) {
			return fmt.Errorf("%w: snappy: xerial chunk of %d bytes overruns the batch", ErrCorrupt, size)
		}
		block, s.src = s.src[4:4+size], s.src[4+size:]
	} else {
		s.done = true
	}
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if int64(n) > snappyMaxExpansion*int64(len(block)) {
		return fmt.Errorf("%w: snappy block of %d bytes claims to decode to %d", ErrCorrupt, len(block), n)
	}
	if s.total += n; s.total > s.max {
		return fmt.Errorf("%w: snappy records decompress to more than %d bytes", ErrTooLarge, s.max)
	}
	if cap(*s.buf) < n {
		*s.buf = make([]byte, n)
	}
	out, err := snappy.Decode((*s.buf)[:n], block)
	if err != nil {
		return fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	s.out = out
	return nil
}

func (s *snappyStream) release() {
	putOutputBuffer(s.buf, nil)
	*s = snappyStream{}
	snappyReaders.Put(s)
}

var snappyReaders sync.Pool // *snappyStream

// FindTimestamp returns the offset and timestamp of the first record of b, in log order,
// whose timestamp is at least ts and offset at least minOffset (ListOffsets by
// timestamp). The records are streamed and the walk stops at that record, so a search
// decompresses no more than it reads and never more than maxDecompressed bytes
// (ErrTooLarge beyond); read is how much it decompressed. The batch may be compacted:
// its offsets need only increase.
func FindTimestamp(b Batch, ts, minOffset int64, maxDecompressed int) (offset, timestamp int64, found bool, read int, err error) {
	if err := CheckHeader(b); err != nil {
		return 0, 0, false, 0, err
	}
	if b.RecordCount() < 0 {
		return 0, 0, false, 0, fmt.Errorf("%w: record count %d", ErrInvalidRecord, b.RecordCount())
	}
	w := streamWalker{hdr: b, count: b.RecordCount(), codec: b.Codec(), max: clampMax(maxDecompressed), st: newRunState()}
	w.visit = func(off int32, t int64) bool {
		if t >= ts && b.BaseOffset()+int64(off) >= minOffset {
			offset, timestamp, found = b.BaseOffset()+int64(off), t, true
			return false
		}
		return true
	}
	if err := w.stream(b[HeaderSize:], defaultWindow); err != nil {
		return 0, 0, false, w.total, err
	}
	return offset, timestamp, found, w.total, nil
}

// stream walks the records section data of w.hdr's batch: in place if uncompressed,
// else decompressed through a window of the given size (defaultWindow: a pooled one).
func (w *streamWalker) stream(data []byte, window int) error {
	if w.codec == None {
		w.win, w.end, w.eof = data, len(data), true
		return w.walkAll()
	}
	src, err := openStream(w.codec, data, w.max)
	if err != nil {
		return err
	}
	defer src.release()
	w.src = src
	if window == defaultWindow {
		buf := windows.Get().(*[]byte)
		defer windows.Put(buf)
		w.win = *buf
	} else {
		w.win = make([]byte, max(window, minWindow))
	}
	return w.walkAll()
}
