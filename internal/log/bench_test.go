package log

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/metrics"
	"github.com/vltava/vltava/internal/vfs"
)

// benchBatch is a 16 KiB batch of 1 KiB records.
func benchBatch(b *testing.B) batch.Batch {
	recs := make([]batch.Record, 16)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: bytes.Repeat([]byte{'v'}, 1000)}
	}
	raw, err := batch.Build(batch.BuildOptions{}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func benchLog(b *testing.B, fsys vfs.FS, root string) *Log {
	l, err := Open(fsys, root+"/t-0", Config{SegmentBytes: 256 << 20}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func BenchmarkAppend(b *testing.B) {
	for _, fc := range []struct {
		name string
		fs   func() (vfs.FS, string)
	}{
		{"os", func() (vfs.FS, string) { return vfs.OS(), b.TempDir() }},
		{"mem", func() (vfs.FS, string) { return vfs.NewMem(), "/bench" }},
	} {
		b.Run(fc.name, func(b *testing.B) {
			fsys, root := fc.fs()
			l := benchLog(b, fsys, root)
			benchAppend(b, l)
		})
	}
	// As the broker opens its logs: every write timed into the metrics' histogram. Each
	// sub-benchmark writes gigabytes, and dirty-page writeback slows whichever runs
	// later: compare os and os-timed run one at a time (-bench 'Append/os$', then
	// 'Append/os-timed', with a fixed -benchtime).
	b.Run("os-timed", func(b *testing.B) {
		m := metrics.New(metrics.DefaultConfig())
		l, err := OpenWith(vfs.OS(), b.TempDir()+"/t-0", Config{SegmentBytes: 256 << 20},
			Options{Now: time.Now, Timings: Timings{Append: m.Log.Appended, Flush: m.Log.Flushed}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		benchAppend(b, l)
	})
}

func benchAppend(b *testing.B, l *Log) {
	bb := benchBatch(b)
	b.SetBytes(int64(len(bb)))
	b.ReportAllocs()
	for b.Loop() {
		bb.SetBaseOffset(l.LogEndOffset())
		if err := l.Append(bb); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	l := benchLog(b, vfs.OS(), b.TempDir())
	bb := benchBatch(b)
	const n = 4096 // 64 MiB
	for range n {
		bb.SetBaseOffset(l.LogEndOffset())
		if err := l.Append(bb); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		off := int64(i*7919) % (leo - 1024)
		i++
		rs, err := l.Read(off, leo, 1<<20, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteRanges(io.Discard, rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSmallBatches reads 1 MiB at a time from a log of ~170-byte batches, where
// finding batch boundaries, not copying, dominates.
func BenchmarkReadSmallBatches(b *testing.B) {
	l := benchLog(b, vfs.OS(), b.TempDir())
	raw, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Timestamp: 1, Value: bytes.Repeat([]byte{'v'}, 100)}})
	if err != nil {
		b.Fatal(err)
	}
	bb := batch.Batch(raw)
	for range 64 << 10 {
		bb.SetBaseOffset(l.LogEndOffset())
		if err := l.Append(bb); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		off := int64(i*7919) % (leo - 8192)
		i++
		rs, err := l.Read(off, leo, 1<<20, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteRanges(io.Discard, rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadInactiveSegment reads at random offsets of an inactive segment, whose
// offset lookups binary-search the index file instead of entries in memory.
//
// 1MiB is BenchmarkRead with the segment rolled: compare the two. The others look up one
// batch (offset: Read of one batch; timestamp: OffsetForTimestamp) in a segment with
// 1 GiB's worth of index entries (262144, one per ~170-byte batch), where the lookup is
// most of the cost, active and inactive side by side.
func BenchmarkReadInactiveSegment(b *testing.B) {
	b.Run("1MiB", func(b *testing.B) {
		l := benchLog(b, vfs.OS(), b.TempDir())
		bb := benchBatch(b)
		for range 4096 {
			bb.SetBaseOffset(l.LogEndOffset())
			if err := l.Append(bb); err != nil {
				b.Fatal(err)
			}
		}
		leo := l.LogEndOffset()
		if err := l.Roll(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(1 << 20)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			off := int64(i*7919) % (leo - 1024)
			i++
			rs, err := l.Read(off, leo, 1<<20, true)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := WriteRanges(io.Discard, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, inactive := range []bool{false, true} {
		name := map[bool]string{false: "active", true: "inactive"}[inactive]
		var l *Log
		var leo int64
		parent := b
		// setup builds the log for both sub-benchmarks, once, and only if one runs.
		setup := func(b *testing.B) {
			if l != nil {
				return
			}
			var err error
			l, err = Open(vfs.OS(), parent.TempDir()+"/t-0", Config{SegmentBytes: 256 << 20, IndexIntervalBytes: 1}, time.Now)
			if err != nil {
				b.Fatal(err)
			}
			parent.Cleanup(func() { l.Close() })
			for i := range 1 << 18 {
				raw, err := batch.Build(batch.BuildOptions{BaseOffset: l.LogEndOffset()},
					[]batch.Record{{Timestamp: int64(1000 + 2*i), Value: bytes.Repeat([]byte{'v'}, 100)}})
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Append(raw); err != nil {
					b.Fatal(err)
				}
			}
			leo = l.LogEndOffset()
			if inactive {
				if err := l.Roll(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run("offset/"+name, func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				off := int64(i*7919) % leo
				i++
				rs, err := l.Read(off, leo, 1, true)
				if err != nil || len(rs) != 1 {
					b.Fatal(rs, err)
				}
			}
		})
		b.Run("timestamp/"+name, func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				off := int64(i*7919) % leo
				i++
				got, _, found, err := l.OffsetForTimestamp(1000 + 2*off)
				if err != nil || !found || got != off {
					b.Fatal(got, found, err)
				}
			}
		})
	}
}
