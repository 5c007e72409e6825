package batch

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

var compressedCodecs = []struct {
	codec Codec
	raw   bool
}{{Gzip, false}, {Snappy, false}, {Snappy, true}, {LZ4, false}, {Zstd, false}}

// TestPooledDecodersStartClean: a decoder that refused a corrupt or oversized input, or
// decoded another batch, decodes the next input as a fresh one would.
func TestPooledDecodersStartClean(t *testing.T) {
	var plainA, plainB []byte
	for i, r := range sampleRecords(40, 50) {
		plainA = appendRecord(plainA, int32(i), 0, r)
	}
	for i, r := range sampleRecords(7, 300) {
		plainB = appendRecord(plainB, int32(i), 5, r)
	}
	for _, c := range compressedCodecs {
		t.Run(fmt.Sprintf("%v raw=%v", c.codec, c.raw), func(t *testing.T) {
			encA, err := compress(c.codec, plainA, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			encB, err := compress(c.codec, plainB, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			torn := encA[:len(encA)*2/3]
			flipped := bytes.Clone(encA)
			flipped[len(flipped)/2] ^= 0x55
			for range 3 {
				for _, in := range []struct {
					enc   []byte
					max   int
					plain []byte // nil: must fail
				}{
					{encA, 1 << 20, plainA},
					{torn, 1 << 20, nil},
					{encB, 1 << 20, plainB},
					{encA, len(plainA) - 1, nil},
					{flipped, 1 << 20, nil},
					{encB, len(plainB), plainB},
				} {
					got, err := Decompress(c.codec, in.enc, in.max)
					if in.plain == nil {
						// A flipped byte may go unnoticed by codecs without a checksum: then
						// the output must still differ from the original.
						if err == nil && bytes.Equal(got, plainA) {
							t.Fatalf("corrupt input decoded to the original")
						}
						continue
					}
					if err != nil || !bytes.Equal(got, in.plain) {
						t.Fatalf("after other inputs: %d bytes, %v; want %d bytes", len(got), err, len(in.plain))
					}
				}
			}
		})
	}
}

// TestZstdBoundsKeptApart: zstd decoders carry their bound, so decoders made for a large
// bound must never serve a call with a smaller one, however many bounds are in use.
func TestZstdBoundsKeptApart(t *testing.T) {
	plain := bytes.Repeat([]byte("zstd bound "), 1000)
	enc, err := compress(Zstd, plain, false)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range 2 * maxZstdPools {
			large := len(plain) + i
			if got, err := Decompress(Zstd, enc, large); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round %d bound %d: %v", round, large, err)
			}
			if _, err := Decompress(Zstd, enc, len(plain)-1-i); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("round %d bound %d: err %v, want ErrTooLarge", round, len(plain)-1-i, err)
			}
		}
	}
	// What the bound is for: a bomb refused by a decoder pooled after a larger bound was
	// used still costs about the smaller bound.
	zeros := make([]byte, 8<<20)
	bomb, err := compress(Zstd, zeros, false)
	if err != nil {
		t.Fatal(err)
	}
	const small = 64 << 10
	for range 3 {
		if _, err := Decompress(Zstd, bomb, len(zeros)); err != nil {
			t.Fatal(err)
		}
		var err error
		allocated := measureAlloc(func() { _, err = Decompress(Zstd, bomb, small) })
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("bomb: err %v, want ErrTooLarge", err)
		}
		if allocated > 16*small {
			t.Fatalf("refusing the bomb allocated %d bytes, bound %d", allocated, small)
		}
	}
	zstdPoolsMu.Lock()
	n := len(zstdPools)
	zstdPoolsMu.Unlock()
	if n > maxZstdPools {
		t.Fatalf("%d zstd pools, at most %d", n, maxZstdPools)
	}
}

// TestOutputBuffersBounded: a buffer grown past maxPooledOutput is not kept.
func TestOutputBuffersBounded(t *testing.T) {
	for range 10 {
		buf := getOutputBuffer()
		putOutputBuffer(buf, make([]byte, maxPooledOutput+1))
		if got := getOutputBuffer(); cap(*got) > maxPooledOutput {
			t.Fatalf("pooled a buffer of %d bytes", cap(*got))
		}
	}
	// ValidateFull of a batch larger than the limit still validates, and leaves no large
	// buffer behind.
	recs := make([]Record, 40)
	for i := range recs {
		recs[i] = Record{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{'x'}, maxPooledOutput/32)}
	}
	b, err := Build(BuildOptions{Codec: LZ4}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateFull(b, ValidateOptions{MaxDecompressed: 4 * maxPooledOutput, RequireKeys: true}); err != nil {
		t.Fatal(err)
	}
	if got := getOutputBuffer(); cap(*got) > maxPooledOutput {
		t.Fatalf("pooled a buffer of %d bytes", cap(*got))
	}
}

// TestValidateFullConcurrent: pooled decoders and buffers are never shared by two calls
// (run with -race).
func TestValidateFullConcurrent(t *testing.T) {
	var batches [][]byte
	for _, c := range compressedCodecs {
		for n := 1; n <= 4; n++ {
			recs := sampleRecords(10*n, 30*n)
			for i := range recs {
				recs[i].Key = []byte{byte(i)}
			}
			b, err := Build(BuildOptions{Codec: c.codec, RawSnappy: c.raw}, recs)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, b)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				b := batches[(i*7+g)%len(batches)]
				if err := validateFull(b, ValidateOptions{MaxDecompressed: 1 << 20, RequireKeys: true}); err != nil {
					t.Error(err)
					return
				}
				recs, err := Records(b, 1<<20)
				if err != nil || len(recs) != int(Batch(b).RecordCount()) {
					t.Errorf("Records: %d, %v", len(recs), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
