package log

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/vfs"
)

// TestCleanCrashAtEveryStep crashes the machine before each filesystem operation of a
// clean (keeping only what was synced, and with CrashPartial an arbitrary prefix of the
// rest, a write possibly torn) and reopens: every key's latest record is there, nothing
// appears that was not written, offsets are those of the original records, and a clean
// after the restart reaches the same result as one without a crash.
func TestCleanCrashAtEveryStep(t *testing.T) {
	cfg := Config{SegmentBytes: 150, IndexIntervalBytes: 40}
	build := func(fsys vfs.FS, clk *clock) *Log {
		l, err := Open(fsys, dir, cfg, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		for r := range 6 {
			appendKV(t, l, clk.now().UnixMilli()+int64(r), fmt.Sprintf("a=%d", r), fmt.Sprintf("b%d=%d", r%3, r))
		}
		roll(t, l)
		// A first clean shrinks the segments, so the one under test merges them.
		cleanAll(t, NewCleaner(1<<20), l, CleanOptions{DeleteRetention: time.Hour})
		for r := 6; r < 9; r++ {
			appendKV(t, l, clk.now().UnixMilli()+int64(r), fmt.Sprintf("a=%d", r))
		}
		appendKV(t, l, clk.now().UnixMilli(), "a=")
		roll(t, l)
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		return l
	}
	// A clean without a crash, counting its operations.
	var total int64
	mem := vfs.NewMem()
	efs := vfs.WithErrors(mem, nil)
	l := build(efs, newClock())
	before := contents(t, l)
	efs.Inj = vfs.InjectorFunc(func(vfs.Op) error { total++; return nil })
	st := cleanAll(t, NewCleaner(1<<20), l, CleanOptions{DeleteRetention: time.Hour})
	efs.Inj = nil
	want := contents(t, l)
	if st.SegmentsAfter >= st.Segments {
		t.Fatalf("stats %+v: the clean under test merges no segments", st)
	}
	l.Close()
	if total < 10 {
		t.Fatalf("a clean took only %d operations", total)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := int64(1); n <= total+1; n++ {
		for variant := range 3 {
			mem := vfs.NewMem()
			efs := vfs.WithErrors(mem, nil)
			clk := newClock()
			l := build(efs, clk)
			var crashed *vfs.MemFS
			var seen int64
			efs.Inj = vfs.InjectorFunc(func(vfs.Op) error {
				seen++
				if seen == n && crashed == nil {
					if variant == 0 {
						crashed = mem.Crash()
					} else {
						crashed = mem.CrashPartial(rng)
					}
				}
				return nil
			})
			cleanAll(t, NewCleaner(1<<20), l, CleanOptions{DeleteRetention: time.Hour})
			efs.Inj = nil
			if crashed == nil {
				crashed = mem.Crash()
			}
			l.abandon()
			r, err := Open(crashed, dir, cfg, clk.now)
			if err != nil {
				t.Fatalf("crash before op %d (variant %d): reopen: %v", n, variant, err)
			}
			got := contents(t, r)
			checkSubset(t, got, before)
			cleanAll(t, NewCleaner(1<<20), r, CleanOptions{DeleteRetention: time.Hour})
			if got := contents(t, r); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("crash before op %d (variant %d): after a clean on restart\n%v\nwant\n%v", n, variant, got, want)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCleanBoundedByRecoveryPoint is issue 8's item 4: a clean must not remove a synced
// record because a newer record of its key exists that is not synced yet. The cleaned
// segment is fsynced before it is swapped in; the newer record's segment is not, so a
// crash would lose both. Segments here are too big to merge, so the newer records are
// not copied into the cleaned segment.
func TestCleanBoundedByRecoveryPoint(t *testing.T) {
	mem := vfs.NewMem()
	clk := newClock()
	cfg := Config{SegmentBytes: 150}
	l, err := Open(mem, dir, cfg, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	ts := clk.now().UnixMilli()
	appendKV(t, l, ts, "a=old-value-of-a", "b=old-value-of-b")
	roll(t, l)
	if err := l.Flush(); err != nil { // segment 0 is synced, the recovery point is 2
		t.Fatal(err)
	}
	appendKV(t, l, ts, "a=new-value-of-a", "b=new-value-of-b")
	roll(t, l) // segment 2 is inactive but not synced
	appendKV(t, l, ts, "c=1")
	st, err := NewCleaner(1<<20).Clean(l, CleanOptions{HighWatermark: l.LogEndOffset()})
	if err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash()
	l.abandon()
	r, err := Open(crashed, dir, cfg, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := contents(t, r)
	want := []string{"0:a=old-value-of-a", "1:b=old-value-of-b"}
	if !slices.Equal(got[:min(2, len(got))], want) {
		t.Fatalf("after a clean (%+v) and a crash the log holds %v, want it to start with %v", st, got, want)
	}
}
