package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

const seg0 = "00000000000000000000.log"

// TestRecoverTornTail damages the active segment as a crash or a bad disk may, then
// reopens without a clean shutdown: the log must end exactly before the first damaged
// batch and accept appends again.
func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage changes the segment holding bs; it returns how many batches survive.
		damage func(f vfs.File, size int64, bs []batch.Batch) int
	}{
		{"partial last batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			f.Truncate(size - 10)
			return len(bs) - 1
		}},
		{"only a few header bytes of the last batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			f.Truncate(size - int64(len(bs[len(bs)-1])) + 7)
			return len(bs) - 1
		}},
		{"garbage after the last batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			f.WriteAt(bytes.Repeat([]byte{0xab}, 300), size)
			return len(bs)
		}},
		{"zeros after the last batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			f.WriteAt(make([]byte, 4096), size)
			return len(bs)
		}},
		{"flipped CRC byte in the last batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			flip(f, size-int64(len(bs[len(bs)-1]))+18)
			return len(bs) - 1
		}},
		{"flipped record byte in a middle batch", func(f vfs.File, size int64, bs []batch.Batch) int {
			pos := int64(0)
			for _, b := range bs[:5] {
				pos += int64(len(b))
			}
			flip(f, pos+100)
			return 5
		}},
		{"a valid batch whose offsets go backwards", func(f vfs.File, size int64, bs []batch.Batch) int {
			f.WriteAt(bs[0], size)
			return len(bs)
		}},
		{"a length field larger than the file", func(f vfs.File, size int64, bs []batch.Batch) int {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], 1<<30)
			f.WriteAt(b[:], size-int64(len(bs[len(bs)-1]))+8)
			return len(bs) - 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{IndexIntervalBytes: 200})
			bs := h.appendN(10, 3, 40)
			var keep int
			h.mutateFile(seg0, func(f vfs.File, size int64) { keep = tc.damage(f, size, bs) })
			h.kill()
			checkContent(t, h.log, bs[:keep])
			if keep == 0 && h.log.LogEndOffset() != 0 {
				t.Fatalf("log end %d", h.log.LogEndOffset())
			}
			more := h.appendN(3, 2, 40)
			want := append(bs[:keep:keep], more...)
			checkContent(t, h.log, want)
			h.kill()
			checkContent(t, h.log, want)
			h.reopen()
			checkContent(t, h.log, want)
		})
	}
}

func flip(f vfs.File, pos int64) {
	var b [1]byte
	f.ReadAt(b[:], pos)
	b[0] ^= 0x10
	f.WriteAt(b[:], pos)
}

// TestRecoverLaterSegmentsDropped: a torn batch in a segment invalidates every later one.
func TestRecoverLaterSegmentsDropped(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	bs := h.appendN(7, 2, 150) // segments at 0, 4, 8, 12
	h.mutateFile("00000000000000000004.log", func(f vfs.File, size int64) { f.Truncate(size - 1) })
	h.kill() // no flush happened: the recovery point is 0, every segment is scanned
	checkContent(t, h.log, bs[:3])
	if h.log.NumSegments() != 2 {
		t.Fatalf("%d segments, want 2", h.log.NumSegments())
	}
}

// TestRecoveryPointSkipsSyncedSegments: after a flush, an unclean restart trusts the
// synced segments (their damage goes unnoticed until read) and scans the active one.
func TestRecoveryPointSkipsSyncedSegments(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	bs := h.appendN(7, 2, 150)
	if err := h.log.FlushIfDue(); err != nil { // rolled segments are due
		t.Fatal(err)
	}
	more := h.appendN(1, 2, 150) // the active segment at 12 has two batches
	h.mutateFile("00000000000000000012.log", func(f vfs.File, size int64) { f.Truncate(size - 1) })
	h.kill()
	checkContent(t, h.log, bs)
	_ = more
}

// TestRebuildIndexes damages index files of a cleanly closed log: they must be detected
// and rebuilt, and lookups must stay right.
func TestRebuildIndexes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		damage func(f vfs.File, size int64)
	}{
		{"torn offset index entry", ".index", func(f vfs.File, size int64) { f.Truncate(size - 3) }},
		{"garbage offset index", ".index", func(f vfs.File, size int64) { f.WriteAt(bytes.Repeat([]byte{0xff}, 64), 0) }},
		{"empty offset index", ".index", func(f vfs.File, size int64) { f.Truncate(0) }},
		{"offset index pointing inside batches", ".index", func(f vfs.File, size int64) {
			var e [8]byte
			for i := int64(0); i < size; i += 8 {
				f.ReadAt(e[:], i)
				binary.BigEndian.PutUint32(e[4:], binary.BigEndian.Uint32(e[4:])+7)
				f.WriteAt(e[:], i)
			}
		}},
		{"offset index past the segment", ".index", func(f vfs.File, size int64) {
			var e [8]byte
			binary.BigEndian.PutUint32(e[:], 1000)
			binary.BigEndian.PutUint32(e[4:], 1<<20)
			f.WriteAt(e[:], size)
		}},
		{"torn time index", ".timeindex", func(f vfs.File, size int64) { f.Truncate(size - 5) }},
		{"time index going backwards", ".timeindex", func(f vfs.File, size int64) {
			f.WriteAt(make([]byte, 12), size)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{IndexIntervalBytes: 100})
			var bs []batch.Batch
			for i := range 30 {
				b := mkBatch(t, h.log.LogEndOffset(), 2, int64(1000+10*i), 40)
				if err := h.log.Append(b); err != nil {
					t.Fatal(err)
				}
				bs = append(bs, b)
			}
			h.log.Close()
			h.mutateFile("00000000000000000000"+tc.file, tc.damage)
			h.open()
			checkContent(t, h.log, bs)
			for i := range 30 {
				off, _, found, err := h.log.OffsetForTimestamp(int64(1000 + 10*i))
				if err != nil || !found || off != int64(2*i) {
					t.Fatalf("OffsetForTimestamp(%d) = %d %v %v", 1000+10*i, off, found, err)
				}
			}
			if off, ts, _ := h.log.MaxTimestamp(); off != 59 || ts != 1291 {
				t.Fatalf("MaxTimestamp = %d@%d", off, ts)
			}
		})
	}
}

// TestCrashMidAppend runs appends, rolls and flushes over the in-memory filesystem and
// crashes it at random points, keeping only synced data or a torn prefix of the rest.
// The recovered log must hold a prefix of what was appended, at least everything flushed.
func TestCrashMidAppend(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := vfs.NewMem()
		clk := newClock()
		cfg := Config{SegmentBytes: 1500, IndexIntervalBytes: 300, FlushIntervalMessages: int64(rng.IntN(20))}
		l, err := Open(mem, dir, cfg, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		var bs []batch.Batch
		flushed := 0
		for range rng.IntN(30) {
			b := mkBatch(t, l.LogEndOffset(), 1+rng.IntN(4), clk.now().UnixMilli(), rng.IntN(200))
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
			if cfg.FlushIntervalMessages > 0 && l.unflushedRecords == 0 {
				flushed = len(bs)
			}
			switch rng.IntN(10) {
			case 0:
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
				flushed = len(bs)
			case 1:
				if err := l.FlushIfDue(); err != nil {
					t.Fatal(err)
				}
			}
		}
		var crashed *vfs.MemFS
		if seed%4 == 0 {
			crashed = mem.Crash()
		} else {
			crashed = mem.CrashPartial(rng)
		}
		l.abandon()
		r, err := Open(crashed, dir, cfg, clk.now)
		if err != nil {
			t.Fatalf("seed %d: Open after crash: %v", seed, err)
		}
		got := readBatches(t, r, r.LogStartOffset(), 1<<62, 1<<40, true)
		if len(got) < flushed || len(got) > len(bs) {
			t.Fatalf("seed %d: recovered %d batches, flushed %d of %d", seed, len(got), flushed, len(bs))
		}
		checkContent(t, r, bs[:len(got)])
		b := mkBatch(t, r.LogEndOffset(), 2, 0, 10)
		if err := r.Append(b); err != nil {
			t.Fatalf("seed %d: append after recovery: %v", seed, err)
		}
		checkContent(t, r, append(bs[:len(got):len(got)], b))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInjectedErrors fails writes and syncs: the failing call reports the error, and the
// log is poisoned: every later append, flush and read answers it (a retried fsync could
// report success for data the failed one dropped), until the log is opened again, when
// it holds its previous content and appends resume.
func TestInjectedErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		inj  vfs.Injector
		want error
		torn bool
	}{
		{"log write", vfs.FailNth(vfs.OpWrite, 1), vfs.ErrInjected, false},
		{"torn log write", vfs.FailNth(vfs.OpWrite, 1), vfs.ErrInjected, true},
		{"index write", vfs.FailNth(vfs.OpWrite, 2), vfs.ErrInjected, true},
		{"short log write", vfs.InjectorFunc(func(op vfs.Op) error {
			if op.Kind == vfs.OpWrite {
				return &vfs.Partial{N: op.Len - 1}
			}
			return nil
		}), vfs.ErrInjected, false},
		{"disk full", vfs.NewDiskFull(30), syscall.ENOSPC, false},
		{"sync", vfs.FailNth(vfs.OpSync, 1), vfs.ErrInjected, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			efs := vfs.WithErrors(mem, nil)
			efs.TornWrites = tc.torn
			clk := newClock()
			cfg := Config{IndexIntervalBytes: 1, FlushIntervalMessages: 1}
			l, err := Open(efs, dir, cfg, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			bs := []batch.Batch{mkBatch(t, 0, 2, 0, 50), mkBatch(t, 2, 2, 0, 50)}
			for _, b := range bs {
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			efs.Inj = tc.inj
			next := mkBatch(t, 4, 2, 0, 50)
			err = l.Append(next)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrStorage) {
				t.Fatalf("Append = %v, want the injected error as a storage error", err)
			}
			efs.Inj = nil // the disk recovers; the log stays poisoned
			if err := l.Append(mkBatch(t, l.LogEndOffset(), 2, 0, 50)); !errors.Is(err, tc.want) {
				t.Fatalf("append after the failure = %v, want the first error", err)
			}
			if err := l.Flush(); !errors.Is(err, tc.want) {
				t.Fatalf("flush after the failure = %v, want the first error", err)
			}
			if _, err := l.Read(0, 1<<62, 1<<20, true); !errors.Is(err, ErrStorage) {
				t.Fatalf("read after the failure = %v, want a storage error", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if exists(mem, cleanShutdownFile) {
				t.Fatal("a poisoned log wrote the clean-shutdown marker")
			}
			r, err := Open(mem, dir, cfg, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			checkContent(t, r, bs)
			if err := r.Append(next); err != nil {
				t.Fatalf("append after reopening: %v", err)
			}
			checkContent(t, r, append(bs, next))
		})
	}
}

// TestCrashWithRetention adds log start offset moves and size retention to random
// crashes: what survives is a contiguous run of the appended batches that holds every
// flushed batch at or above the durable log start offset.
func TestCrashWithRetention(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		mem := vfs.NewMem()
		clk := newClock()
		cfg := Config{SegmentBytes: 1200, IndexIntervalBytes: 200}
		l, err := Open(mem, dir, cfg, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		var bs []batch.Batch
		flushed := 0
		for range 10 + rng.IntN(30) {
			b := mkBatch(t, l.LogEndOffset(), 1+rng.IntN(3), clk.now().UnixMilli(), rng.IntN(150))
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
			switch rng.IntN(8) {
			case 0:
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
				flushed = len(bs)
			case 1:
				if err := l.SetLogStartOffset(rng.Int64N(l.LogEndOffset() + 1)); err != nil {
					t.Fatal(err)
				}
			case 2:
				l.SetConfig(Config{SegmentBytes: 1200, IndexIntervalBytes: 200, RetentionBytes: 2000})
				if _, err := l.EnforceRetention(); err != nil {
					t.Fatal(err)
				}
			}
		}
		durableStart := l.LogStartOffset() // every change of it is persisted at once
		crashed := mem.CrashPartial(rng)
		l.abandon()
		r, err := Open(crashed, dir, cfg, clk.now)
		if err != nil {
			t.Fatalf("seed %d: Open after crash: %v", seed, err)
		}
		if r.LogStartOffset() != durableStart && r.LogStartOffset() != r.LogEndOffset() {
			t.Fatalf("seed %d: log start %d, durable %d", seed, r.LogStartOffset(), durableStart)
		}
		got := readBatches(t, r, r.LogStartOffset(), 1<<62, 1<<40, true)
		i := slices.IndexFunc(bs, func(b batch.Batch) bool { return len(got) > 0 && b.BaseOffset() == got[0].BaseOffset() })
		if len(got) > 0 && i < 0 {
			t.Fatalf("seed %d: recovered batch at %d was never appended", seed, got[0].BaseOffset())
		}
		for k, b := range got {
			if !bytes.Equal(b, bs[i+k]) {
				t.Fatalf("seed %d: recovered batch %d differs", seed, k)
			}
		}
		// Every flushed batch at or above the durable start survived.
		for _, b := range bs[:flushed] {
			if b.LastOffset() >= durableStart && b.LastOffset() >= r.LogEndOffset() {
				t.Fatalf("seed %d: flushed batch %d-%d lost (log end %d)", seed, b.BaseOffset(), b.LastOffset(), r.LogEndOffset())
			}
		}
		if err := r.Append(mkBatch(t, r.LogEndOffset(), 1, 0, 5)); err != nil {
			t.Fatalf("seed %d: append after recovery: %v", seed, err)
		}
		r.Close()
	}
}

// TestTruncateLowersRecoveryPoint: segments written after a truncation below the
// recovery point are unsynced and must be scanned after an unclean stop.
func TestTruncateLowersRecoveryPoint(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	h.appendN(8, 2, 150) // segments 0, 4, 8, 12
	if err := h.log.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := h.log.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	bs := h.appendN(5, 2, 150) // segments 0, 4, 8 again, unsynced
	h.mutateFile("00000000000000000000.log", func(f vfs.File, size int64) { flip(f, size-5) })
	h.kill()
	checkContent(t, h.log, bs[:1])
}

// TestFailedUndoNotResurrected: an append that failed after writing its batch, and
// whose undo failed too, must not reappear after a clean close and open.
func TestFailedUndoNotResurrected(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.WithErrors(mem, nil)
	clk := newClock()
	cfg := Config{IndexIntervalBytes: 1}
	l, err := Open(efs, dir, cfg, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	bs := []batch.Batch{mkBatch(t, 0, 2, 0, 50), mkBatch(t, 2, 2, 0, 50)}
	for _, b := range bs {
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	writes, truncates := vfs.FailNth(vfs.OpWrite, 2), vfs.FailFrom(vfs.OpTruncate, 1)
	efs.Inj = vfs.InjectorFunc(func(op vfs.Op) error {
		if err := writes.MaybeError(op); err != nil {
			return err
		}
		return truncates.MaybeError(op)
	})
	// The batch is written, its index entry fails, and cutting the batch off fails.
	if err := l.Append(mkBatch(t, 4, 2, 0, 50)); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Append = %v", err)
	}
	efs.Inj = nil
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The failure poisoned the log, so it closed without the clean-shutdown marker and
	// Open scans it: the batch is whole in the file, and a scan may keep it (as Kafka's
	// would; the producer's retry is then a duplicate), but nothing beyond it.
	r, err := Open(mem, dir, cfg, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.LogEndOffset() > 4 {
		checkContent(t, r, append(bs, mkBatch(t, 4, 2, 0, 50)))
	} else {
		checkContent(t, r, bs)
	}
}
