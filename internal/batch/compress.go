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
// grows past it, so a decompression bomb costs at most that many bytes.
package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

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
// refusing (with ErrCorrupt) output larger than max bytes. For None it returns src.
func Decompress(c Codec, src []byte, max int) ([]byte, error) {
	max = clampMax(max)
	switch c {
	case None:
		return src, nil
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		defer zr.Close()
		return readBounded(zr, len(src), max, "gzip")
	case Snappy:
		return decompressSnappy(src, max)
	case LZ4:
		return readBounded(lz4.NewReader(bytes.NewReader(src)), len(src), max, "lz4")
	case Zstd:
		zr, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(max)+1),
		)
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		defer zr.Close()
		out, err := zr.DecodeAll(src, nil)
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
				return nil, fmt.Errorf("%w: zstd output exceeds %d bytes", ErrCorrupt, max)
			}
			return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		if len(out) > max {
			return nil, fmt.Errorf("%w: zstd output exceeds %d bytes", ErrCorrupt, max)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
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

// readBounded reads r to the end, refusing more than max bytes. The buffer starts from
// a guess based on the compressed size and grows only as real output arrives.
func readBounded(r io.Reader, srcLen, max int, codec string) ([]byte, error) {
	guess := min(4*srcLen+512, max+1)
	var buf bytes.Buffer
	buf.Grow(guess)
	n, err := buf.ReadFrom(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, codec, err)
	}
	if n > int64(max) {
		return nil, fmt.Errorf("%w: %s output exceeds %d bytes", ErrCorrupt, codec, max)
	}
	return buf.Bytes(), nil
}

func decompressSnappy(src []byte, max int) ([]byte, error) {
	if len(src) > xerialHeaderSize && bytes.HasPrefix(src, xerialMagic[:]) {
		return decodeXerial(src[xerialHeaderSize:], max)
	}
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: snappy output of %d bytes exceeds %d", ErrCorrupt, n, max)
	}
	out, err := snappy.Decode(make([]byte, n), src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	return out, nil
}

// decodeXerial first walks the chunk headers summing the claimed decoded lengths, so
// the bound is checked before anything is allocated and the output is allocated once.
func decodeXerial(src []byte, max int) ([]byte, error) {
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
		if n > max-total {
			return nil, fmt.Errorf("%w: snappy output exceeds %d bytes", ErrCorrupt, max)
		}
		total += n
		rem = rem[size:]
	}
	out := make([]byte, total)
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
