// Compression codecs of v2 batches: the records section after the 61-byte header is
// compressed as one block.
//
//	gzip   RFC 1952 stream (klauspost/compress/gzip)
//	snappy either Kafka's xerial framing (as the Java producer writes it) or one raw
//	       snappy block (as some non-Java clients write it); both are accepted, as the
//	       Java broker and franz-go accept both. Xerial framing:
//	         0 magic   8 bytes 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
//	         8 version int32 (1), 12 compatible version int32 (1)
//	        16 chunks: length int32 big endian, then that many bytes of one raw snappy block
//	lz4    LZ4 frame format (pierrec/lz4/v4), as Kafka writes since KIP-57
//	zstd   zstd frames (klauspost/compress/zstd)
//
// Every decoder is bounded by a maximum decompressed size, checked before the output
// grows past it, so a decompression bomb costs at most that many bytes (and is refused
// with ErrTooLarge). Decompress returns the whole output, for callers that keep the
// records (decoding, compaction); validation and searches stream instead (stream.go).
package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var xerialMagic = [8]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	// xerialBlockSize is the block size the Java SnappyOutputStream writes.
	xerialBlockSize = 32 << 10
)

// Decompress returns the decompressed records section of a batch compressed with c,
// refusing (with ErrTooLarge) output larger than max bytes. For None it returns src.
func Decompress(c Codec, src []byte, max int) ([]byte, error) {
	return decompressTo(nil, c, src, max)
}

// decompressTo is Decompress writing into dst's capacity (growing it as Decompress
// would grow a new buffer) so that a caller done with the output can reuse the buffer.
// Decoders come from pools: their state, tens of KiB for gzip and zstd, is the larger
// cost of decompressing a small batch.
func decompressTo(dst []byte, c Codec, src []byte, max int) ([]byte, error) {
	max = clampMax(max)
	switch c {
	case None:
		return src, nil
	case Gzip:
		d, _ := gzipReaders.Get().(*gzipDecoder)
		if d == nil {
			d = new(gzipDecoder)
		}
		defer d.release()
		d.src.Reset(src)
		if err := d.zr.Reset(&d.src); err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		return readBounded(dst, &d.zr, len(src), max, "gzip")
	case Snappy:
		return decompressSnappy(dst, src, max)
	case LZ4:
		d, _ := lz4Readers.Get().(*lz4Decoder)
		if d == nil {
			d = newLZ4Decoder()
		}
		defer d.release()
		d.src.Reset(src)
		d.zr.Reset(&d.src)
		return readBounded(dst, d.zr, len(src), max, "lz4")
	case Zstd:
		pool := zstdDecoders(max, false)
		zr, _ := pool.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			zr, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(max)+1),
			)
			if err != nil {
				return nil, fmt.Errorf("zstd decoder: %w", err)
			}
		}
		out, err := zr.DecodeAll(src, dst[:0])
		pool.Put(zr)
		if err != nil {
			return nil, decodeError(Zstd, err, max)
		}
		if len(out) > max {
			return nil, fmt.Errorf("%w: zstd output exceeds %d bytes", ErrTooLarge, max)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
}

// Pools of decoders. They hold decoder state only, never output nor the batch they last
// read, and the garbage collector empties them, so they cost at most what the busiest
// moment needed. A zstd decoder's bound is fixed when it is made, so its pool is that of
// one bound: the pools of the last few bounds used are kept (callers use one or two, from
// configuration).
var (
	gzipReaders sync.Pool // *gzipDecoder
	lz4Readers  sync.Pool // *lz4Decoder

	zstdPoolsMu sync.Mutex
	zstdPools   []zstdPool // most recently used last; at most maxZstdPools
)

// outputBuffers hold decompressed records for callers that are done with them before
// they return (ValidateFull). Only buffers up to maxPooledOutput bytes are kept, so a
// large batch does not pin its size in the pool.
var outputBuffers sync.Pool // *[]byte

const maxPooledOutput = 1 << 20

func getOutputBuffer() *[]byte {
	if b, ok := outputBuffers.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// putOutputBuffer returns buf to the pool holding out, the output decompressed into it
// (which may have grown past it), or nothing if out is nil.
func putOutputBuffer(buf *[]byte, out []byte) {
	if cap(out) > cap(*buf) {
		*buf = out
	}
	if cap(*buf) > maxPooledOutput {
		return
	}
	*buf = (*buf)[:0]
	outputBuffers.Put(buf)
}

// gzipDecoder is a gzip reader with its source, a bytes.Reader (so that flate reads it
// byte by byte without a bufio.Reader in between).
type gzipDecoder struct {
	src bytes.Reader
	zr  gzip.Reader
}

func (d *gzipDecoder) Read(p []byte) (int, error) { return d.zr.Read(p) }

func (d *gzipDecoder) release() {
	d.src.Reset(nil) // the decoder keeps a pointer to src; src keeps no batch
	gzipReaders.Put(d)
}

type lz4Decoder struct {
	src bytes.Reader
	zr  *lz4.Reader
}

func newLZ4Decoder() *lz4Decoder { return &lz4Decoder{zr: lz4.NewReader(nil)} }

func (d *lz4Decoder) Read(p []byte) (int, error) { return d.zr.Read(p) }

func (d *lz4Decoder) release() {
	d.src.Reset(nil)
	d.zr.Reset(nil) // returns its block buffers to lz4's pool
	lz4Readers.Put(d)
}

const maxZstdPools = 6

type zstdPool struct {
	max    int
	stream bool
	// *zstd.Decoder made with WithDecoderMaxMemory(max+1) for DecodeAll, or, for
	// streaming, *zstdStream whose decoder never decodes a frame whole
	pool *sync.Pool
}

func zstdDecoders(max int, stream bool) *sync.Pool {
	zstdPoolsMu.Lock()
	defer zstdPoolsMu.Unlock()
	for i, p := range zstdPools {
		if p.max == max && p.stream == stream {
			if i != len(zstdPools)-1 {
				zstdPools = append(append(zstdPools[:i:i], zstdPools[i+1:]...), p)
			}
			return p.pool
		}
	}
	if len(zstdPools) == maxZstdPools {
		zstdPools = append(zstdPools[:0:0], zstdPools[1:]...)
	}
	p := zstdPool{max: max, stream: stream, pool: new(sync.Pool)}
	zstdPools = append(zstdPools, p)
	return p.pool
}

// clampMax keeps the bound usable as a size: negative means nothing may be produced,
// and the bound stays one below the largest int so max+1 cannot overflow.
func clampMax(n int) int {
	const top = int(^uint(0)>>1) - 1
	if n < 0 {
		return 0
	}
	return min(n, top)
}

// readBounded reads r to the end into dst's capacity, refusing more than max bytes. A
// buffer without capacity starts from a guess based on the compressed size; it grows by
// doubling, never past max+1 bytes, only as real output arrives.
func readBounded(dst []byte, r io.Reader, srcLen, max int, codec string) ([]byte, error) {
	dst = dst[:0]
	if cap(dst) == 0 {
		dst = make([]byte, 0, min(4*srcLen+512, max+1))
	}
	for {
		if len(dst) == cap(dst) {
			if len(dst) > max {
				return nil, fmt.Errorf("%w: %s output exceeds %d bytes", ErrTooLarge, codec, max)
			}
			dst = slices.Grow(dst, min(cap(dst), max+1-len(dst)))
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), max+1)])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return nil, fmt.Errorf("%w: %s output exceeds %d bytes", ErrTooLarge, codec, max)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, codec, err)
		}
	}
}

func decompressSnappy(dst, src []byte, max int) ([]byte, error) {
	if len(src) > xerialHeaderSize && bytes.HasPrefix(src, xerialMagic[:]) {
		return decodeXerial(dst, src[xerialHeaderSize:], max)
	}
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if int64(n) > snappyMaxExpansion*int64(len(src)) {
		return nil, fmt.Errorf("%w: snappy block of %d bytes claims to decode to %d", ErrCorrupt, len(src), n)
	}
	if n > max {
		return nil, fmt.Errorf("%w: snappy output of %d bytes exceeds %d", ErrTooLarge, n, max)
	}
	out, err := snappy.Decode(slices.Grow(dst[:0], n)[:n], src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	return out, nil
}

// decodeXerial first walks the chunk headers summing the claimed decoded lengths, so
// the bound is checked before anything is allocated and the output is allocated once.
func decodeXerial(dst, src []byte, max int) ([]byte, error) {
	total := 0
	for rem := src; len(rem) > 0; {
		if len(rem) < 4 {
			return nil, fmt.Errorf("%w: snappy: torn xerial chunk header", ErrCorrupt)
		}
		size := int64(binary.BigEndian.Uint32(rem))
		rem = rem[4:]
		if size > int64(len(rem)) {
			return nil, fmt.Errorf("%w: snappy: xerial chunk of %d bytes overruns the batch", ErrCorrupt, size)
		}
		n, err := snappy.DecodedLen(rem[:size])
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		if int64(n) > snappyMaxExpansion*size {
			return nil, fmt.Errorf("%w: snappy block of %d bytes claims to decode to %d", ErrCorrupt, size, n)
		}
		if n > max-total {
			return nil, fmt.Errorf("%w: snappy output exceeds %d bytes", ErrTooLarge, max)
		}
		total += n
		rem = rem[size:]
	}
	out := slices.Grow(dst[:0], total)[:total]
	pos := 0
	for len(src) > 0 {
		size := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		n, _ := snappy.DecodedLen(src[:size])
		if _, err := snappy.Decode(out[pos:pos+n], src[:size]); err != nil {
			return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		pos += n
		src = src[size:]
	}
	return out, nil
}

// compress compresses the records section for Build. Snappy is written with xerial
// framing, as the Java producer writes it, unless raw is set.
func compress(c Codec, src []byte, rawSnappy bool) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case None:
		return src, nil
	case Gzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	case Snappy:
		if rawSnappy {
			return snappy.Encode(nil, src), nil
		}
		buf.Write(xerialMagic[:])
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(src) > 0 {
			chunk := src[:min(len(src), xerialBlockSize)]
			src = src[len(chunk):]
			enc := snappy.Encode(nil, chunk)
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(enc))))
			buf.Write(enc)
		}
	case LZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
	case Zstd:
		w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer w.Close()
		return w.EncodeAll(src, nil), nil
	default:
		return nil, fmt.Errorf("unknown compression codec %d", c)
	}
	return buf.Bytes(), nil
}
