package log

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// lookupLog is a log of several segments and the batches appended to it.
type lookupLog struct {
	h    *harness
	bs   []batch.Batch
	recs []batch.Record // of bs, decoded by firstAtOrAfter
}

// newLookupLog appends n batches of 1 to 5 records; ts gives each batch's first
// timestamp.
func newLookupLog(t *testing.T, cfg Config, n int, rng *rand.Rand, ts func(i int) int64) *lookupLog {
	t.Helper()
	ll := &lookupLog{h: newHarness(t, cfg)}
	for i := range n {
		b := mkBatch(t, ll.h.log.LogEndOffset(), 1+rng.IntN(5), ts(i), rng.IntN(100))
		if err := ll.h.log.Append(b); err != nil {
			t.Fatal(err)
		}
		ll.bs = append(ll.bs, b)
	}
	return ll
}

// holding returns the batch holding offset.
func (ll *lookupLog) holding(offset int64) batch.Batch {
	for _, b := range ll.bs {
		if b.LastOffset() >= offset {
			return b
		}
	}
	return nil
}

// firstAtOrAfter is OffsetForTimestamp by a linear scan of every record.
func (ll *lookupLog) firstAtOrAfter(t *testing.T, ts int64) (int64, int64, bool) {
	t.Helper()
	if n := len(ll.recs); n == 0 || ll.recs[n-1].Offset != ll.bs[len(ll.bs)-1].LastOffset() {
		ll.recs = ll.recs[:0]
		for _, b := range ll.bs {
			recs, err := batch.Records(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			ll.recs = append(ll.recs, recs...)
		}
	}
	for _, r := range ll.recs {
		if r.Timestamp >= ts {
			return r.Offset, r.Timestamp, true
		}
	}
	return 0, 0, false
}

// checkRead asserts Read at offset starts with the batch holding it.
func (ll *lookupLog) checkRead(t *testing.T, offset int64) {
	t.Helper()
	l := ll.h.log
	got := readBatches(t, l, offset, l.LogEndOffset(), 1, true)
	if want := ll.holding(offset); len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("Read(%d) returned %d batches, the first not the one at %d", offset, len(got), want.BaseOffset())
	}
}

// checkTimestamp asserts OffsetForTimestamp(ts) agrees with a linear scan.
func (ll *lookupLog) checkTimestamp(t *testing.T, ts int64) {
	t.Helper()
	off, rts, found, err := ll.h.log.OffsetForTimestamp(ts)
	if err != nil {
		t.Fatalf("OffsetForTimestamp(%d): %v", ts, err)
	}
	wOff, wTs, wFound := ll.firstAtOrAfter(t, ts)
	if found != wFound || found && (off != wOff || rts != wTs) {
		t.Fatalf("OffsetForTimestamp(%d) = %d@%d %v, want %d@%d %v", ts, off, rts, found, wOff, wTs, wFound)
	}
}

// inactive returns the inactive segments' base offsets and their index entry counts.
func inactive(l *Log) (bases []int64, nIndex, nTimes int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs[:len(l.segs)-1] {
		bases = append(bases, s.base)
		nIndex += s.nIndex
		nTimes += s.nTimes
	}
	return bases, nIndex, nTimes
}

// TestInactiveSegmentLookups reads at random offsets and looks up random timestamps in
// a log of several inactive segments, comparing with a linear scan, before and after a
// clean and an unclean restart. Segments hold no index entries in memory but the active
// one (checkContent asserts it).
func TestInactiveSegmentLookups(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		n    int
		ts   func(rng *rand.Rand, i int) int64
	}{
		// Timestamps jump around: the time index has few entries.
		{"random timestamps", Config{SegmentBytes: 6000, IndexIntervalBytes: 150}, 300,
			func(rng *rand.Rand, i int) int64 { return 1000 + rng.Int64N(5000) }},
		// An entry per batch and timestamps rising: files of more than a search read's
		// worth of entries, so the binary search probes before it reads a range.
		{"large index files", Config{SegmentBytes: 400_000, IndexIntervalBytes: 1}, 7000,
			func(rng *rand.Rand, i int) int64 { return 1000 + 10*int64(i) + rng.Int64N(15) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ll := newLookupLog(t, tc.cfg, tc.n, rng, func(i int) int64 { return tc.ts(rng, i) })
			bases, nIndex, nTimes := inactive(ll.h.log)
			if len(bases) < 3 || nIndex == 0 || nTimes == 0 {
				t.Fatalf("%d inactive segments with %d+%d index entries: the test needs more", len(bases), nIndex, nTimes)
			}
			if tc.cfg.IndexIntervalBytes == 1 && nIndex/len(bases)*indexEntrySize < 2*indexSearchBytes {
				t.Fatalf("%d offset index entries per segment: too few to probe", nIndex/len(bases))
			}
			minTs, maxTs := int64(1<<62), int64(0)
			for _, b := range ll.bs {
				minTs, maxTs = min(minTs, b.BaseTimestamp()), max(maxTs, b.MaxTimestamp())
			}
			check := func() {
				t.Helper()
				checkIndexMemory(t, ll.h.log)
				leo := ll.h.log.LogEndOffset()
				for range 400 {
					ll.checkRead(t, rng.Int64N(leo))
				}
				for range 200 {
					ll.checkTimestamp(t, minTs-10+rng.Int64N(maxTs-minTs+20))
				}
				for _, b := range ll.bs[:20] { // every batch boundary of the first segment
					ll.checkRead(t, b.BaseOffset())
					ll.checkTimestamp(t, b.MaxTimestamp())
				}
				if _, gotNIndex, gotNTimes := inactive(ll.h.log); gotNIndex != nIndex || gotNTimes != nTimes {
					t.Fatalf("inactive segments now count %d+%d entries, had %d+%d: an index was rebuilt", gotNIndex, gotNTimes, nIndex, nTimes)
				}
			}
			check()
			ll.h.reopen()
			check()
			ll.h.kill()
			check()
		})
	}
}

// TestLyingInactiveIndex damages an inactive segment's index files while the log is open,
// as a bad disk or a stray write would, in ways no check at open could see: lookups must
// notice at the batch an entry names, still answer right, and rebuild the files.
func TestLyingInactiveIndex(t *testing.T) {
	// eachEntry rewrites every entry of an index file of entries of size sz.
	eachEntry := func(sz int, fn func(i int, e, next []byte)) func(f vfs.File, size int64) {
		return func(f vfs.File, size int64) {
			data := make([]byte, size)
			f.ReadAt(data, 0)
			orig := bytes.Clone(data)
			for i := 0; i+sz <= len(data); i += sz {
				var next []byte
				if i+2*sz <= len(orig) {
					next = orig[i+sz : i+2*sz]
				}
				fn(i/sz, data[i:i+sz], next)
			}
			f.WriteAt(data, 0)
		}
	}
	for _, tc := range []struct {
		name   string
		suffix string
		damage func(f vfs.File, size int64)
	}{
		{"positions of the next entry", indexSuffix, eachEntry(indexEntrySize, func(i int, e, next []byte) {
			if next != nil {
				copy(e[4:], next[4:])
			}
		})},
		{"positions of two entries swapped", indexSuffix, func(f vfs.File, size int64) {
			var a, b [4]byte
			f.ReadAt(a[:], 8+4)
			f.ReadAt(b[:], 16+4)
			f.WriteAt(b[:], 8+4)
			f.WriteAt(a[:], 16+4)
		}},
		{"positions past the segment", indexSuffix, eachEntry(indexEntrySize, func(i int, e, next []byte) {
			binary.BigEndian.PutUint32(e[4:], 1<<30+uint32(i))
		})},
		{"zeroed offset index", indexSuffix, eachEntry(indexEntrySize, func(i int, e, next []byte) { clear(e) })},
		{"offset index cut short", indexSuffix, func(f vfs.File, size int64) { f.Truncate(size / 2) }},
		{"empty offset index", indexSuffix, func(f vfs.File, size int64) { f.Truncate(0) }},
		{"timestamps lowered", timeIndexSuffix, eachEntry(timeEntrySize, func(i int, e, next []byte) {
			binary.BigEndian.PutUint64(e, binary.BigEndian.Uint64(e)-3)
		})},
		{"offsets of the next entry", timeIndexSuffix, eachEntry(timeEntrySize, func(i int, e, next []byte) {
			if next != nil {
				copy(e[8:], next[8:])
			}
		})},
		{"offsets past the segment", timeIndexSuffix, eachEntry(timeEntrySize, func(i int, e, next []byte) {
			binary.BigEndian.PutUint32(e[8:], 1<<30)
		})},
		{"time index cut short", timeIndexSuffix, func(f vfs.File, size int64) { f.Truncate(size / 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			ll := newLookupLog(t, Config{SegmentBytes: 8000, IndexIntervalBytes: 100}, 200, rng,
				func(i int) int64 { return 1000 + 10*int64(i) })
			ll.h.reopen()
			bases, _, _ := inactive(ll.h.log)
			if len(bases) < 3 {
				t.Fatalf("%d inactive segments", len(bases))
			}
			base := bases[1]
			name := segmentName(base, tc.suffix)
			orig, err := vfs.ReadFile(ll.h.fs, dir+"/"+name, 1<<20)
			if err != nil || len(orig) < 3*timeEntrySize {
				t.Fatalf("%s: %d bytes, %v", name, len(orig), err)
			}
			ll.h.mutateFile(name, tc.damage)

			// Every offset and timestamp of the damaged segment and its neighbours.
			for _, b := range ll.bs {
				if b.BaseOffset() < bases[0] || b.BaseOffset() >= bases[3] {
					continue
				}
				for o := b.BaseOffset(); o <= b.LastOffset(); o++ {
					ll.checkRead(t, o)
				}
				ll.checkTimestamp(t, b.BaseTimestamp())
				ll.checkTimestamp(t, b.MaxTimestamp()+1)
			}
			if off, ts, err := ll.h.log.MaxTimestamp(); err != nil || ts != ll.bs[len(ll.bs)-1].MaxTimestamp() {
				t.Fatalf("MaxTimestamp = %d@%d %v", off, ts, err)
			}
			got, err := vfs.ReadFile(ll.h.fs, dir+"/"+name, 1<<20)
			if err != nil || !bytes.Equal(got, orig) {
				t.Fatalf("%s was not rebuilt: %d bytes, %v", name, len(got), err)
			}
			checkIndexMemory(t, ll.h.log)
			checkContent(t, ll.h.log, ll.bs)
			ll.h.reopen()
			checkContent(t, ll.h.log, ll.bs)
		})
	}
}

// TestTruncateIntoInactiveSegment truncates inside an inactive segment: it becomes the
// active one, with its index entries loaded back from its files (or rebuilt, if they lie)
// and cut at the truncation point, and appends go on indexing it.
func TestTruncateIntoInactiveSegment(t *testing.T) {
	for _, lie := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(5, 6))
		ll := newLookupLog(t, Config{SegmentBytes: 5000, IndexIntervalBytes: 120}, 150, rng,
			func(i int) int64 { return 1000 + 10*int64(i) })
		bases, _, _ := inactive(ll.h.log)
		if len(bases) < 4 {
			t.Fatalf("%d inactive segments", len(bases))
		}
		if lie {
			ll.h.mutateFile(segmentName(bases[2], indexSuffix), func(f vfs.File, size int64) {
				f.WriteAt(make([]byte, 16), 8)
			})
		}
		// Cut in the middle of segment 2.
		var cut int
		for i, b := range ll.bs {
			if b.BaseOffset() >= bases[2] && i > 0 && ll.bs[i-1].BaseOffset() >= bases[2] {
				if cut == 0 || rng.IntN(3) == 0 && b.BaseOffset() < bases[3]-5 {
					cut = i
				}
			}
		}
		if err := ll.h.log.TruncateTo(ll.bs[cut].BaseOffset()); err != nil {
			t.Fatal(err)
		}
		ll.bs = ll.bs[:cut]
		checkContent(t, ll.h.log, ll.bs)
		for range 40 {
			b := mkBatch(t, ll.h.log.LogEndOffset(), 1+rng.IntN(5), 5000+rng.Int64N(100), rng.IntN(100))
			if err := ll.h.log.Append(b); err != nil {
				t.Fatal(err)
			}
			ll.bs = append(ll.bs, b)
		}
		checkContent(t, ll.h.log, ll.bs)
		for range 100 {
			ll.checkTimestamp(t, 900+rng.Int64N(4500))
		}
		ll.h.reopen()
		checkContent(t, ll.h.log, ll.bs)
	}
}

// TestInactiveLookupsDuringChanges reads inactive segments from several goroutines while
// one of them has lying index files, which a reader rebuilds, and the log is truncated
// into another and appended to. Run with -race.
func TestInactiveLookupsDuringChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ll := newLookupLog(t, Config{SegmentBytes: 5000, IndexIntervalBytes: 100}, 300, rng,
		func(i int) int64 { return 1000 + 10*int64(i) })
	bases, _, _ := inactive(ll.h.log)
	if len(bases) < 7 {
		t.Fatalf("%d inactive segments", len(bases))
	}
	// Below stable nothing changes, nor does the segment starting there, whose first
	// batch a read up to stable looks at.
	stable := bases[4]
	var safe []batch.Batch
	for _, b := range ll.bs {
		if b.LastOffset() < stable {
			safe = append(safe, b)
		}
	}
	var wg sync.WaitGroup
	var lookups atomic.Int64
	done := make(chan struct{})
	errs := make(chan string, 8)
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-done:
					return
				default:
				}
				b := safe[rng.IntN(len(safe))]
				off := b.BaseOffset() + rng.Int64N(int64(b.LastOffsetDelta())+1)
				got, err := collect(ll.h.log, off, stable, 1, true)
				if err != nil {
					errs <- err.Error()
					return
				}
				if len(got) != 1 || !bytes.Equal(got[0], b) {
					errs <- "read does not return the batch holding the offset"
					return
				}
				o, _, found, err := ll.h.log.OffsetForTimestamp(b.BaseTimestamp())
				if err != nil || !found || o != b.BaseOffset() {
					errs <- "OffsetForTimestamp does not find the batch's first record"
					return
				}
				lookups.Add(1)
			}
		})
	}
	ll.h.mutateFile(segmentName(bases[1], indexSuffix), func(f vfs.File, size int64) {
		f.WriteAt(bytes.Repeat([]byte{0x01}, int(size)), 0)
	})
	// Go on until the readers have done a good number of lookups meanwhile.
	for i := 0; i < 10 || lookups.Load() < 2000; i++ {
		cut := bases[5+i%2] + 2
		if err := ll.h.log.TruncateTo(cut); err != nil {
			t.Fatal(err)
		}
		for range 60 {
			b := mkBatch(t, ll.h.log.LogEndOffset(), 1+rng.IntN(5), 9000, rng.IntN(100))
			if err := ll.h.log.Append(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for _, b := range safe { // finds the lie if no reader did
		collect(ll.h.log, b.BaseOffset(), stable, 1, true)
	}
	checkIndexMemory(t, ll.h.log)
}
