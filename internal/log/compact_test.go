package log

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// appendKV appends one batch of key=value records ("k=" is a tombstone).
func appendKV(t *testing.T, l *Log, ts int64, kvs ...string) {
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
	b, err := batch.Build(batch.BuildOptions{BaseOffset: l.LogEndOffset()}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(b); err != nil {
		t.Fatal(err)
	}
}

// contents lists "offset:key=value" of every record from the log start, and checks
// that batches still tile the offsets without overlap.
func contents(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	next := l.LogStartOffset()
	for _, b := range readBatches(t, l, l.LogStartOffset(), 1<<62, 1<<40, true) {
		if b.BaseOffset() != next {
			t.Fatalf("batch at %d after one ending at %d: compaction moved offsets", b.BaseOffset(), next)
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
	if next != l.LogEndOffset() {
		t.Fatalf("batches end at %d, log end offset %d", next, l.LogEndOffset())
	}
	return out
}

func TestCompact(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 120, FileDeleteDelay: time.Minute})
	ts := h.clock.now().UnixMilli()
	appendKV(t, h.log, ts, "a=1", "b=1") // 0 1
	appendKV(t, h.log, ts, "a=2")        // 2
	appendKV(t, h.log, ts, "c=1", "b=")  // 3 4: b deleted
	appendKV(t, h.log, ts, "a=3")        // 5
	appendKV(t, h.log, ts, "d=1")        // 6, stays in the active segment
	if h.log.NumSegments() < 3 {
		t.Fatalf("want several segments, have %d", h.log.NumSegments())
	}
	oldRanges, err := h.log.Read(0, 1<<62, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := h.log.Compact(CompactOptions{UpTo: h.log.LogEndOffset(), DeleteRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"3:c=1", "4:b=", "5:a=3", "6:d=1"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after compaction %v, want %v", got, want)
	}
	if stats.RecordsRemoved != 3 || stats.BytesAfter >= stats.BytesBefore {
		t.Fatalf("stats %+v", stats)
	}
	// A read at a removed offset starts at the batch that held it, now empty or smaller.
	if got := readBatches(t, h.log, 1, 1<<62, 1, true); got[0].BaseOffset() != 0 || got[0].RecordCount() != 0 {
		t.Fatalf("read at a removed offset: batch %d with %d records", got[0].BaseOffset(), got[0].RecordCount())
	}
	// A reader that got ranges before the compaction still reads the old bytes.
	var buf bytes.Buffer
	if _, err := WriteRanges(&buf, oldRanges); err != nil {
		t.Fatalf("old ranges after compaction: %v", err)
	}
	// The tombstone goes once it is older than delete.retention.ms.
	h.clock.add(2 * time.Hour)
	if _, err := h.log.Compact(CompactOptions{UpTo: h.log.LogEndOffset(), DeleteRetention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	want = []string{"3:c=1", "5:a=3", "6:d=1"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the tombstone expired %v, want %v", got, want)
	}
	h.kill()
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after an unclean restart %v, want %v", got, want)
	}
	appendKV(t, h.log, ts, "e=1")
	h.reopen()
	if got := contents(t, h.log); len(got) != 4 {
		t.Fatalf("after append and reopen: %v", got)
	}
}

func TestCompactRespectsUpTo(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 60})
	ts := h.clock.now().UnixMilli()
	for i := range 6 {
		appendKV(t, h.log, ts, fmt.Sprintf("k=%d", i))
	}
	if _, err := h.log.Compact(CompactOptions{UpTo: 3}); err != nil {
		t.Fatal(err)
	}
	// Only segments ending at or below 3 are cleaned, with keys mapped from them alone.
	want := []string{"2:k=2", "3:k=3", "4:k=4", "5:k=5"}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestCompactFailedSwap: a failure anywhere in the swap leaves a log that reopens with
// either the old or the new content of each segment, never a mix.
func TestCompactFailedSwap(t *testing.T) {
	// One batch per segment: the active segment's k=3 does not count, so k=2 stays.
	compacted := []string{"2:k=2", "3:k=3"}
	for _, kind := range []vfs.OpKind{vfs.OpWrite, vfs.OpSync, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir} {
		t.Run(kind.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			efs := vfs.WithErrors(mem, nil)
			clk := newClock()
			cfg := Config{SegmentBytes: 60}
			l, err := Open(efs, dir, cfg, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			ts := clk.now().UnixMilli()
			for i := range 4 {
				appendKV(t, l, ts, fmt.Sprintf("k=%d", i))
			}
			before := contents(t, l)
			efs.Inj = vfs.FailNth(kind, 1)
			if _, err := l.Compact(CompactOptions{UpTo: l.LogEndOffset()}); !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("Compact = %v, want the injected error", err)
			}
			efs.Inj = nil
			l.abandon()
			r, err := Open(mem, dir, cfg, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// Segments are swapped one at a time: some may be compacted, but no record a
			// compaction keeps is lost and none appears that was not there.
			got := contents(t, r)
			for _, keep := range compacted {
				if !slices.Contains(got, keep) {
					t.Fatalf("after a failed compaction %v lacks %s", got, keep)
				}
			}
			for _, g := range got {
				if !slices.Contains(before, g) {
					t.Fatalf("after a failed compaction %v has %s, not in %v", got, g, before)
				}
			}
			if _, err := r.Compact(CompactOptions{UpTo: r.LogEndOffset()}); err != nil {
				t.Fatal(err)
			}
			if got := contents(t, r); fmt.Sprint(got) != fmt.Sprint(compacted) {
				t.Fatalf("after a retried compaction: %v, want %v", got, compacted)
			}
		})
	}
}
