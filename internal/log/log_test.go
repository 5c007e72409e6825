package log

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

func TestAppendRead(t *testing.T) {
	h := newHarness(t, Config{IndexIntervalBytes: 100})
	if got := readBatches(t, h.log, 0, 100, 1<<20, true); len(got) != 0 {
		t.Fatalf("empty log returned %d batches", len(got))
	}
	bs := h.appendN(20, 3, 50)
	checkContent(t, h.log, bs)
	size := int64(len(bs[0]))

	cases := []struct {
		name      string
		offset    int64
		maxOffset int64
		maxBytes  int64
		minOne    bool
		want      []int64 // base offsets
	}{
		{"mid batch", 4, 1 << 62, 2 * size, false, []int64{3, 6}},
		{"max bytes cuts whole batches", 0, 1 << 62, 3*size - 1, false, []int64{0, 3}},
		{"max bytes smaller than one batch", 0, 1 << 62, 10, false, nil},
		{"min one", 0, 1 << 62, 10, true, []int64{0}},
		{"high watermark excludes a partial batch", 0, 8, 1 << 20, false, []int64{0, 3}},
		{"high watermark at a batch end", 0, 9, 1 << 20, false, []int64{0, 3, 6}},
		{"offset at the high watermark", 9, 9, 1 << 20, true, nil},
		{"last batch", 59, 1 << 62, 1 << 20, false, []int64{57}},
		{"log end offset", 60, 1 << 62, 1 << 20, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, b := range readBatches(t, h.log, tc.offset, tc.maxOffset, tc.maxBytes, tc.minOne) {
				got = append(got, b.BaseOffset())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got batches at %v, want %v", got, tc.want)
			}
		})
	}
	for _, off := range []int64{-1, 61} {
		if _, err := h.log.Read(off, 1<<62, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if err := h.log.Append(mkBatch(t, 5, 1, 0, 1)); err == nil {
		t.Fatal("append at the wrong offset succeeded")
	}
	h.reopen()
	checkContent(t, h.log, bs)
}

func TestRoll(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000, IndexIntervalBytes: 1})
	bs := h.appendN(12, 2, 150) // 383 byte batches: 2 per segment
	if n := h.log.NumSegments(); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	for _, name := range []string{"00000000000000000000.log", "00000000000000000004.index", "00000000000000000020.timeindex"} {
		if !exists(h.fs, name) {
			t.Fatalf("%s missing; have %v", name, segmentFiles(t, h.fs))
		}
	}
	checkContent(t, h.log, bs)
	// A read that starts in one segment continues into the next.
	if got := readBatches(t, h.log, 2, 1<<62, 1<<20, false); len(got) != 11 {
		t.Fatalf("cross-segment read returned %d batches", len(got))
	}
	h.reopen()
	checkContent(t, h.log, bs)
	bs = append(bs, h.appendN(1, 1, 10)...)
	checkContent(t, h.log, bs)
}

func TestRollByTimeAndIndex(t *testing.T) {
	h := newHarness(t, Config{SegmentMs: time.Hour})
	h.appendN(3, 1, 10)
	h.clock.add(59 * time.Minute)
	h.appendN(1, 1, 10)
	if n := h.log.NumSegments(); n != 1 {
		t.Fatalf("rolled early: %d segments", n)
	}
	h.clock.add(time.Minute)
	h.appendN(1, 1, 10)
	if n := h.log.NumSegments(); n != 2 {
		t.Fatalf("segment.ms did not roll: %d segments", n)
	}
	// The age counts from the first batch's timestamp, so a restart does not reset it.
	h.clock.add(59 * time.Minute)
	h.reopen()
	h.clock.add(time.Minute)
	h.appendN(1, 1, 10)
	if n := h.log.NumSegments(); n != 3 {
		t.Fatalf("segment.ms did not roll after a restart: %d segments", n)
	}

	// An index of 3 entries fills after 3 indexed batches.
	h2 := newHarness(t, Config{IndexIntervalBytes: 1, SegmentIndexBytes: 3 * indexEntrySize * 2})
	bs := h2.appendN(10, 1, 10)
	if n := h2.log.NumSegments(); n < 2 {
		t.Fatalf("a full index did not roll: %d segments", n)
	}
	checkContent(t, h2.log, bs)
}

func TestRetention(t *testing.T) {
	day := 24 * time.Hour
	h := newHarness(t, Config{SegmentBytes: 1000, RetentionMs: 2 * day, FileDeleteDelay: time.Minute})
	var bs []batch.Batch
	for range 4 {
		bs = append(bs, h.appendN(2, 2, 150)...) // one segment a day
		h.clock.add(day)
	}
	if n := h.log.NumSegments(); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	// Segments whose newest record is more than 2 days old: the first two.
	n, err := h.log.EnforceRetention()
	if err != nil || n != 2 {
		t.Fatalf("EnforceRetention = %d, %v; want 2", n, err)
	}
	if h.log.LogStartOffset() != 8 {
		t.Fatalf("log start offset %d, want 8", h.log.LogStartOffset())
	}
	if !exists(h.fs, "00000000000000000000.log.deleted") || exists(h.fs, "00000000000000000000.log") {
		t.Fatalf("deleted segment not renamed: %v", segmentFiles(t, h.fs))
	}
	checkContent(t, h.log, bs[4:])
	if _, err := h.log.Read(0, 1<<62, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	// A minute later the delay has passed, and the segment at 8 is past retention too.
	h.clock.add(time.Minute)
	if n, err := h.log.EnforceRetention(); err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v; want 1", n, err)
	}
	if exists(h.fs, "00000000000000000000.log.deleted") {
		t.Fatal(".deleted file not removed after the delay")
	}
	// Never the active segment, however old.
	h.clock.add(30 * day)
	n, _ = h.log.EnforceRetention()
	if n != 0 || h.log.NumSegments() != 1 {
		t.Fatalf("deleted %d, %d segments left; want 0 and 1", n, h.log.NumSegments())
	}
	h.reopen()
	if h.log.LogStartOffset() != 12 {
		t.Fatalf("log start offset after reopen %d", h.log.LogStartOffset())
	}
	checkContent(t, h.log, bs[6:])
}

func TestRetentionBytes(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	h.appendN(9, 2, 150) // 5 segments, the last holding one batch
	size := h.log.Size()
	seg := int64(2 * len(mkBatch(t, 0, 2, 0, 150)))
	// As in Kafka, a segment goes only if the log stays at or above retention.bytes without it.
	h.log.SetConfig(Config{SegmentBytes: 1000, RetentionBytes: size - seg + 1})
	if n, err := h.log.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("one byte short of a segment: deleted %d, %v", n, err)
	}
	h.log.SetConfig(Config{SegmentBytes: 1000, RetentionBytes: size - seg})
	if n, err := h.log.EnforceRetention(); err != nil || n != 1 {
		t.Fatalf("exactly one segment over: deleted %d, %v", n, err)
	}
	h.log.SetConfig(Config{SegmentBytes: 1, RetentionBytes: 1})
	if n, _ := h.log.EnforceRetention(); n != 3 || h.log.NumSegments() != 1 {
		t.Fatalf("deleted %d, %d left", n, h.log.NumSegments())
	}
}

// Retention deletes only segments wholly below the bound it is given (a partition's high
// watermark): a segment that ends past it stays, whatever retention says.
func TestRetentionBelowHighWatermark(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000, RetentionBytes: 1})
	h.appendN(9, 2, 150) // segments at 0, 4, 8, 12 and the active one at 16
	for _, c := range []struct {
		hw, deleted, start int64
	}{
		{hw: 3, deleted: 0, start: 0},        // inside the first segment
		{hw: 4, deleted: 1, start: 4},        // at the second's base: the first lies below
		{hw: 11, deleted: 1, start: 8},       // the third ends at 12
		{hw: 1 << 40, deleted: 2, start: 16}, // never the active segment
	} {
		n, err := h.log.EnforceRetentionBelow(c.hw)
		if err != nil || int64(n) != c.deleted || h.log.LogStartOffset() != c.start {
			t.Fatalf("below %d: deleted %d (%v), log start %d; want %d and %d", c.hw, n, err, h.log.LogStartOffset(), c.deleted, c.start)
		}
	}
}

func TestSetLogStartOffset(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	bs := h.appendN(6, 2, 150)
	if err := h.log.SetLogStartOffset(13); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond the log end: %v", err)
	}
	if err := h.log.SetLogStartOffset(5); err != nil {
		t.Fatal(err)
	}
	if h.log.NumSegments() != 2 || h.log.LogStartOffset() != 5 {
		t.Fatalf("%d segments, start %d", h.log.NumSegments(), h.log.LogStartOffset())
	}
	if _, err := h.log.Read(3, 1<<62, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below: %v", err)
	}
	// The batch holding offset 5 starts at 4: it is returned whole.
	if got := readBatches(t, h.log, 5, 1<<62, 1, true); got[0].BaseOffset() != 4 {
		t.Fatalf("first batch %d", got[0].BaseOffset())
	}
	h.log.SetLogStartOffset(2) // lower: ignored
	// Survives an unclean stop: open a second log over the same files without closing.
	l2, err := Open(h.fs, dir, h.cfg, h.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.LogStartOffset() != 5 || l2.LogEndOffset() != 12 {
		t.Fatalf("after reopen: start %d end %d", l2.LogStartOffset(), l2.LogEndOffset())
	}
	_ = bs
}

func TestTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		to      int64
		wantLEO int64
		keep    int // batches kept
	}{
		{"at a batch boundary", 6, 6, 3},
		{"inside a batch", 7, 6, 3},
		{"into an earlier segment", 1, 0, 0},
		{"at the segment start", 4, 4, 2},
		{"at the log end", 16, 16, 8},
		{"to zero", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{SegmentBytes: 1000, IndexIntervalBytes: 1})
			bs := h.appendN(8, 2, 150)
			if err := h.log.AssignEpoch(1, 0); err != nil {
				t.Fatal(err)
			}
			h.log.AssignEpoch(2, 10)
			if err := h.log.TruncateTo(tc.to); err != nil {
				t.Fatal(err)
			}
			if h.log.LogEndOffset() != tc.wantLEO {
				t.Fatalf("log end %d, want %d", h.log.LogEndOffset(), tc.wantLEO)
			}
			checkContent(t, h.log, bs[:tc.keep])
			if e, _ := h.log.EndOffsetForEpoch(2); (tc.wantLEO > 10) != (e == 2) {
				t.Fatalf("epoch 2 after truncating to %d: %d", tc.wantLEO, e)
			}
			more := h.appendN(3, 2, 150)
			checkContent(t, h.log, append(bs[:tc.keep:tc.keep], more...))
			h.reopen()
			checkContent(t, h.log, append(bs[:tc.keep:tc.keep], more...))
		})
	}
}

func TestTimestamps(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000, IndexIntervalBytes: 1})
	// Batch timestamps, not monotonic: the max is in the third batch.
	tss := []int64{1000, 2000, 9000, 3000, 4000, 5000}
	var bs []batch.Batch
	for _, ts := range tss {
		b := mkBatch(t, h.log.LogEndOffset(), 2, ts, 150) // records at ts, ts+1
		if err := h.log.Append(b); err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	check := func() {
		t.Helper()
		for _, tc := range []struct {
			ts      int64
			off, at int64
			found   bool
		}{
			{0, 0, 1000, true},
			{1001, 1, 1001, true},
			{1002, 2, 2000, true},
			{3000, 4, 9000, true}, // the first batch with a large enough timestamp, in log order
			{9001, 5, 9001, true},
			{9002, 0, 0, false},
		} {
			off, at, found, err := h.log.OffsetForTimestamp(tc.ts)
			if err != nil || found != tc.found || found && (off != tc.off || at != tc.at) {
				t.Fatalf("OffsetForTimestamp(%d) = %d@%d %v %v, want %d@%d %v", tc.ts, off, at, found, err, tc.off, tc.at, tc.found)
			}
		}
		off, ts, err := h.log.MaxTimestamp()
		if err != nil || off != 5 || ts != 9001 {
			t.Fatalf("MaxTimestamp = %d@%d %v, want 5@9001", off, ts, err)
		}
	}
	check()
	h.reopen()
	check()
	h.log.SetLogStartOffset(6)
	if off, _, _, _ := h.log.OffsetForTimestamp(0); off != 6 {
		t.Fatalf("below the log start: %d", off)
	}
	empty := newHarness(t, Config{})
	if off, _, _ := empty.log.MaxTimestamp(); off != -1 {
		t.Fatalf("empty log MaxTimestamp offset %d", off)
	}
}

func TestEpochs(t *testing.T) {
	h := newHarness(t, Config{})
	if e, o := h.log.EndOffsetForEpoch(0); e != -1 || o != -1 {
		t.Fatalf("no epochs: %d %d", e, o)
	}
	h.appendN(5, 2, 10) // offsets 0..9
	for _, a := range []struct {
		epoch int32
		start int64
	}{{1, 0}, {3, 4}, {3, 6}, {5, 8}} { // {3, 6} repeats epoch 3 later: ignored
		if err := h.log.AssignEpoch(a.epoch, a.start); err != nil {
			t.Fatal(err)
		}
	}
	check := func() {
		t.Helper()
		for _, tc := range []struct {
			ask   int32
			epoch int32
			end   int64
		}{
			{0, 0, 0}, // older than every epoch: Kafka answers the first start offset
			{1, 1, 4},
			{2, 1, 4},
			{3, 3, 8},
			{4, 3, 8},
			{5, 5, 10},
			{6, -1, -1},
		} {
			if e, o := h.log.EndOffsetForEpoch(tc.ask); e != tc.epoch || o != tc.end {
				t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.ask, e, o, tc.epoch, tc.end)
			}
		}
	}
	check()
	h.reopen()
	check()
	if h.log.LatestEpoch() != 5 {
		t.Fatalf("latest epoch %d", h.log.LatestEpoch())
	}
	// A new epoch at a lower start offset replaces the entries it contradicts.
	h.log.AssignEpoch(6, 5)
	if e, o := h.log.EndOffsetForEpoch(3); e != 3 || o != 5 {
		t.Fatalf("after conflicting assign: %d %d", e, o)
	}
	if e, o := h.log.EndOffsetForEpoch(5); e != 3 || o != 5 {
		t.Fatalf("epoch 5 should be gone: %d %d", e, o)
	}
}

func TestBatches(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000, IndexIntervalBytes: 1})
	bs := h.appendN(8, 2, 150)
	var got []int64
	if err := h.log.Batches(5, func(b batch.Batch) bool {
		got = append(got, b.BaseOffset())
		return b.BaseOffset() < 10
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int64{4, 6, 8, 10}) {
		t.Fatalf("Batches visited %v", got)
	}
	_ = bs
}

func TestCloseDelete(t *testing.T) {
	h := newHarness(t, Config{})
	h.appendN(2, 1, 10)
	if err := h.log.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(h.fs, cleanShutdownFile) {
		t.Fatal("no clean shutdown marker after Close")
	}
	if err := h.log.Append(mkBatch(t, 2, 1, 0, 1)); err == nil {
		t.Fatal("append after close succeeded")
	}
	h.open()
	if exists(h.fs, cleanShutdownFile) {
		t.Fatal("marker still present on an open log")
	}
	if err := h.log.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.Stat(dir); err == nil {
		t.Fatal("directory survived Delete")
	}
}
