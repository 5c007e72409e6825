package batch

import (
	"bytes"
	"testing"
)

// fuzzSeeds are valid batches of every codec plus a few torn ones: the fuzzer mutates
// them into the bytes a hostile client or a torn segment could hold.
func fuzzSeeds(f *testing.F) {
	for _, opts := range []BuildOptions{
		{}, {Codec: Gzip}, {Codec: Snappy}, {Codec: Snappy, RawSnappy: true}, {Codec: LZ4}, {Codec: Zstd},
		{Control: true, Transactional: true, Idempotent: true, ProducerID: 3},
	} {
		b, err := Build(opts, sampleRecords(5, 20))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
}

// fixFraming makes the length field and CRC agree with the bytes, so the fuzzer reaches
// the record walker and the decompressors instead of stopping at the CRC.
func fixFraming(data []byte) []byte {
	if len(data) < HeaderSize {
		return data
	}
	data = bytes.Clone(data)
	be.PutUint32(data[offBatchLength:], uint32(len(data)-lengthFieldEnd))
	data[offMagic] = 2
	be.PutUint32(data[offCRC:], Batch(data).ComputeCRC())
	return data
}

func FuzzValidate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Validate(data)
		data = fixFraming(data)
		err := Validate(data)
		if err != nil {
			return
		}
		// A valid batch's records must decode, and an uncompressed one exactly as validated.
		b := Batch(data)
		recs, rerr := Records(b, 1<<20)
		if b.Codec() == None {
			if rerr != nil {
				t.Fatalf("Validate accepted what Records rejects: %v", rerr)
			}
			if len(recs) != int(b.RecordCount()) {
				t.Fatalf("%d records, header says %d", len(recs), b.RecordCount())
			}
			for i, r := range recs {
				if r.Offset != b.BaseOffset()+int64(i) {
					t.Fatalf("record %d offset %d", i, r.Offset)
				}
			}
		}
	})
}

func FuzzRecords(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const bound = 1 << 16
		data = fixFraming(data)
		var recs []Record
		var err error
		allocated := measureAlloc(func() { recs, err = Records(Batch(data), bound) })
		// Whatever the input claims, decoding costs a bounded multiple of the input and the
		// decompression bound (decoder state included).
		if limit := uint64(64*len(data) + 64*bound + 8<<20); allocated > limit {
			t.Fatalf("Records allocated %d bytes for %d input bytes", allocated, len(data))
		}
		if err != nil {
			return
		}
		last := int64(-1 << 62)
		for _, r := range recs {
			if r.Offset <= last || r.Offset > Batch(data).LastOffset() {
				t.Fatalf("offset %d out of order or past the last offset", r.Offset)
			}
			last = r.Offset
		}
		// Filtering what decodes yields a valid batch holding exactly the kept records.
		odd, _, err := Filter(Batch(data), func(r Record) bool { return r.Offset%2 != 0 }, bound)
		if err != nil {
			t.Fatalf("Filter of a decodable batch: %v", err)
		}
		if err := CheckHeader(odd); err != nil {
			t.Fatalf("filtered batch: %v", err)
		}
		kept, err := Records(odd, bound)
		if err != nil {
			t.Fatalf("records of the filtered batch: %v", err)
		}
		var want []int64
		for _, r := range recs {
			if r.Offset%2 != 0 {
				want = append(want, r.Offset)
			}
		}
		if len(kept) != len(want) {
			t.Fatalf("filtered batch holds %d records, want %d", len(kept), len(want))
		}
		for i, r := range kept {
			if r.Offset != want[i] {
				t.Fatalf("filtered record %d at %d, want %d", i, r.Offset, want[i])
			}
		}
	})
}

func FuzzNext(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rest := data
		total := 0
		for len(rest) > 0 {
			b, r, err := Next(rest, 1<<20)
			if err != nil {
				if !bytes.Equal(r, rest) {
					t.Fatal("Next consumed bytes on error")
				}
				return
			}
			if len(b) < HeaderSize || b.Size() != len(b) {
				t.Fatalf("batch of %d bytes, length field says %d", len(b), b.Size())
			}
			total += len(b)
			rest = r
		}
		if total != len(data) {
			t.Fatalf("split %d of %d bytes", total, len(data))
		}
	})
}
