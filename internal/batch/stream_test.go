package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// noGC turns the collector off for the test, so that pooled decoders and buffers warmed
// before a measurement are still pooled during it.
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// validateFull is ValidateFull without its summary.
func validateFull(b []byte, opts ValidateOptions) error {
	_, err := ValidateFull(b, opts)
	return err
}

// batchOf frames a records section (uncompressed bytes) as a batch of count records
// compressed with c, with every header field consistent with count.
func batchOf(tb testing.TB, c Codec, raw bool, records []byte, count int32, baseTs int64) []byte {
	tb.Helper()
	comp, err := compress(c, records, raw)
	if err != nil {
		tb.Fatal(err)
	}
	return frame(c, comp, count, baseTs)
}

// frame frames a compressed records section as a batch of count records.
func frame(c Codec, comp []byte, count int32, baseTs int64) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(comp))
	b = append(b, comp...)
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], uint16(c))
	be.PutUint32(b[offLastOffsetDelta:], uint32(count-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(baseTs))
	be.PutUint64(b[offMaxTimestamp:], uint64(baseTs))
	be.PutUint64(b[offProducerID:], ^uint64(0))
	be.PutUint16(b[offProducerEpoch:], ^uint16(0))
	be.PutUint32(b[offBaseSequence:], ^uint32(0))
	be.PutUint32(b[offRecordCount:], uint32(count))
	return fixFraming(b)
}

var everyCodec = append([]struct {
	codec Codec
	raw   bool
}{{None, false}}, compressedCodecs...)

func codecName(codec Codec, raw bool) string {
	if raw {
		return codec.String() + "-raw"
	}
	return codec.String()
}

// bigRecords is n records of size bytes of zeros each, with keys: highly compressible.
func bigRecords(n, size int) []byte {
	var data []byte
	value := make([]byte, size)
	for i := range n {
		data = appendRecord(data, int32(i), int64(i%3), Record{Key: binary.AppendUvarint(nil, uint64(i)), Value: value})
	}
	return data
}

// zstdAsFranz compresses as franz-go does: one frame with a 64 KiB window.
func zstdAsFranz(tb testing.TB, plain []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(plain, nil)
}

// Validating a compressed batch streams its records through a bounded window: memory does
// not grow with the decompressed size (8 MiB here), decoder state and pools aside.
func TestValidateFullStreamsInBoundedMemory(t *testing.T) {
	noGC(t)
	records := bigRecords(2048, 4<<10)
	for _, c := range compressedCodecs {
		t.Run(codecName(c.codec, c.raw), func(t *testing.T) {
			b := batchOf(t, c.codec, c.raw, records, 2048, 1_700_000_000_000)
			if c.codec == Zstd {
				// A zstd decoder keeps the frame's window, whatever it streams: see
				// TestZstdWindowBounded for frames whose window is their whole content.
				b = frame(Zstd, zstdAsFranz(t, records), 2048, 1_700_000_000_000)
			}
			opts := ValidateOptions{MaxDecompressed: 64 << 20, RequireKeys: true}
			if err := validateFull(b, opts); err != nil { // warm the pools
				t.Fatal(err)
			}
			var err error
			allocated := leastAlloc(5, func() { err = validateFull(b, opts) })
			if err != nil {
				t.Fatal(err)
			}
			limit := uint64(1 << 20)
			if c.raw {
				// One raw snappy block has no framing to stream by: its output is decoded
				// whole, which snappy's format bounds at 22 times the compressed size.
				limit = uint64(22 * len(b))
			}
			if allocated > limit && !raceEnabled {
				t.Fatalf("validating %d records (%d bytes decompressed, %d compressed) allocated %d bytes, want at most %d",
					2048, len(records), len(b), allocated, limit)
			}
		})
	}
}

// A zstd frame costs its window, which a single-segment frame (one that declares its
// content size, as librdkafka and python-zstandard write small ones) makes its whole
// content: that is the decoder's history, allocated once per pooled decoder and reused,
// and bounded by MaxDecompressed. A window beyond the bound is refused before decoding.
func TestZstdWindowBounded(t *testing.T) {
	noGC(t)
	records := bigRecords(2048, 4<<10)
	b := batchOf(t, Zstd, false, records, 2048, 0) // one segment: an 8 MiB window
	opts := ValidateOptions{MaxDecompressed: 64 << 20}
	if err := validateFull(b, opts); err != nil {
		t.Fatal(err)
	}
	var err error
	if allocated := leastAlloc(5, func() { err = validateFull(b, opts) }); err != nil || allocated > 1<<20 && !raceEnabled {
		t.Fatalf("validating again with a pooled decoder: %v, allocated %d bytes", err, allocated)
	}
	allocated := leastAlloc(5, func() { err = validateFull(b, ValidateOptions{MaxDecompressed: 4 << 20}) })
	if !errors.Is(err, ErrTooLarge) || allocated > 1<<20 && !raceEnabled {
		t.Fatalf("an 8 MiB window with a 4 MiB bound: %v, allocated %d bytes", err, allocated)
	}
}

// A batch that decompresses past the bound is refused as too large, having cost no more
// memory than one within the bound.
func TestValidateFullRefusesBombWithoutAllocating(t *testing.T) {
	noGC(t)
	records := bigRecords(4096, 8<<10) // 32 MiB of zeros
	const bound = 4 << 20
	for _, c := range compressedCodecs {
		if c.raw {
			continue // one raw block's size is declared up front: refused before decoding
		}
		t.Run(codecName(c.codec, c.raw), func(t *testing.T) {
			b := batchOf(t, c.codec, c.raw, records, 4096, 0)
			opts := ValidateOptions{MaxDecompressed: bound}
			_ = validateFull(b, opts)
			var err error
			allocated := leastAlloc(5, func() { err = validateFull(b, opts) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d compressed bytes expanding to %d, bound %d: %v, want ErrTooLarge", len(b), len(records), bound, err)
			}
			if allocated > 1<<20 && !raceEnabled {
				t.Fatalf("refusing the bomb allocated %d bytes", allocated)
			}
			if c.codec == Zstd {
				// batchOf's zstd frame declares its 32 MiB size, refused up front; as
				// franz-go writes it, with a small window, it is refused while streaming.
				b = frame(Zstd, zstdAsFranz(t, records), 4096, 0)
				_ = validateFull(b, opts)
				allocated = leastAlloc(5, func() { err = validateFull(b, opts) })
				if !errors.Is(err, ErrTooLarge) || allocated > 1<<20 && !raceEnabled {
					t.Fatalf("streamed zstd bomb: %v, allocated %d bytes", err, allocated)
				}
			}
		})
	}
	// A raw snappy block declares its decoded length: one beyond the bound, or beyond what
	// snappy can encode in the bytes given, is refused before anything is allocated.
	b := batchOf(t, Snappy, true, records, 4096, 0)
	if err := validateFull(b, ValidateOptions{MaxDecompressed: bound}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("raw snappy bomb: %v, want ErrTooLarge", err)
	}
	lying := bytes.Clone(b[:HeaderSize])
	lying = binary.AppendUvarint(lying, 1<<30) // claims 1 GiB from a few bytes
	lying = append(lying, 0, 0, 0, 0)
	if err := validateFull(fixFraming(lying), ValidateOptions{MaxDecompressed: 2 << 30}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("raw snappy claiming more than its bytes can hold: %v, want ErrCorrupt", err)
	}
}

// Records that disagree with their header are INVALID_RECORD whatever the codec, as in
// Kafka ("Incorrect declared batch size", offsets out of order); a compressed stream that
// does not decode is CORRUPT_MESSAGE.
func TestValidateFullRecordErrors(t *testing.T) {
	three := func() []byte {
		var d []byte
		for i := range 3 {
			d = appendRecord(d, int32(i), 0, Record{Key: []byte("k"), Value: []byte("v")})
		}
		return d
	}()
	swapped := appendRecord(appendRecord(appendRecord(nil, 0, 0, Record{Value: []byte("v")}), 2, 0, Record{Value: []byte("v")}), 1, 0, Record{Value: []byte("v")})
	cases := []struct {
		name    string
		records []byte
		count   int32
	}{
		{"count above records", three, 4},
		{"count far above records", three, 1000},
		{"count below records", three, 2},
		{"offset deltas out of order", swapped, 3},
		{"last record torn", three[:len(three)-1], 3},
		{"a byte after the records", append(bytes.Clone(three), 0), 3},
		{"record length overruns", append([]byte{0x7e}, three[1:]...), 3},
	}
	for _, c := range everyCodec {
		for _, tc := range cases {
			t.Run(codecName(c.codec, c.raw)+"/"+tc.name, func(t *testing.T) {
				b := batchOf(t, c.codec, c.raw, tc.records, tc.count, 0)
				if err := validateFull(b, ValidateOptions{MaxDecompressed: 1 << 20}); !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("%v, want ErrInvalidRecord", err)
				}
			})
		}
		if c.codec == None {
			continue
		}
		t.Run(codecName(c.codec, c.raw)+"/garbage stream", func(t *testing.T) {
			b := batchOf(t, c.codec, c.raw, three, 3, 0)
			for i := HeaderSize; i < len(b); i++ {
				b[i] = byte(i * 131)
			}
			if err := validateFull(fixFraming(b), ValidateOptions{MaxDecompressed: 1 << 20}); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("%v, want ErrCorrupt", err)
			}
		})
	}
}

// The summary is the records' timestamps as Kafka's LogValidator computes them: the
// largest (never below -1, NO_TIMESTAMP), and the smallest that is not -1.
func TestValidateFullSummary(t *testing.T) {
	const base = 1_700_000_000_000
	cases := []struct {
		deltas   []int64
		min, max int64
	}{
		{[]int64{0, 5, 3}, base, base + 5},
		{[]int64{0, -7, 1 << 20}, base - 7, base + 1<<20},
		{[]int64{-base - 1, 0}, base, base}, // a record at -1 is not checked, nor counted as min
		{[]int64{-base - 1}, noMinTimestamp, -1},
		{[]int64{-base - 5}, -5, -1}, // Kafka's max starts at -1
	}
	for _, c := range everyCodec {
		for _, tc := range cases {
			var data []byte
			for i, d := range tc.deltas {
				data = appendRecord(data, int32(i), d, Record{Value: []byte("v")})
			}
			b := batchOf(t, c.codec, c.raw, data, int32(len(tc.deltas)), base)
			sum, err := ValidateFull(b, ValidateOptions{MaxDecompressed: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if sum.MinTimestamp != tc.min || sum.MaxTimestamp != tc.max {
				t.Fatalf("%s deltas %v: min %d max %d, want %d %d", codecName(c.codec, c.raw), tc.deltas, sum.MinTimestamp, sum.MaxTimestamp, tc.min, tc.max)
			}
		}
	}
	// Timestamps that wrap (baseTimestamp near the top of int64) are taken as Java's long
	// arithmetic takes them.
	for _, c := range everyCodec {
		data := appendRecord(appendRecord(nil, 0, 0, Record{Value: []byte("v")}), 1, 5, Record{Value: []byte("v")})
		b := batchOf(t, c.codec, c.raw, data, 2, math.MaxInt64-1)
		sum, err := ValidateFull(b, ValidateOptions{MaxDecompressed: 1 << 20})
		if err != nil || sum.MinTimestamp != math.MinInt64+3 || sum.MaxTimestamp != math.MaxInt64-1 {
			t.Fatalf("%s wrapping timestamps: %+v %v", codecName(c.codec, c.raw), sum, err)
		}
	}
	// A LogAppendTime batch's records all carry the header's max timestamp.
	b, err := Build(BuildOptions{Codec: LZ4, LogAppendTime: true, LogAppendTimeMs: 42}, sampleRecords(3, 10))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := ValidateFull(b, ValidateOptions{MaxDecompressed: 1 << 20}); err != nil || sum.MinTimestamp != 42 || sum.MaxTimestamp != 42 {
		t.Fatalf("LogAppendTime batch: %+v %v", sum, err)
	}
}

// encoders compress records sections for the differential tests with reused encoders:
// compress makes new ones per call, which would be most of the tests' time (and much more
// of it under the race detector).
type encoders struct {
	gz  *gzip.Writer
	lz  *lz4.Writer
	zs  *zstd.Encoder
	buf bytes.Buffer
}

func newEncoders(tb testing.TB) *encoders {
	zs, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { zs.Close() })
	e := &encoders{gz: gzip.NewWriter(nil), lz: lz4.NewWriter(nil), zs: zs}
	if err := e.lz.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
		tb.Fatal(err)
	}
	return e
}

// batch is batchOf with e's encoders.
func (e *encoders) batch(tb testing.TB, c Codec, raw bool, records []byte, count int32, baseTs int64) []byte {
	tb.Helper()
	e.buf.Reset()
	var comp []byte
	switch c {
	case Gzip:
		e.gz.Reset(&e.buf)
		e.gz.Write(records)
		e.gz.Close()
		comp = e.buf.Bytes()
	case LZ4:
		e.lz.Reset(&e.buf)
		e.lz.Write(records)
		e.lz.Close()
		comp = e.buf.Bytes()
	case Zstd:
		comp = e.zs.EncodeAll(records, nil)
	default:
		return batchOf(tb, c, raw, records, count, baseTs)
	}
	return frame(c, bytes.Clone(comp), count, baseTs)
}

// The streaming walker agrees with the reference walker on every records section the
// differential seeds and their mutations give, through windows small enough that records
// straddle refills and exceed the window.
func TestStreamingMatchesReference(t *testing.T) {
	seeds := validRecordsSeeds(t)
	seeds = append(seeds, bigRecords(5, 300))
	enc := newEncoders(t)
	for si, seed := range seeds {
		count := countOf(seed)
		inputs := [][]byte{seed}
		for i := 0; i < len(seed); i += max(1, len(seed)/40) {
			for _, delta := range []byte{1, 0x40, 0x80} {
				m := bytes.Clone(seed)
				m[i] ^= delta
				inputs = append(inputs, m)
			}
			inputs = append(inputs, seed[:i])
		}
		for _, in := range inputs {
			for _, c := range compressedCodecs {
				b := enc.batch(t, c.codec, c.raw, in, count, 1000)
				for _, window := range []int{minWindow, 100, defaultWindow} {
					for _, keys := range []bool{false, true} {
						checkStreamAgainstRef(t, b, in, keys, window, fmt.Sprintf("seed %d %s", si, codecName(c.codec, c.raw)))
					}
				}
			}
		}
	}
}

func checkStreamAgainstRef(t *testing.T, b, data []byte, keys bool, window int, what string) {
	t.Helper()
	opts := ValidateOptions{MaxDecompressed: 1 << 20, RequireKeys: keys}
	want := refValidate(b, true, opts)
	got, err := validateWindow(b, opts, window)
	if errClass(err) != errClass(want) {
		t.Fatalf("%s window %d keys %v: %v, reference %v", what, window, keys, err, want)
	}
	if err != nil {
		return
	}
	var recs []Record
	if err := refWalk(data, Batch(b).RecordCount(), Batch(b), &recs, true, false); err != nil {
		t.Fatal(err)
	}
	wantSum := Summary{MaxTimestamp: -1, MinTimestamp: noMinTimestamp}
	for _, r := range recs {
		wantSum.MaxTimestamp = max(wantSum.MaxTimestamp, r.Timestamp)
		if r.Timestamp != -1 {
			wantSum.MinTimestamp = min(wantSum.MinTimestamp, r.Timestamp)
		}
	}
	if got != wantSum {
		t.Fatalf("%s window %d: summary %+v, want %+v", what, window, got, wantSum)
	}
}

// FuzzStreaming holds the streaming walker to the reference walker on any records
// section, any codec and any window.
func FuzzStreaming(f *testing.F) {
	for _, seed := range validRecordsSeeds(f) {
		f.Add(seed, uint8(0), uint16(0), false)
	}
	f.Add(bigRecords(3, 200), uint8(3), uint16(40), true)
	enc := newEncoders(f)
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, window uint16, keys bool) {
		c := compressedCodecs[int(codec)%len(compressedCodecs)]
		count := int32(1)
		if len(data) > 0 {
			count = max(1, int32(data[0]%8))
		}
		b := enc.batch(t, c.codec, c.raw, data, count, 0)
		checkStreamAgainstRef(t, b, data, keys, minWindow+int(window), codecName(c.codec, c.raw))
	})
}

// FindTimestamp answers what a scan of Records answers, for batches of every codec,
// compacted ones (gaps in offsets) and LogAppendTime ones.
func TestFindTimestamp(t *testing.T) {
	recs := sampleRecords(30, 50)
	for i := range recs {
		recs[i].Timestamp = 1000 + int64(i*37%29) // out of order
	}
	for _, c := range everyCodec {
		for _, lat := range []bool{false, true} {
			raw, err := Build(BuildOptions{Codec: c.codec, RawSnappy: c.raw, BaseOffset: 100, LogAppendTime: lat, LogAppendTimeMs: 1010}, recs)
			if err != nil {
				t.Fatal(err)
			}
			compacted, _, err := Filter(raw, func(r Record) bool { return r.Offset%3 != 1 }, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []Batch{raw, compacted} {
				all, err := Records(b, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for ts := int64(990); ts <= 1032; ts++ {
					for _, minOffset := range []int64{0, 110, 200} {
						var want Record
						wantFound := false
						for _, r := range all {
							if r.Timestamp >= ts && r.Offset >= minOffset {
								want, wantFound = r, true
								break
							}
						}
						off, got, found, _, err := FindTimestamp(b, ts, minOffset, 1<<20)
						if err != nil || found != wantFound || found && (off != want.Offset || got != want.Timestamp) {
							t.Fatalf("%s lat %v, %d records, ts %d from %d: %d %d %v %v; want %d %d %v",
								codecName(c.codec, c.raw), lat, b.RecordCount(), ts, minOffset, off, got, found, err, want.Offset, want.Timestamp, wantFound)
						}
					}
				}
			}
		}
	}
	b, _ := Build(BuildOptions{Codec: Gzip}, []Record{{Value: make([]byte, 1000)}})
	if _, _, _, _, err := FindTimestamp(b, 0, 0, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("past the bound: %v, want ErrTooLarge", err)
	}
}
