package log

import (
	"fmt"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// BenchmarkClean cleans a log of 20 MiB of updates to 1000 keys, 100 records a batch.
func BenchmarkClean(b *testing.B) {
	fsys, clk := vfs.NewMem(), newClock()
	l, err := Open(fsys, dir, Config{SegmentBytes: 1 << 20}, clk.now)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ts := clk.now().UnixMilli()
	value := make([]byte, 100)
	var total int64
	for i := 0; total < 20<<20; i++ {
		recs := make([]batch.Record, 100)
		for j := range recs {
			recs[j] = batch.Record{Timestamp: ts, Key: fmt.Appendf(nil, "key-%d", (i*100+j)%1000), Value: value}
		}
		bt, err := batch.Build(batch.BuildOptions{BaseOffset: l.LogEndOffset(), Codec: batch.LZ4}, recs)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Append(bt); err != nil {
			b.Fatal(err)
		}
		total += int64(len(bt))
	}
	l.Roll()
	b.SetBytes(l.Size())
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// Each iteration cleans from scratch: forget the checkpoint.
		fsys.Remove(dir + "/" + cleanerCheckpointFile)
		if err := l.Flush(); err != nil { // the cleaner compacts only what is synced
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := NewCleaner(DefaultDedupeBufferBytes).Clean(l, CleanOptions{HighWatermark: l.LogEndOffset()}); err != nil {
			b.Fatal(err)
		}
	}
}
