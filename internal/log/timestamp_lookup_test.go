package log

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/vltava/vltava/internal/batch"
)

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// ListOffsets by timestamp and by max timestamp stream the batch they look into and stop
// at the record they want: a batch of 16 MiB of records costs a window, not 16 MiB.
func TestTimestampLookupsStream(t *testing.T) {
	// Keep the pools warmed before a measurement warm during it.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const base, n = int64(1_700_000_000_000), 4096
	for _, c := range []batch.Codec{batch.Gzip, batch.Snappy} {
		t.Run(c.String(), func(t *testing.T) {
			h := newHarness(t, Config{})
			recs := make([]batch.Record, n)
			for i := range recs {
				recs[i] = batch.Record{Timestamp: base + int64(i), Value: make([]byte, 4<<10)}
			}
			b, err := batch.Build(batch.BuildOptions{Codec: c}, recs)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.log.Append(b); err != nil {
				t.Fatal(err)
			}
			for _, want := range []int64{10, n - 1} {
				_, _, _, _ = h.log.OffsetForTimestamp(base + want) // warm the pools
				var off, ts int64
				var found bool
				var err error
				got := allocated(func() { off, ts, found, err = h.log.OffsetForTimestamp(base + want) })
				if err != nil || !found || off != want || ts != base+want {
					t.Fatalf("offset for %d: %d %d %v %v", base+want, off, ts, found, err)
				}
				if got > 2<<20 {
					t.Fatalf("offset for timestamp of record %d allocated %d bytes", want, got)
				}
			}
			var off, ts int64
			got := allocated(func() { off, ts, err = h.log.MaxTimestamp() })
			if err != nil || off != n-1 || ts != base+n-1 {
				t.Fatalf("max timestamp: %d %d %v", off, ts, err)
			}
			if got > 2<<20 {
				t.Fatalf("max timestamp allocated %d bytes", got)
			}
		})
	}
}

// A batch that decompresses to more than one lookup may (maxDecodeBytes) is answered by
// its header, Kafka's shallow answer, not decompressed.
func TestTimestampLookupPastBoundIsShallow(t *testing.T) {
	h := newHarness(t, Config{})
	first, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Timestamp: 5, Value: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.log.Append(first); err != nil {
		t.Fatal(err)
	}
	// zstd as librdkafka writes a whole batch: one frame that declares its size.
	recs := []batch.Record{{Timestamp: 10, Value: []byte("b")}, {Timestamp: 20, Value: make([]byte, maxDecodeBytes)}}
	big, err := batch.Build(batch.BuildOptions{Codec: batch.Zstd, BaseOffset: 1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.log.Append(big); err != nil {
		t.Fatal(err)
	}
	var off, ts int64
	var found bool
	// Streaming costs the frame's window (8 MiB as klauspost writes this frame), not the
	// 64 MiB the records decompress to.
	if got := allocated(func() { off, ts, found, err = h.log.OffsetForTimestamp(15) }); got > 16<<20 {
		t.Fatalf("lookup allocated %d bytes", got)
	}
	if err != nil || !found || off != 1 || ts != 20 {
		t.Fatalf("offset for 15: %d %d %v %v; want the batch's 1 and its max timestamp 20", off, ts, found, err)
	}
	if off, ts, err = h.log.MaxTimestamp(); err != nil || off != 1 || ts != 20 {
		t.Fatalf("max timestamp: %d %d %v", off, ts, err)
	}
}
