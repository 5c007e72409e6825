package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgBatch encodes a batch with kmsg, the reference encoder: body is the records section
// (encoded by kmsgRecords, possibly compressed), and the CRC is computed independently of
// this package.
func kmsgBatch(opts BuildOptions, count int, baseTs, maxTs int64, body []byte) []byte {
	attrs := int16(opts.Codec)
	if opts.LogAppendTime {
		attrs |= 0x08
	}
	if opts.Transactional {
		attrs |= 0x10
	}
	if opts.Control {
		attrs |= 0x20
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if opts.Idempotent {
		pid, epoch, seq = opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          opts.BaseOffset,
		Length:               int32(49 + len(body)),
		PartitionLeaderEpoch: opts.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(count - 1),
		FirstTimestamp:       baseTs,
		MaxTimestamp:         maxTs,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(count),
		Records:              body,
	}
	out := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// kmsgRecords encodes records with kmsg and returns the records section and the
// timestamps the header should carry.
func kmsgRecords(recs []Record) (body []byte, baseTs, maxTs int64) {
	baseTs, maxTs = recs[0].Timestamp, recs[0].Timestamp
	for i, r := range recs {
		maxTs = max(maxTs, r.Timestamp)
		kr := kmsg.Record{
			TimestampDelta64: r.Timestamp - baseTs,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// kmsg writes the Length field as given: encode once to measure the rest.
		enc := kr.AppendTo(nil)
		_, n := binary.Varint(enc)
		kr.Length = int32(len(enc) - n)
		body = kr.AppendTo(body)
	}
	return body, baseTs, maxTs
}

func sampleRecords(n int, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Timestamp: 1_700_000_000_000 + int64(i*7%5), // not monotonic: max must be found
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
		}
		switch i % 4 {
		case 1:
			recs[i].Key = nil
		case 2:
			recs[i].Value = nil
			recs[i].Headers = []Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}
		case 3:
			recs[i].Key = []byte{}
		}
	}
	return recs
}

func TestBuildMatchesKmsg(t *testing.T) {
	cases := []struct {
		name string
		opts BuildOptions
		n    int
	}{
		{"plain", BuildOptions{}, 5},
		{"one record", BuildOptions{BaseOffset: 42}, 1},
		{"idempotent", BuildOptions{BaseOffset: 1 << 40, PartitionLeaderEpoch: 7, Idempotent: true, ProducerID: 9001, ProducerEpoch: 3, BaseSequence: 12}, 9},
		{"transactional", BuildOptions{Transactional: true, Idempotent: true, ProducerID: 1, ProducerEpoch: 0}, 3},
		{"log append time", BuildOptions{LogAppendTime: true}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs := sampleRecords(tc.n, 33)
			got, err := Build(tc.opts, recs)
			if err != nil {
				t.Fatal(err)
			}
			body, baseTs, maxTs := kmsgRecords(recs)
			want := kmsgBatch(tc.opts, len(recs), baseTs, maxTs, body)
			if !bytes.Equal(got, want) {
				t.Fatalf("Build differs from kmsg encoding\n got %x\nwant %x", got, want)
			}
			if err := Validate(got); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			checkHeaderAgainstKmsg(t, Batch(got))
			checkRecords(t, Batch(got), tc.opts, recs)
		})
	}
}

// checkHeaderAgainstKmsg decodes the header with kmsg and compares every getter.
func checkHeaderAgainstKmsg(t *testing.T, b Batch) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg cannot read the batch: %v", err)
	}
	type pair struct {
		name      string
		got, want int64
	}
	for _, p := range []pair{
		{"BaseOffset", b.BaseOffset(), kb.FirstOffset},
		{"BatchLength", int64(b.BatchLength()), int64(kb.Length)},
		{"PartitionLeaderEpoch", int64(b.PartitionLeaderEpoch()), int64(kb.PartitionLeaderEpoch)},
		{"Magic", int64(b.Magic()), int64(kb.Magic)},
		{"CRC", int64(b.CRC()), int64(uint32(kb.CRC))},
		{"Attributes", int64(b.Attributes()), int64(kb.Attributes)},
		{"LastOffsetDelta", int64(b.LastOffsetDelta()), int64(kb.LastOffsetDelta)},
		{"BaseTimestamp", b.BaseTimestamp(), kb.FirstTimestamp},
		{"MaxTimestamp", b.MaxTimestamp(), kb.MaxTimestamp},
		{"ProducerID", b.ProducerID(), kb.ProducerID},
		{"ProducerEpoch", int64(b.ProducerEpoch()), int64(kb.ProducerEpoch)},
		{"BaseSequence", int64(b.BaseSequence()), int64(kb.FirstSequence)},
		{"RecordCount", int64(b.RecordCount()), int64(kb.NumRecords)},
		{"LastOffset", b.LastOffset(), kb.FirstOffset + int64(kb.LastOffsetDelta)},
		{"Codec", int64(b.Codec()), int64(kb.Attributes & 7)},
	} {
		if p.got != p.want {
			t.Errorf("%s = %d, kmsg says %d", p.name, p.got, p.want)
		}
	}
	if b.ComputeCRC() != b.CRC() {
		t.Errorf("CRC %08x does not match computed %08x", b.CRC(), b.ComputeCRC())
	}
	if !bytes.Equal(kb.Records, b[HeaderSize:]) {
		t.Errorf("records section differs from kmsg's")
	}
}

func checkRecords(t *testing.T, b Batch, opts BuildOptions, want []Record) {
	t.Helper()
	got, err := Records(b, 1<<20)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		wantTs := w.Timestamp
		if opts.LogAppendTime {
			wantTs = b.MaxTimestamp()
		}
		if r.Offset != opts.BaseOffset+int64(i) || r.Timestamp != wantTs {
			t.Errorf("record %d: offset %d ts %d, want %d %d", i, r.Offset, r.Timestamp, opts.BaseOffset+int64(i), wantTs)
		}
		if !sameNullable(r.Key, w.Key) || !sameNullable(r.Value, w.Value) {
			t.Errorf("record %d: key %q value %q, want %q %q", i, r.Key, r.Value, w.Key, w.Value)
		}
		if len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(r.Headers), len(w.Headers))
		}
		for j, h := range r.Headers {
			if h.Key != w.Headers[j].Key || !sameNullable(h.Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: %q=%q, want %q=%q", i, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}

// sameNullable distinguishes nil (null) from empty, as Kafka does.
func sameNullable(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func TestCodecs(t *testing.T) {
	recs := sampleRecords(50, 200)
	for _, c := range []struct {
		name string
		opts BuildOptions
	}{
		{"gzip", BuildOptions{Codec: Gzip}},
		{"snappy xerial", BuildOptions{Codec: Snappy}},
		{"snappy raw", BuildOptions{Codec: Snappy, RawSnappy: true}},
		{"lz4", BuildOptions{Codec: LZ4}},
		{"zstd", BuildOptions{Codec: Zstd, BaseOffset: 100}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := Build(c.opts, recs)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if Batch(b).Codec() != c.opts.Codec {
				t.Fatalf("codec %v, want %v", Batch(b).Codec(), c.opts.Codec)
			}
			checkHeaderAgainstKmsg(t, Batch(b))
			checkRecords(t, Batch(b), c.opts, recs)
		})
	}
}

// TestDecompressFranzGo decompresses what franz-go's producer compressor writes, the
// bytes our broker receives from kgo clients.
func TestDecompressFranzGo(t *testing.T) {
	var plain []byte
	for i, r := range sampleRecords(200, 300) {
		plain = appendRecord(plain, int32(i), 0, r)
	}
	for _, c := range []struct {
		codec Codec
		kc    kgo.CompressionCodec
	}{
		{Gzip, kgo.GzipCompression()},
		{Snappy, kgo.SnappyCompression()},
		{LZ4, kgo.Lz4Compression()},
		{Zstd, kgo.ZstdCompression()},
	} {
		t.Run(c.codec.String(), func(t *testing.T) {
			comp, err := kgo.DefaultCompressor(c.kc)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc, typ := comp.Compress(&buf, plain)
			if int(typ) != int(c.codec) {
				t.Fatalf("franz-go used codec %d", typ)
			}
			got, err := Decompress(c.codec, slices.Clone(enc), len(plain))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("decompressed %d bytes differ from the %d plain bytes", len(got), len(plain))
			}
			if _, err := Decompress(c.codec, slices.Clone(enc), len(plain)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("one byte under the bound: err %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestDecompressionBomb: 64 MiB of zeros compresses to a few KiB; with a 1 MiB bound
// every codec must refuse it having allocated about the bound, not the 64 MiB.
func TestDecompressionBomb(t *testing.T) {
	zeros := make([]byte, 64<<20)
	const bound = 1 << 20
	for _, c := range []struct {
		codec Codec
		raw   bool
	}{{Gzip, false}, {Snappy, false}, {Snappy, true}, {LZ4, false}, {Zstd, false}} {
		t.Run(fmt.Sprintf("%v raw=%v", c.codec, c.raw), func(t *testing.T) {
			enc, err := compress(c.codec, zeros, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			var err2 error
			bytesAllocated := measureAlloc(func() { _, err2 = Decompress(c.codec, enc, bound) })
			if !errors.Is(err2, ErrTooLarge) {
				t.Fatalf("err %v, want ErrTooLarge", err2)
			}
			if bytesAllocated > 16*bound {
				t.Fatalf("refusing the bomb allocated %d bytes, bound %d", bytesAllocated, bound)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	good, err := Build(BuildOptions{}, sampleRecords(3, 10))
	if err != nil {
		t.Fatal(err)
	}
	// mutate returns a copy of good changed by f, with the CRC fixed unless keepCRC.
	mutate := func(f func(b []byte) []byte, fixCRC bool) []byte {
		b := f(slices.Clone(good))
		if fixCRC && len(b) >= HeaderSize {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			binary.BigEndian.PutUint32(b[17:], Batch(b).ComputeCRC())
		}
		return b
	}
	// rec builds a records section from raw kmsg records, bypassing Build's checks.
	rawBatch := func(count int32, body []byte) []byte {
		b := slices.Clone(good[:HeaderSize])
		b = append(b, body...)
		binary.BigEndian.PutUint32(b[57:], uint32(count))
		binary.BigEndian.PutUint32(b[23:], uint32(count-1))
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		binary.BigEndian.PutUint32(b[17:], Batch(b).ComputeCRC())
		return b
	}
	rec := func(fields ...int64) []byte {
		var body []byte
		body = append(body, 0)
		for _, f := range fields {
			body = binary.AppendVarint(body, f)
		}
		return append(binary.AppendVarint(nil, int64(len(body))), body...)
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:40], ErrCorrupt},
		{"flipped crc byte", mutate(func(b []byte) []byte { b[17] ^= 1; return b }, false), ErrCorrupt},
		{"flipped record byte", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }, false), ErrCorrupt},
		{"length too long", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], uint32(len(b))); return b }, false), ErrCorrupt},
		{"trailing byte", mutate(func(b []byte) []byte { return append(b, 0) }, false), ErrCorrupt},
		{"magic 1", mutate(func(b []byte) []byte { b[16] = 1; return b }, true), ErrUnsupportedMagic},
		{"zero records", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 0); return b }, true), ErrInvalidRecord},
		{"last offset delta", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 5); return b }, true), ErrInvalidRecord},
		{"count larger than records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 4)
			binary.BigEndian.PutUint32(b[23:], 3)
			return b
		}, true), ErrInvalidRecord},
		{"unknown codec", mutate(func(b []byte) []byte { b[22] |= 6; b[22] &^= 1; return b }, true), ErrCorrupt},
		{"extra bytes after records", mutate(func(b []byte) []byte { return append(b, 0, 0) }, true), ErrInvalidRecord},
		// fields: tsDelta, offsetDelta, keyLen, [key], valueLen, [value], headers...
		{"offset delta gap", rawBatch(2, append(rec(0, 0, -1, -1, 0), rec(0, 2, -1, -1, 0)...)), ErrInvalidRecord},
		{"key overruns record", rawBatch(1, rec(0, 0, 5, -1, 0)), ErrInvalidRecord},
		{"negative key length", rawBatch(1, rec(0, 0, -2, -1, 0)), ErrInvalidRecord},
		{"negative header count", rawBatch(1, rec(0, 0, -1, -1, -1)), ErrInvalidRecord},
		{"null header key", rawBatch(1, rec(0, 0, -1, -1, 1, -1, -1)), ErrInvalidRecord},
		{"record longer than fields", rawBatch(1, append(rec(0, 0, -1, -1, 0)[:0], 8, 0, 0, 0, 1, 1, 0, 0, 0)), ErrInvalidRecord},
		{"huge varint", rawBatch(1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrInvalidRecord},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
	// The valid record helper itself must pass, so the cases above fail for their stated reason.
	if err := Validate(rawBatch(2, append(rec(0, 0, -1, -1, 0), rec(3, 1, 0, 0, 1, 0, -1)...))); err != nil {
		t.Fatalf("hand-built valid batch: %v", err)
	}
}

func TestNext(t *testing.T) {
	a, _ := Build(BuildOptions{BaseOffset: 0}, sampleRecords(2, 5))
	b, _ := Build(BuildOptions{BaseOffset: 2}, sampleRecords(3, 5))
	buf := append(slices.Clone(a), b...)

	first, rest, err := Next(buf, 1<<20)
	if err != nil || !bytes.Equal(first, a) {
		t.Fatalf("first: %v", err)
	}
	second, rest, err := Next(rest, 1<<20)
	if err != nil || !bytes.Equal(second, b) || len(rest) != 0 {
		t.Fatalf("second: %v, %d left", err, len(rest))
	}
	if _, _, err := Next(buf[:len(a)+len(b)-1][len(a):], 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("torn tail: %v", err)
	}
	if _, _, err := Next(buf[:30], 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short header: %v", err)
	}
	if _, _, err := Next(buf, len(a)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	neg := slices.Clone(a)
	binary.BigEndian.PutUint32(neg[8:], 0xfffffff0)
	if _, _, err := Next(neg, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("negative length: %v", err)
	}
	// The returned batch's capacity ends at the batch, so appending cannot clobber the next one.
	if cap(first) != len(a) {
		t.Fatalf("cap %d, want %d", cap(first), len(a))
	}
}

func TestPatching(t *testing.T) {
	raw, _ := Build(BuildOptions{Idempotent: true, ProducerID: 5, BaseSequence: 10}, sampleRecords(4, 8))
	b := Batch(raw)
	crc := b.CRC()
	b.SetBaseOffset(1000)
	b.SetPartitionLeaderEpoch(12)
	if b.CRC() != crc || b.ComputeCRC() != crc {
		t.Fatal("base offset and leader epoch must lie outside the CRC")
	}
	if b.BaseOffset() != 1000 || b.LastOffset() != 1003 || b.PartitionLeaderEpoch() != 12 {
		t.Fatalf("patched header: base %d last %d epoch %d", b.BaseOffset(), b.LastOffset(), b.PartitionLeaderEpoch())
	}
	if b.LastSequence() != 13 {
		t.Fatalf("last sequence %d", b.LastSequence())
	}
	baseTs := b.BaseTimestamp()
	b.SetLogAppendTime(1_800_000_000_000)
	if err := Validate(b); err != nil {
		t.Fatalf("after SetLogAppendTime: %v", err)
	}
	if !b.LogAppendTime() || b.MaxTimestamp() != 1_800_000_000_000 || b.BaseTimestamp() != baseTs {
		t.Fatalf("log append time not set: %v %d %d", b.LogAppendTime(), b.MaxTimestamp(), b.BaseTimestamp())
	}
	recs, err := Records(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != 1_800_000_000_000 {
			t.Fatalf("record timestamp %d, want the log append time", r.Timestamp)
		}
	}
	wrap, _ := Build(BuildOptions{Idempotent: true, ProducerID: 5, BaseSequence: 1<<31 - 2}, sampleRecords(4, 8))
	if got := Batch(wrap).LastSequence(); got != 1 {
		t.Fatalf("wrapped last sequence %d, want 1", got)
	}
}

func TestControlRecord(t *testing.T) {
	raw, err := Build(BuildOptions{Control: true, Transactional: true, Idempotent: true, ProducerID: 7},
		[]Record{EndTxnMarker(true, 3, 99)})
	if err != nil {
		t.Fatal(err)
	}
	b := Batch(raw)
	if !b.Control() || !b.Transactional() {
		t.Fatal("control/transactional bits not set")
	}
	recs, err := Records(b, 1024)
	if err != nil {
		t.Fatal(err)
	}
	typ, err := ControlType(recs[0].Key)
	if err != nil || typ != ControlCommit {
		t.Fatalf("control type %d, %v", typ, err)
	}
	if got := int32(binary.BigEndian.Uint32(recs[0].Value[2:])); got != 3 {
		t.Fatalf("coordinator epoch %d", got)
	}
}

// TestRecordsCompacted: Records accepts offset gaps a compacted batch has, Validate does not.
func TestRecordsCompacted(t *testing.T) {
	var body []byte
	for _, d := range []int64{0, 3, 4} {
		r := []byte{0}
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, d)
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, 0)
		body = append(binary.AppendVarint(body, int64(len(r))), r...)
	}
	raw, _ := Build(BuildOptions{BaseOffset: 10}, sampleRecords(1, 1))
	b := append(slices.Clone(raw[:HeaderSize]), body...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[23:], 4)
	binary.BigEndian.PutUint32(b[57:], 3)
	binary.BigEndian.PutUint32(b[17:], Batch(b).ComputeCRC())
	recs, err := Records(b, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[1].Offset != 13 || recs[2].Offset != 14 {
		t.Fatalf("offsets wrong: %+v", recs)
	}
	if err := Validate(b); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Validate of a compacted batch: %v", err)
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	b, _ := Build(BuildOptions{}, sampleRecords(16, 1024))
	if n := testing.AllocsPerRun(100, func() {
		if err := Validate(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Validate allocated %v times per run", n)
	}
}

// benchBatch is a 16 KiB batch of 1 KiB records, the size the log benchmarks use.
func benchBatch(b *testing.B) []byte {
	recs := make([]Record, 16)
	for i := range recs {
		recs[i] = Record{Timestamp: int64(i), Value: bytes.Repeat([]byte{'v'}, 1000)}
	}
	raw, err := Build(BuildOptions{}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkValidate(b *testing.B) {
	raw := benchBatch(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// smallRecordsBatch is a batch of about 16 KiB of 100-byte records with null keys, no
// headers and timestamps a few milliseconds apart, as franz-go produces them in
// workload a of bench/compare.
func smallRecordsBatch(b *testing.B, c Codec) []byte {
	recs := make([]Record, 150)
	for i := range recs {
		recs[i] = Record{Timestamp: 1_700_000_000_000 + int64(i/20), Value: bytes.Repeat([]byte{byte('a' + i%26)}, 100)}
	}
	raw, err := Build(BuildOptions{Codec: c, Idempotent: true, ProducerID: 1}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkValidateSmallRecords(b *testing.B) {
	raw := smallRecordsBatch(b, None)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateFull is the compacted-topic path: decompress, then walk every record.
func BenchmarkValidateFull(b *testing.B) {
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			raw := smallRecordsBatch(b, c)
			// Keys are required by compacted topics: give every record one.
			recs, err := Records(raw, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			for i := range recs {
				recs[i].Key = []byte(fmt.Sprintf("k%d", i))
			}
			raw, err = Build(BuildOptions{Codec: c, Idempotent: true, ProducerID: 1}, recs)
			if err != nil {
				b.Fatal(err)
			}
			opts := ValidateOptions{MaxDecompressed: 1 << 20, RequireKeys: true}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := validateFull(raw, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecords(b *testing.B) {
	raw := benchBatch(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Records(raw, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidateFull(t *testing.T) {
	recs := sampleRecords(8, 30) // records 1 and 5 have null keys
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			b, err := Build(BuildOptions{Codec: c}, recs)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateFull(b, ValidateOptions{MaxDecompressed: 1 << 20}); err != nil {
				t.Fatalf("ValidateFull: %v", err)
			}
			if err := validateFull(b, ValidateOptions{MaxDecompressed: 1 << 20, RequireKeys: true}); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("null keys with RequireKeys: %v", err)
			}
			if c != None {
				if err := validateFull(b, ValidateOptions{MaxDecompressed: 100}); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("over the decompression bound: %v", err)
				}
			}
		})
	}
	// A compressed batch whose records disagree with its header passes Validate (header
	// only) but not ValidateFull.
	b, _ := Build(BuildOptions{Codec: Gzip}, recs)
	be.PutUint32(b[offRecordCount:], 7)
	be.PutUint32(b[offLastOffsetDelta:], 6)
	be.PutUint32(b[offCRC:], Batch(b).ComputeCRC())
	if err := Validate(b); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := validateFull(b, ValidateOptions{MaxDecompressed: 1 << 20}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("ValidateFull of a lying compressed batch: %v", err)
	}
}

func TestFilter(t *testing.T) {
	recs := sampleRecords(6, 20)
	for _, c := range []Codec{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			raw, _ := Build(BuildOptions{Codec: c, BaseOffset: 100, Idempotent: true, ProducerID: 4, BaseSequence: 9, PartitionLeaderEpoch: 2}, recs)
			b := Batch(raw)
			same, changed, err := Filter(b, func(Record) bool { return true }, 1<<20)
			if err != nil || changed || !bytes.Equal(same, b) {
				t.Fatalf("keep all: changed=%v err=%v", changed, err)
			}
			odd, changed, err := Filter(b, func(r Record) bool { return r.Offset%2 == 1 }, 1<<20)
			if err != nil || !changed {
				t.Fatalf("keep odd: changed=%v err=%v", changed, err)
			}
			if err := CheckHeader(odd); err != nil {
				t.Fatal(err)
			}
			if odd.BaseOffset() != 100 || odd.LastOffset() != 105 || odd.RecordCount() != 3 || odd.ProducerID() != 4 ||
				odd.BaseSequence() != 9 || odd.PartitionLeaderEpoch() != 2 || odd.Codec() != c || odd.BaseTimestamp() != b.BaseTimestamp() {
				t.Fatalf("header not preserved: base %d last %d count %d", odd.BaseOffset(), odd.LastOffset(), odd.RecordCount())
			}
			got, err := Records(odd, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var maxTs int64
			for i, r := range got {
				w := recs[2*i+1]
				if r.Offset != int64(101+2*i) || r.Timestamp != w.Timestamp || !sameNullable(r.Key, w.Key) || !sameNullable(r.Value, w.Value) || len(r.Headers) != len(w.Headers) {
					t.Fatalf("record %d: %+v", i, r)
				}
				maxTs = max(maxTs, r.Timestamp)
			}
			if odd.MaxTimestamp() != maxTs {
				t.Fatalf("max timestamp %d, want %d", odd.MaxTimestamp(), maxTs)
			}
			none, _, err := Filter(b, func(Record) bool { return false }, 1<<20)
			if err != nil || none.RecordCount() != 0 || none.LastOffset() != 105 {
				t.Fatalf("keep none: %v", err)
			}
			if rs, err := Records(none, 1<<20); err != nil || len(rs) != 0 {
				t.Fatalf("records of an emptied batch: %d, %v", len(rs), err)
			}
		})
	}
}

// BenchmarkValidateHeaderOnly is Validate of compressed batches: the CRC and header, what
// the produce path checked of them before it streamed their records (ValidateFull).
func BenchmarkValidateHeaderOnly(b *testing.B) {
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			raw := smallRecordsBatch(b, c)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Validate(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
