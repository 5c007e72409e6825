package log

import (
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// The Timings callbacks see every write (Append and AppendBatches, a roll included)
// and every flush, and nothing else.
func TestTimings(t *testing.T) {
	c := newClock()
	var appends, flushes int
	l, err := OpenWith(vfs.NewMem(), dir, Config{SegmentBytes: 1 << 20}, Options{Now: c.now, Timings: Timings{
		Append: func(d time.Duration) {
			if d < 0 {
				t.Errorf("negative append time %v", d)
			}
			appends++
		},
		Flush: func(time.Duration) { flushes++ },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(mkBatch(t, 0, 2, c.now().UnixMilli(), 10)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := l.AppendBatches([]batch.Batch{mkBatch(t, 2, 1, c.now().UnixMilli(), 10), mkBatch(t, 3, 1, c.now().UnixMilli(), 10)}); err != nil || n != 2 {
		t.Fatalf("AppendBatches: %d, %v", n, err)
	}
	if appends != 2 || flushes != 0 {
		t.Fatalf("after two writes: %d appends, %d flushes timed; want 2, 0", appends, flushes)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if flushes != 1 {
		t.Fatalf("after a flush: %d flushes timed, want 1", flushes)
	}
	// A refused append (wrong base offset) writes nothing and is not timed.
	if err := l.Append(mkBatch(t, 9, 1, c.now().UnixMilli(), 10)); err == nil {
		t.Fatal("append at a wrong offset accepted")
	}
	if appends != 2 {
		t.Fatalf("a refused append was timed: %d appends", appends)
	}
}
