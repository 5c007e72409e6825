package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// refHeader is a batch header whose only field refWalk reads without out is lastOffsetDelta.
func refHeader(lastDelta int32) Batch {
	h := make(Batch, HeaderSize)
	be.PutUint32(h[offLastOffsetDelta:], uint32(lastDelta))
	return h
}

// refValidate is Validate and ValidateFull as they were before validRecords, with refWalk.
func refValidate(b []byte, full bool, opts ValidateOptions) error {
	if err := CheckHeader(b); err != nil {
		return err
	}
	bb := Batch(b)
	n := bb.RecordCount()
	if n <= 0 {
		return fmt.Errorf("%w: record count %d", ErrInvalidRecord, n)
	}
	if d := bb.LastOffsetDelta(); d != n-1 {
		return fmt.Errorf("%w: last offset delta %d with %d records", ErrInvalidRecord, d, n)
	}
	c := bb.Codec()
	if c > Zstd {
		return fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	if c == None {
		if err := refWalk(b[HeaderSize:], n, bb, nil, true, false); err != nil {
			return err
		}
	}
	if !full || c == None && !opts.RequireKeys {
		return nil
	}
	data, err := Decompress(c, b[HeaderSize:], opts.MaxDecompressed)
	if err != nil {
		return err
	}
	return refWalk(data, n, bb, nil, true, opts.RequireKeys)
}

// errClass is the sentinel a validation error wraps, which is what the handler sees.
func errClass(err error) error {
	for _, e := range []error{ErrCorrupt, ErrTooLarge, ErrUnsupportedMagic, ErrInvalidRecord} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// checkSameAsRef fails t unless validRecords, walkRecords, Validate and ValidateFull agree
// with the reference walker on data used as a records section.
func checkSameAsRef(t *testing.T, data []byte, count, lastDelta int32, strict, requireKeys bool) {
	t.Helper()
	refErr := refWalk(data, count, refHeader(lastDelta), nil, strict, requireKeys)
	if got := validRecords(data, count, lastDelta, strict, requireKeys); got != (refErr == nil) {
		t.Fatalf("validRecords(%x, count %d, lastDelta %d, strict %v, keys %v) = %v, reference says %v",
			data, count, lastDelta, strict, requireKeys, got, refErr)
	}
	if !strict {
		// Decoding (Records' walk) gives the reference's records or its very error.
		var got, want []Record
		err := walk(data, count, refHeader(lastDelta), &got, false, requireKeys)
		refErr := refWalk(data, count, refHeader(lastDelta), &want, false, requireKeys)
		if fmt.Sprint(err) != fmt.Sprint(refErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("walk decoding %x: %v, %d records; reference %v, %d records", data, err, len(got), refErr, len(want))
		}
		return
	}
	// As a whole batch: Validate and ValidateFull must return the reference's very error.
	b := make([]byte, HeaderSize, HeaderSize+len(data))
	b = append(b, data...)
	be.PutUint32(b[offRecordCount:], uint32(count))
	be.PutUint32(b[offLastOffsetDelta:], uint32(lastDelta))
	b = fixFraming(b)
	for _, full := range []bool{false, true} {
		opts := ValidateOptions{MaxDecompressed: 1 << 20, RequireKeys: requireKeys}
		var got error
		if full {
			got = validateFull(b, opts)
		} else {
			got = Validate(b)
		}
		want := refValidate(b, full, opts)
		if errClass(got) != errClass(want) || got != nil && got.Error() != want.Error() {
			t.Fatalf("full %v, keys %v: got %v, reference %v", full, requireKeys, got, want)
		}
	}
}

// validRecordsSeeds are records sections exercising every field at one, two and five
// byte varints, non-canonical encodings, headers and null keys and values.
func validRecordsSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, recs := range [][]Record{
		sampleRecords(5, 20),
		sampleRecords(9, 100),
		sampleRecords(3, 9000),
		{{Timestamp: 0, Key: []byte("k"), Value: []byte("v")}, {Timestamp: 1 << 40, Value: make([]byte, 70)}},
	} {
		b, err := Build(BuildOptions{}, recs)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b[HeaderSize:])
	}
	// One record with every varint written in five bytes (value 0 or -1, padded).
	pad := func(v byte) []byte { return []byte{v | 0x80, 0x80, 0x80, 0x80, 0x00} }
	var body []byte
	body = append(body, 0)
	body = append(body, pad(0)...)     // timestampDelta
	body = append(body, pad(0)...)     // offsetDelta 0
	body = append(body, pad(1)...)     // key length -1
	body = append(body, pad(1)...)     // value length -1
	body = append(body, 4, 0, 1, 0, 1) // two headers (zigzag 4): "" = null, "" = null
	seeds = append(seeds, append(binary.AppendVarint(nil, int64(len(body))), body...))
	return seeds
}

// countOf returns how many records Build wrote to a seed: the records section alone
// does not say, so walk it.
func countOf(data []byte) int32 {
	for n := int32(1); n < 1<<14; n++ {
		if refWalk(data, n, refHeader(n-1), nil, true, false) == nil {
			return n
		}
	}
	return 1
}

// TestValidRecordsMatchesReference mutates every byte of every seed and truncates it at
// every length, and requires validRecords to agree with the reference walker each time.
func TestValidRecordsMatchesReference(t *testing.T) {
	for _, seed := range validRecordsSeeds(t) {
		count := countOf(seed)
		if err := refWalk(seed, count, refHeader(count-1), nil, true, false); err != nil {
			t.Fatalf("seed does not validate: %v", err)
		}
		check := func(data []byte) {
			for _, keys := range []bool{false, true} {
				checkSameAsRef(t, data, count, count-1, true, keys)
				checkSameAsRef(t, data, count, count+3, false, keys)
				checkSameAsRef(t, data, count+1, count, true, keys)
			}
		}
		check(seed)
		limit := min(len(seed), 600) // the large seed's value bytes teach nothing new
		for i := range limit {
			for _, v := range []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, seed[i] + 1, seed[i] - 1, seed[i] ^ 0x80} {
				m := slices.Clone(seed)
				m[i] = v
				check(m)
			}
			check(seed[:i])
			check(slices.Insert(slices.Clone(seed), i, 0x80))
			check(slices.Delete(slices.Clone(seed), i, i+1))
		}
	}
}

// FuzzValidRecords: the fast walker accepts exactly what the reference walker accepts,
// for any bytes, count and mode; and whole batches get the reference's errors.
func FuzzValidRecords(f *testing.F) {
	for _, seed := range validRecordsSeeds(f) {
		count := countOf(seed)
		f.Add(seed, count, count-1, true, false)
		f.Add(seed, count, count+2, false, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, count, lastDelta int32, strict, requireKeys bool) {
		checkSameAsRef(t, data, count, lastDelta, strict, requireKeys)
	})
}

// chooser turns fuzzer bytes into choices; exhausted, it always picks 0.
type chooser struct {
	b []byte
	i int
}

func (c *chooser) pick(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	c.i++
	return int(c.b[c.i-1]) % n
}

// appendPadded appends v as a zigzag varint of at least width bytes: canonical, then
// padded with continuation bytes and zero groups, as a (non-canonical) encoder may write.
func appendPadded(dst []byte, v int64, width int) []byte {
	enc := binary.AppendVarint(nil, v)
	if width > len(enc) {
		enc[len(enc)-1] |= 0x80
		for len(enc) < width-1 {
			enc = append(enc, 0x80)
		}
		enc = append(enc, 0)
	}
	return append(dst, enc...)
}

// structuredRecords builds a records section from choices: each field a valid or edge value,
// each varint in one to eleven bytes, lengths right or off by one, so that mutations reach
// past the length and offset checks that random bytes rarely get through.
func structuredRecords(c *chooser) (data []byte, count int32) {
	edges := []int64{0, 1, -1, -2, 2, 63, 64, -65, 8191, 8192, 1<<31 - 1, -1 << 31, 1 << 31, -1<<31 - 1, 1 << 40, -1 << 62, 1<<63 - 1, -1 << 63}
	field := func(dst []byte, usual int64) []byte {
		v := usual
		if c.pick(12) == 0 {
			v = edges[c.pick(len(edges))]
		}
		width := 0
		if c.pick(4) == 0 {
			width = 1 + c.pick(11)
		}
		return appendPadded(dst, v, width)
	}
	bytesField := func(dst []byte, n int64) []byte {
		before := len(dst)
		dst = field(dst, n)
		if v, k := binary.Varint(dst[before:]); k > 0 && v > 0 && v < 64 {
			n = v
		}
		if n > 0 {
			extra := 0
			if c.pick(16) == 0 {
				extra = []int{-1, 1}[c.pick(2)]
			}
			dst = append(dst, make([]byte, max(0, int(n)+extra))...)
		}
		return dst
	}
	offByOne := func() int {
		if c.pick(16) == 0 {
			return []int{-1, 1}[c.pick(2)]
		}
		return 0
	}
	count = int32(1 + c.pick(4))
	for i := range count {
		body := []byte{byte(c.pick(256))}
		body = field(body, int64(c.pick(3)))
		body = field(body, int64(i))
		body = bytesField(body, int64(c.pick(4))-1)
		body = bytesField(body, int64(c.pick(20))-1)
		nh := int64(c.pick(3))
		body = field(body, nh)
		for range nh {
			body = bytesField(body, int64(c.pick(4)))
			body = bytesField(body, int64(c.pick(4))-1)
		}
		length := int64(len(body) + offByOne())
		data = field(data, length)
		data = append(data, body...)
	}
	if c.pick(16) == 0 {
		data = append(data, byte(c.pick(256)))
	}
	return data, count + int32(offByOne())
}

// TestValidRecordsStructured compares the walkers over pseudo-random structured records.
func TestValidRecordsStructured(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	choices := make([]byte, 256)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		for i := range choices {
			choices[i] = byte(rng.Uint32())
		}
		c := &chooser{b: choices}
		data, count := structuredRecords(c)
		strict, keys := c.pick(3) != 0, c.pick(4) == 0
		checkSameAsRef(t, data, count, count-1+int32(c.pick(3)), strict, keys)
	}
}

// FuzzValidRecordsStructured is FuzzValidRecords over records built from the fuzzer's
// choices, which get deeper into a record than raw bytes do.
func FuzzValidRecordsStructured(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, choices []byte) {
		c := &chooser{b: choices}
		data, count := structuredRecords(c)
		strict, keys := c.pick(3) != 0, c.pick(4) == 0
		checkSameAsRef(t, data, count, count-1+int32(c.pick(3)), strict, keys)
	})
}

// TestVarintsMatchReference compares the varint readers with refReader's on every one and
// two byte input and on every value of interest written in one to eleven bytes, whole
// and truncated.
func TestVarintsMatchReference(t *testing.T) {
	var inputs [][]byte
	for a := range 256 {
		inputs = append(inputs, []byte{byte(a)})
		for b := range 256 {
			inputs = append(inputs, []byte{byte(a), byte(b)})
		}
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, 1<<31 - 1, -1 << 31, 1 << 31, -1<<31 - 1, 1 << 34, 1 << 35, 1<<62 - 1, 1<<63 - 1, -1 << 63} {
		for width := 1; width <= 11; width++ {
			enc := appendPadded(nil, v, width)
			for end := range len(enc) + 1 {
				inputs = append(inputs, enc[:end])
			}
		}
	}
	inputs = append(inputs, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	for _, in := range inputs {
		for pos := range min(2, len(in)+1) {
			want, werr := (&refReader{buf: in, pos: pos}).varint()
			got, n := varint12(in, pos)
			if n == 0 {
				got, n = varint32Slow(in, pos)
			}
			if (n == 0) != (werr != nil) || n != 0 && got != want {
				t.Fatalf("varint of %x at %d: %d, %d bytes; reference %d, %v", in, pos, got, n, want, werr)
			}
			r := &refReader{buf: in, pos: pos}
			lwant, lerr := r.varlong()
			if v, n := varlongAt(in, pos); (n == 0) != (lerr != nil) || n != 0 && (n != r.pos-pos || v != lwant) {
				t.Fatalf("varlong of %x at %d: %d, %d bytes; reference %d, %d bytes, %v", in, pos, v, n, lwant, r.pos-pos, lerr)
			}
		}
	}
}
