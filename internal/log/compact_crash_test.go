package log

import (
	"fmt"
	"math/rand/v2"
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
