package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vltava/vltava/internal/batch"
)

// writeSegment writes 10 batches of 3 records (offsets 0-29) as
// topic-0/00000000000000000000.log under dir and returns its path and bytes.
func writeSegment(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	var seg []byte
	for i := range 10 {
		var rs []batch.Record
		for j := range 3 {
			rs = append(rs, batch.Record{Timestamp: 1, Value: []byte(fmt.Sprintf("v%d", 3*i+j))})
		}
		b, err := batch.Build(batch.BuildOptions{BaseOffset: int64(3 * i)}, rs)
		if err != nil {
			t.Fatal(err)
		}
		seg = append(seg, b...)
	}
	pdir := filepath.Join(dir, "topic-0")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An older segment, to check that the active one is chosen.
	if err := os.WriteFile(filepath.Join(pdir, "00000000000000000000.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(pdir, "00000000000000000030.log")
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, seg
}

// TestTearTailSparesObservedBatches: whatever the pick, the bytes of every
// batch up to the one holding the last observed offset stay intact, and
// something after them is damaged.
func TestTearTailSparesObservedBatches(t *testing.T) {
	modes := map[string]int{}
	for _, observed := range []int64{-1, 0, 14, 29} {
		for pick := range uint64(20) {
			dir := t.TempDir()
			_, seg := writeSegment(t, dir)
			path, err := ActiveSegment(dir, "topic", 0)
			if err != nil || filepath.Base(path) != "00000000000000000030.log" {
				t.Fatalf("active segment %q, %v", path, err)
			}
			torn, err := TearTail(path, observed, pick)
			if err != nil {
				t.Fatal(err)
			}
			modes[torn.Mode]++
			keep := int64(0)
			for _, s := range scanBatches(seg) {
				if s.Base <= observed {
					keep = s.End
				}
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got[:min(int64(len(got)), keep)], seg[:keep]) || int64(len(got)) < keep {
				t.Fatalf("observed %d pick %d (%+v): observed bytes [0,%d) damaged", observed, pick, torn, keep)
			}
			if bytes.Equal(got, seg) || torn.Bytes <= 0 || torn.Cut < keep {
				t.Fatalf("observed %d pick %d: nothing torn: %+v", observed, pick, torn)
			}
			wantFrom := int64(-1)
			switch {
			case observed < 0:
				wantFrom = 0
			case observed < 27:
				wantFrom = (observed/3 + 1) * 3
			}
			if torn.FromOffset != wantFrom || torn.Acked {
				t.Fatalf("observed %d: %+v, want FromOffset %d, not acked", observed, torn, wantFrom)
			}
		}
	}
	for _, m := range []string{"truncate", "corrupt", "append"} {
		if modes[m] == 0 {
			t.Errorf("mode %s never chosen: %v", m, modes)
		}
	}
}

// TestTearAckedCutsIntoObservedBatch: the cut falls inside one of the last
// three observed batches, whose base is FromOffset, and spares those before.
func TestTearAckedCutsIntoObservedBatch(t *testing.T) {
	froms := map[int64]bool{}
	for pick := range uint64(20) {
		dir := t.TempDir()
		path, seg := writeSegment(t, dir)
		torn, err := TearAcked(path, 20, pick)
		if err != nil {
			t.Fatal(err)
		}
		froms[torn.FromOffset] = true
		var hit *batchSpan
		for _, s := range scanBatches(seg) {
			if s.Base == torn.FromOffset {
				hit = &s
			}
		}
		if hit == nil || hit.Base > 20 || hit.Base < 12 || torn.Cut <= hit.Pos || torn.Cut >= hit.End || !torn.Acked {
			t.Fatalf("pick %d: %+v, batch %+v", pick, torn, hit)
		}
		got, _ := os.ReadFile(path)
		if int64(len(got)) != torn.Cut || !bytes.Equal(got, seg[:torn.Cut]) {
			t.Fatalf("pick %d: file is %d bytes, want the first %d of the segment", pick, len(got), torn.Cut)
		}
	}
	if len(froms) != 3 {
		t.Errorf("cuts began at %v, want each of the last three observed batches", froms)
	}
}
