package log

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
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

// TestCrashNeverRefuses: whatever mix of appends (with leader epochs), rolls, flushes,
// cleans, truncations, retention and log start moves precedes a machine crash, recovery finds no
// corruption below the recovery point (Open succeeds without the operator's flag), the
// log end is at least what was synced, and the recovered records are records that were
// written at those offsets. Not deterministic: MemFS.CrashPartial draws from the seed's
// rng in map order.
func TestCrashNeverRefuses(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 16))
		mem := vfs.NewMem()
		clk := newClock()
		cfg := Config{SegmentBytes: 200, IndexIntervalBytes: int32(1 + rng.IntN(100)),
			RetentionBytes: int64(rng.IntN(2)) * 600, FileDeleteDelay: time.Duration(rng.IntN(2)) * time.Minute}
		l, err := Open(mem, dir, cfg, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		written := map[int64][]string{} // offset -> every record written there (a truncation not yet synced may come back)
		epoch := int32(0)
		c := NewCleaner(1 << 20)
		for range 20 + rng.IntN(40) {
			switch op := rng.IntN(20); {
			case op < 10:
				var recs []batch.Record
				for range 1 + rng.IntN(3) {
					recs = append(recs, batch.Record{Timestamp: clk.now().UnixMilli(),
						Key: fmt.Appendf(nil, "k%d", rng.IntN(4)), Value: fmt.Appendf(nil, "v%d", rng.IntN(1000))})
				}
				// As a leader does on each append (Kafka's maybeAssignEpochStartOffset): a
				// truncation may have dropped the epoch's entry.
				if err := l.AssignEpoch(epoch, l.LogEndOffset()); err != nil {
					t.Fatal(err)
				}
				raw, err := batch.Build(batch.BuildOptions{BaseOffset: l.LogEndOffset(), PartitionLeaderEpoch: epoch}, recs)
				b := batch.Batch(raw)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
				for i, r := range recs {
					o := b.BaseOffset() + int64(i)
					written[o] = append(written[o], fmt.Sprintf("%s=%s", r.Key, r.Value))
				}
			case op == 10:
				roll(t, l)
			case op == 11 || op == 12:
				flush(t, l)
			case op == 13:
				if err := l.FlushIfDue(); err != nil {
					t.Fatal(err)
				}
			case op == 14 || op == 15:
				if _, err := c.Clean(l, CleanOptions{HighWatermark: l.LogEndOffset()}); err != nil {
					t.Fatal(err)
				}
			case op == 16:
				if err := l.TruncateTo(rng.Int64N(l.LogEndOffset() + 1)); err != nil {
					t.Fatal(err)
				}
			case op == 17:
				if err := l.SetLogStartOffset(rng.Int64N(l.LogEndOffset() + 1)); err != nil {
					t.Fatal(err)
				}
			case op == 18:
				epoch++
				if err := l.AssignEpoch(epoch, l.LogEndOffset()); err != nil {
					t.Fatal(err)
				}
			case op == 19:
				clk.add(time.Minute)
				if _, err := l.EnforceRetention(); err != nil {
					t.Fatal(err)
				}
			}
		}
		synced := l.RecoveryPoint()
		var crashed *vfs.MemFS
		if seed%3 == 0 {
			crashed = mem.Crash()
		} else {
			crashed = mem.CrashPartial(rng)
		}
		l.abandon()
		r, err := Open(crashed, dir, cfg, clk.now)
		if err != nil {
			t.Fatalf("seed %d: Open after a crash: %v", seed, err)
		}
		if r.LogEndOffset() < synced {
			t.Fatalf("seed %d: log end %d below the recovery point %d", seed, r.LogEndOffset(), synced)
		}
		for _, rec := range contents(t, r) {
			off, kv, _ := strings.Cut(rec, ":")
			var o int64
			fmt.Sscan(off, &o)
			if !slices.Contains(written[o], kv) {
				t.Fatalf("seed %d: recovered %s, written there: %q", seed, rec, written[o])
			}
		}
		if err := r.Append(mkBatch(t, r.LogEndOffset(), 1, 0, 3)); err != nil {
			t.Fatalf("seed %d: append after recovery: %v", seed, err)
		}
		r.Close()
	}
}
