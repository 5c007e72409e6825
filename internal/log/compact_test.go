package log

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// appendKV appends one batch of key=value records ("k=" is a tombstone).
func appendKV(t *testing.T, l *Log, ts int64, kvs ...string) {
	t.Helper()
	appendKVOpts(t, l, batch.BuildOptions{}, ts, kvs...)
}

func appendKVOpts(t *testing.T, l *Log, opts batch.BuildOptions, ts int64, kvs ...string) {
	t.Helper()
	var recs []batch.Record
	for _, kv := range kvs {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		r := batch.Record{Timestamp: ts, Key: k, Value: v}
		if len(v) == 0 {
			r.Value = nil
		}
		recs = append(recs, r)
	}
	opts.BaseOffset = l.LogEndOffset()
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(b); err != nil {
		t.Fatal(err)
	}
}

// contents lists "offset:key=value" of every record from the log start, and checks
// that batch offsets strictly increase and end at the log end offset.
func contents(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	next := int64(-1) // the first batch may start below the log start offset
	bs := readBatches(t, l, l.LogStartOffset(), 1<<62, 1<<40, true)
	for _, b := range bs {
		if b.BaseOffset() < next {
			t.Fatalf("batch at %d after one ending at %d: offsets overlap", b.BaseOffset(), next)
		}
		next = b.LastOffset() + 1
		recs, err := batch.Records(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value))
		}
	}
	if len(bs) > 0 && next != l.LogEndOffset() {
		t.Fatalf("batches end at %d, log end offset %d", next, l.LogEndOffset())
	}
	return out
}

// latest is the model: each key's last record, as "offset:key=value", tombstones too.
func latest(recs []string) []string {
	last := map[string]string{}
	for _, r := range recs {
		_, kv, _ := bytes.Cut([]byte(r), []byte(":"))
		k, _, _ := bytes.Cut(kv, []byte("="))
		last[string(k)] = r
	}
	out := slices.Collect(maps.Values(last))
	slices.SortFunc(out, func(a, b string) int { return cmpOffset(a) - cmpOffset(b) })
	return out
}

func cmpOffset(r string) int {
	var o int
	fmt.Sscanf(r, "%d:", &o)
	return o
}

// flush syncs everything written, so the recovery point reaches the active segment.
func flush(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

func roll(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
}

// cleanAll cleans with a zero dirty ratio up to the log end offset.
func cleanAll(t *testing.T, c *Cleaner, l *Log, opts CleanOptions) CleanStats {
	t.Helper()
	flush(t, l) // the cleaner compacts only below the recovery point
	opts.HighWatermark = l.LogEndOffset()
	st, err := c.Clean(l, opts)
	if err != nil {
		t.Fatalf("Clean: %v", err)
	}
	return st
}

// writeUpdates appends rounds of updates to keys k0..k(keys-1), one batch per round.
func writeUpdates(t *testing.T, l *Log, ts int64, rounds, keys int) {
	t.Helper()
	for r := range rounds {
		var kvs []string
		for k := range keys {
			kvs = append(kvs, fmt.Sprintf("k%d=v%d.%d", k, k, r))
		}
		appendKV(t, l, ts+int64(r), kvs...)
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 400, IndexIntervalBytes: 64, FileDeleteDelay: time.Minute})
	ts := h.clock.now().UnixMilli()
	writeUpdates(t, h.log, ts, 30, 5)
	roll(t, h.log)
	appendKV(t, h.log, ts+100, "k0=final") // the active segment is never cleaned
	before := contents(t, h.log)
	segsBefore := h.log.NumSegments()
	oldRanges, err := h.log.Read(0, 1<<62, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCleaner(1 << 20)
	if st := cleanAll(t, c, h.log, CleanOptions{}); st.RecordsRemoved == 0 {
		t.Fatalf("stats %+v: want records removed", st)
	}
	// As Kafka groups segments by their size before cleaning, full segments are merged
	// on the next clean, once they have shrunk.
	roll(t, h.log)
	appendKV(t, h.log, ts+100, "k1=final")
	roll(t, h.log)
	before = contents(t, h.log)
	if st := cleanAll(t, c, h.log, CleanOptions{}); st.SegmentsAfter >= st.Segments {
		t.Fatalf("stats %+v: want segments merged", st)
	}
	if n := h.log.NumSegments(); n >= segsBefore {
		t.Fatalf("%d segments after cleaning, %d before: small cleaned segments were not grouped", n, segsBefore)
	}
	// The active segment keeps k0=final; the cleaned part holds each key's latest before
	// it, at its original offset.
	got := contents(t, h.log)
	want := latest(before)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after cleaning\n%v\nwant\n%v", got, want)
	}
	// Every offset still reads: a removed one from the next batch that holds records.
	for o := int64(0); o < h.log.LogEndOffset(); o++ {
		bs := readBatches(t, h.log, o, 1<<62, 1, true)
		if len(bs) != 1 || bs[0].LastOffset() < o {
			t.Fatalf("Read(%d) returned %d batches", o, len(bs))
		}
	}
	// Timestamp lookups land on the first kept record at or after the time.
	for _, r := range []int64{ts, ts + 10, ts + 29, ts + 99, ts + 100} {
		off, _, found, err := h.log.OffsetForTimestamp(r)
		if err != nil || !found {
			t.Fatalf("OffsetForTimestamp(%d) = %v %v", r, found, err)
		}
		if want := firstAtOrAfter(t, h.log, r); off != want {
			t.Fatalf("OffsetForTimestamp(%d) = %d, want %d", r, off, want)
		}
	}
	// ListOffsets: the earliest offset does not move, the latest timestamp is the
	// first record with it.
	if lso := h.log.LogStartOffset(); lso != 0 {
		t.Fatalf("log start offset %d after cleaning", lso)
	}
	if off, mts, err := h.log.MaxTimestamp(); err != nil || mts != ts+100 || off != firstAtOrAfter(t, h.log, ts+100) {
		t.Fatalf("MaxTimestamp = %d@%d %v", off, mts, err)
	}
	// A reader that got ranges before the clean still reads the old bytes.
	var buf bytes.Buffer
	if _, err := WriteRanges(&buf, oldRanges); err != nil {
		t.Fatalf("old ranges after cleaning: %v", err)
	}
	// Nothing new is dirty: a second clean does nothing.
	if st := cleanAll(t, c, h.log, CleanOptions{MinCleanableRatio: 0.5}); st.Segments != 0 {
		t.Fatalf("second clean rewrote %d segments", st.Segments)
	}
	h.kill()
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after an unclean restart %v", got)
	}
	h.reopen()
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a clean restart %v", got)
	}
}

// firstAtOrAfter is the model of OffsetForTimestamp: the first record (in log order)
// with a timestamp >= ts.
func firstAtOrAfter(t *testing.T, l *Log, ts int64) int64 {
	t.Helper()
	for _, b := range readBatches(t, l, l.LogStartOffset(), 1<<62, 1<<40, true) {
		recs, err := batch.Records(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Timestamp >= ts {
				return r.Offset
			}
		}
	}
	return -1
}

func TestCleanTombstonesAfterDeleteRetention(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 100})
	ts := h.clock.now().UnixMilli()
	appendKV(t, h.log, ts, "a=1", "b=1")
	appendKV(t, h.log, ts, "a=")
	appendKV(t, h.log, ts, "c=1")
	appendKV(t, h.log, ts, "d=1") // active
	c := NewCleaner(1 << 20)
	opts := CleanOptions{DeleteRetention: time.Hour}
	// Old batch timestamps do not count: the clock starts when the cleaner first
	// cleans the tombstone.
	h.clock.add(10 * time.Hour)
	cleanAll(t, c, h.log, opts)
	want := []string{"1:b=1", "2:a=", "3:c=1", "4:d=1"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the first clean %v, want %v", got, want)
	}
	h.clock.add(59 * time.Minute)
	if info, _ := h.log.Cleanable(opts); info.Needed(0.5) {
		t.Fatalf("clean needed before the tombstone is due: %+v", info)
	}
	cleanAll(t, c, h.log, opts)
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tombstone removed before delete.retention.ms: %v", got)
	}
	h.kill() // the cleaning time survives a restart
	h.clock.add(time.Minute)
	info, err := h.log.Cleanable(opts)
	if err != nil || !info.TombstonesDue || !info.Needed(0.5) {
		t.Fatalf("an expired tombstone does not make the log cleanable: %+v %v", info, err)
	}
	st := cleanAll(t, c, h.log, opts)
	want = []string{"1:b=1", "3:c=1", "4:d=1"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) || st.TombstonesDelete != 1 {
		t.Fatalf("after delete.retention.ms %v (stats %+v), want %v", got, st, want)
	}
	if info, _ := h.log.Cleanable(opts); info.Needed(0.5) {
		t.Fatalf("clean still needed: %+v", info)
	}
}

func TestCleanMinCompactionLag(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 60})
	c := NewCleaner(1 << 20)
	opts := CleanOptions{MinCompactionLag: time.Hour}
	for i := range 3 {
		appendKV(t, h.log, h.clock.now().UnixMilli(), fmt.Sprintf("k=%d", i))
	}
	h.clock.add(2 * time.Hour)
	for i := 3; i < 6; i++ {
		appendKV(t, h.log, h.clock.now().UnixMilli(), fmt.Sprintf("k=%d", i))
	}
	cleanAll(t, c, h.log, opts)
	// Records 3.. are younger than the lag: neither mapped nor removed.
	want := []string{"2:k=2", "3:k=3", "4:k=4", "5:k=5"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	h.clock.add(2 * time.Hour)
	cleanAll(t, c, h.log, opts)
	want = []string{"4:k=4", "5:k=5"} // 5 is in the active segment
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the lag: got %v, want %v", got, want)
	}
}

func TestCleanHighWatermark(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 60})
	for i := range 6 {
		appendKV(t, h.log, h.clock.now().UnixMilli(), fmt.Sprintf("k=%d", i))
	}
	flush(t, h.log)
	if _, err := NewCleaner(1<<20).Clean(h.log, CleanOptions{HighWatermark: 3}); err != nil {
		t.Fatal(err)
	}
	want := []string{"2:k=2", "3:k=3", "4:k=4", "5:k=5"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCleanDirtyRatioAndMaxLag(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 60})
	c := NewCleaner(1 << 20)
	ts := h.clock.now().UnixMilli()
	for i := range 10 {
		appendKV(t, h.log, ts, fmt.Sprintf("k%d=x", i))
	}
	cleanAll(t, c, h.log, CleanOptions{})
	// 9 clean segments, then 2 dirty ones: ratio 2/11.
	appendKV(t, h.log, ts, "k0=y")
	appendKV(t, h.log, ts, "k1=y")
	appendKV(t, h.log, ts, "k2=y") // active
	flush(t, h.log)
	info, err := h.log.Cleanable(CleanOptions{HighWatermark: h.log.LogEndOffset()})
	if err != nil {
		t.Fatal(err)
	}
	if info.DirtyRatio < 0.15 || info.DirtyRatio > 0.25 || info.FirstDirty != 9 {
		t.Fatalf("cleanable %+v", info)
	}
	if st := cleanAll(t, c, h.log, CleanOptions{MinCleanableRatio: 0.5}); st.Segments != 0 {
		t.Fatalf("cleaned below min.cleanable.dirty.ratio: %+v", st)
	}
	if st := cleanAll(t, c, h.log, CleanOptions{MinCleanableRatio: 0.5, MaxCompactionLag: time.Hour}); st.Segments != 0 {
		t.Fatalf("cleaned before max.compaction.lag.ms: %+v", st)
	}
	h.clock.add(2 * time.Hour)
	if st := cleanAll(t, c, h.log, CleanOptions{MinCleanableRatio: 0.5, MaxCompactionLag: time.Hour}); st.RecordsRemoved != 2 {
		t.Fatalf("max.compaction.lag.ms did not force a clean: %+v", st)
	}
	if st := cleanAll(t, c, h.log, CleanOptions{MinCleanableRatio: 0.1}); st.Segments != 0 {
		t.Fatalf("clean with nothing dirty: %+v", st)
	}
}

func TestCleanCompressedBatches(t *testing.T) {
	for _, codec := range []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			h := newHarness(t, Config{SegmentBytes: 300})
			ts := h.clock.now().UnixMilli()
			for r := range 8 {
				appendKVOpts(t, h.log, batch.BuildOptions{Codec: codec}, ts+int64(r),
					fmt.Sprintf("a=%d", r), fmt.Sprintf("b=%d", r), fmt.Sprintf("c%d=%d", r, r))
			}
			roll(t, h.log)
			appendKV(t, h.log, ts, "z=1")
			before := contents(t, h.log)
			cleanAll(t, NewCleaner(1<<20), h.log, CleanOptions{})
			want := append(latest(before[:len(before)-1]), before[len(before)-1])
			if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for _, b := range readBatches(t, h.log, 0, 1<<62, 1<<40, true) {
				if b.LastOffset() < 24 && b.Codec() != codec {
					t.Fatalf("batch %d has codec %v, want %v", b.BaseOffset(), b.Codec(), codec)
				}
			}
		})
	}
}

// TestCleanBoundedMap: a map too small for the dirty section cleans the part that fits
// and the rest on the next rounds, ending where one big map would.
func TestCleanBoundedMap(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 2000})
	ts := h.clock.now().UnixMilli()
	for r := range 3 {
		for k := range 150 {
			appendKV(t, h.log, ts, fmt.Sprintf("key%03d=%d", k, r))
		}
	}
	roll(t, h.log)
	appendKV(t, h.log, ts, "end=1")
	before := contents(t, h.log)
	want := append(latest(before[:len(before)-1]), before[len(before)-1])
	c := NewCleaner(minDedupeBufBytes) // 64 slots: 57 keys
	rounds := 0
	for {
		st := cleanAll(t, c, h.log, CleanOptions{})
		if st.End == 0 {
			break
		}
		rounds++
		if st.End-st.FirstDirty > 57*3 {
			t.Fatalf("round %d mapped %d..%d with a 57-key map", rounds, st.FirstDirty, st.End)
		}
		if rounds > 50 {
			t.Fatal("cleaning does not converge")
		}
	}
	if rounds < 3 {
		t.Fatalf("%d rounds: the map was not bounded", rounds)
	}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after %d rounds\n%v\nwant\n%v", rounds, got, want)
	}
}

// TestCleanKeepsProducerState: an emptied batch that is its producer's last stays, so
// the producer's sequence is found again after a restart; its earlier ones go.
func TestCleanKeepsProducerState(t *testing.T) {
	h := newHarness(t, Config{})
	ts := h.clock.now().UnixMilli()
	p := batch.BuildOptions{Idempotent: true, ProducerID: 7, ProducerEpoch: 1}
	for i := range 3 {
		p.BaseSequence = int32(i)
		appendKVOpts(t, h.log, p, ts, "k=p"+fmt.Sprint(i))
	}
	for i := range 6 {
		appendKV(t, h.log, ts, fmt.Sprintf("k=%d", i))
	}
	roll(t, h.log)
	cleanAll(t, NewCleaner(1<<20), h.log, CleanOptions{})
	var seqs []int32
	h.log.Batches(0, func(b batch.Batch) bool {
		if b.ProducerID() == 7 {
			seqs = append(seqs, b.BaseSequence())
		}
		return true
	})
	if fmt.Sprint(seqs) != "[2]" {
		t.Fatalf("producer 7's batches after cleaning: sequences %v, want its last, [2]", seqs)
	}
}

// TestCleanDoesNotBlockAppends: appends and reads go on while a clean maps and writes;
// only the swap takes the write lock. The hooks run on the cleaning goroutine, so an
// append there would deadlock if the clean held the lock.
func TestCleanDoesNotBlockAppends(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 200})
	ts := h.clock.now().UnixMilli()
	writeUpdates(t, h.log, ts, 10, 3)
	c := NewCleaner(1 << 20)
	appended := 0
	c.hooks.afterMap = func() { appendKV(t, h.log, ts, "k0=during-map"); appended++ }
	c.hooks.beforeSwap = func() {
		appendKV(t, h.log, ts, "k1=during-write")
		appended++
		if _, err := h.log.Read(0, 1<<62, 1<<20, true); err != nil {
			t.Fatalf("read during clean: %v", err)
		}
	}
	before := contents(t, h.log)
	st := cleanAll(t, c, h.log, CleanOptions{})
	if appended < 2 || st.Segments == 0 {
		t.Fatalf("hooks ran %d times, stats %+v", appended, st)
	}
	got := contents(t, h.log)
	if !slices.Contains(got, fmt.Sprintf("%d:k0=during-map", len(before))) {
		t.Fatalf("append during the clean lost: %v", got)
	}
}

// TestCleanInterruptedByRetention: segments deleted under a clean are not swapped back.
func TestCleanInterruptedByRetention(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 60})
	ts := h.clock.now().UnixMilli()
	for i := range 6 {
		appendKV(t, h.log, ts, fmt.Sprintf("k%d=%d", i%2, i))
	}
	c := NewCleaner(1 << 20)
	c.hooks.afterMap = func() {
		if err := h.log.SetLogStartOffset(2); err != nil {
			t.Fatal(err)
		}
	}
	st := cleanAll(t, c, h.log, CleanOptions{})
	if !st.Interrupted {
		t.Fatalf("stats %+v: want an interrupted clean", st)
	}
	c.hooks.afterMap = nil
	cleanAll(t, c, h.log, CleanOptions{})
	want := []string{"3:k1=3", "4:k0=4", "5:k1=5"} // 5 is in the active segment
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestCleanFailedSwap: an I/O error anywhere in a clean leaves a log that reopens with
// every key's latest record and nothing that was not there.
func TestCleanFailedSwap(t *testing.T) {
	for _, kind := range []vfs.OpKind{vfs.OpOpen, vfs.OpWrite, vfs.OpSync, vfs.OpRename, vfs.OpSyncDir} {
		for n := int64(1); n <= 8; n++ {
			mem := vfs.NewMem()
			efs := vfs.WithErrors(mem, nil)
			clk := newClock()
			cfg := Config{SegmentBytes: 60}
			l, err := Open(efs, dir, cfg, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				appendKV(t, l, clk.now().UnixMilli(), fmt.Sprintf("k%d=%d", i%2, i))
			}
			roll(t, l)
			before := contents(t, l)
			flush(t, l)
			efs.Inj = vfs.FailNth(kind, n)
			_, cerr := NewCleaner(1<<20).Clean(l, CleanOptions{HighWatermark: l.LogEndOffset()})
			efs.Inj = nil
			if cerr != nil && !errors.Is(cerr, vfs.ErrInjected) {
				t.Fatalf("%v #%d: %v", kind, n, cerr)
			}
			l.abandon()
			r, err := Open(mem, dir, cfg, clk.now)
			if err != nil {
				t.Fatalf("%v #%d: reopen: %v", kind, n, err)
			}
			checkSubset(t, contents(t, r), before)
			cleanAll(t, NewCleaner(1<<20), r, CleanOptions{})
			if got, want := contents(t, r), []string{"4:k0=4", "5:k1=5"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v #%d: after a retried clean %v, want %v", kind, n, got, want)
			}
			r.Close()
		}
	}
}

// checkSubset asserts got holds every key's latest record of before and only records
// of before, in order.
func checkSubset(t *testing.T, got, before []string) {
	t.Helper()
	for _, keep := range latest(before) {
		if !slices.Contains(got, keep) {
			t.Fatalf("%v lacks %s (before: %v)", got, keep, before)
		}
	}
	for _, g := range got {
		if !slices.Contains(before, g) {
			t.Fatalf("%v has %s, not in %v", got, g, before)
		}
	}
}

func TestOffsetMapBounded(t *testing.T) {
	m := newOffsetMap(100 * mapSlotBytes)
	for i := range 90 {
		if m.full() {
			t.Fatalf("full after %d keys of 100 slots", i)
		}
		m.put(fmt.Appendf(nil, "k%d", i), int64(i))
		m.put(fmt.Appendf(nil, "k%d", i), int64(i+1000)) // an update takes no new slot
	}
	if !m.full() || len(m.slots) != 100 {
		t.Fatalf("full=%v with %d slots", m.full(), len(m.slots))
	}
	for i := range 90 {
		if got := m.get(fmt.Appendf(nil, "k%d", i)); got != int64(i+1000) {
			t.Fatalf("get(k%d) = %d", i, got)
		}
	}
	if m.get([]byte("absent")) != -1 {
		t.Fatal("absent key found")
	}
	m.reset()
	if m.full() || m.get([]byte("k1")) != -1 {
		t.Fatal("reset kept keys")
	}
}

func TestCleanerCheckpointFormat(t *testing.T) {
	c := cleanerCheckpoint{firstDirty: 100, tombstoneDue: 5000, ranges: []cleanedRange{{0, 1000}, {40, 2000}}}
	got, err := parseCleanerCheckpoint(c.format())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if c.cleanedAt(10) != 1000 || c.cleanedAt(40) != 2000 || c.cleanedAt(99) != 2000 {
		t.Fatal("cleanedAt")
	}
	for _, bad := range []string{"", "1\n0\n-1\n0\n", "0\n10\n-1\n1\n20 5\n", "0\n10\n-1\n2\n1 5\n1 6\n", "0\n10\n-1\n2\n1 5\n2 4\n"} {
		if _, err := parseCleanerCheckpoint([]byte(bad)); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
	// Expired ranges collapse; the new range is added.
	now := time.UnixMilli(10_000)
	next := c.advance(200, 0, now, time.Second)
	want := []cleanedRange{{0, 2000}, {100, 10_000}}
	if next.firstDirty != 200 || fmt.Sprint(next.ranges) != fmt.Sprint(want) {
		t.Fatalf("advance: %+v", next)
	}
}

// TestDeleteStopsClean: deleting a log waits for a running clean to stop, so no cleaner
// file is created in the removed directory.
func TestDeleteStopsClean(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 100})
	writeUpdates(t, h.log, h.clock.now().UnixMilli(), 10, 3)
	roll(t, h.log)
	c := NewCleaner(1 << 20)
	deleted := make(chan error, 1)
	c.hooks.afterMap = func() {
		go func() { deleted <- h.log.Delete() }()
		for !h.log.cleanAbort.Load() {
			runtime.Gosched() // wait for Delete to ask the clean to stop
		}
	}
	flush(t, h.log)
	_, err := c.Clean(h.log, CleanOptions{HighWatermark: h.log.LogEndOffset()})
	if !errors.Is(err, ErrCleanAborted) {
		t.Fatalf("Clean = %v, want ErrCleanAborted", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := h.fs.Stat(dir); err == nil {
		t.Fatal("log directory still there")
	}
}

// TestCleanConcurrentWithAppendsAndReads runs cleans while another goroutine appends and
// a third reads (the race detector checks the locking); the result is every key's latest.
func TestCleanConcurrentWithAppendsAndReads(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 300, FileDeleteDelay: time.Hour})
	ts := h.clock.now().UnixMilli()
	appendErr, readErr := make(chan error, 1), make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for i := range 300 {
			b, err := batch.Build(batch.BuildOptions{BaseOffset: h.log.LogEndOffset()},
				[]batch.Record{{Timestamp: ts, Key: fmt.Appendf(nil, "k%d", i%10), Value: fmt.Appendf(nil, "v%d", i)}})
			if err == nil {
				err = h.log.Append(b)
			}
			if err != nil {
				appendErr <- err
				return
			}
		}
		appendErr <- nil
	}()
	go func() {
		for {
			select {
			case <-stop:
				readErr <- nil
				return
			default:
			}
			if _, err := collect(h.log, h.log.LogStartOffset(), 1<<62, 1<<20, true); err != nil {
				readErr <- err
				return
			}
		}
	}()
	c := NewCleaner(1 << 20)
	var err error
	for done := false; !done; {
		select {
		case err = <-appendErr:
			done = true
		default:
		}
		if err := h.log.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, cerr := c.Clean(h.log, CleanOptions{HighWatermark: h.log.LogEndOffset()}); cerr != nil {
			t.Fatalf("Clean: %v", cerr)
		}
	}
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err != nil {
		t.Fatalf("read during cleaning: %v", err)
	}
	roll(t, h.log)
	cleanAll(t, c, h.log, CleanOptions{})
	got := contents(t, h.log)
	want := []string{}
	for i := 290; i < 300; i++ {
		want = append(want, fmt.Sprintf("%d:k%d=v%d", i, i%10, i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
