package log

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// AppendBatches in groups of any size must leave exactly the files that appending the same
// batches one by one leaves: segments rolled at the same batches, the same index entries.
// Both the pwritev path (OS files) and the copy path (in-memory files) are checked.
func TestAppendBatchesMatchesAppend(t *testing.T) {
	cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 700, SegmentIndexBytes: 10 * indexEntrySize * 2}
	for _, fsName := range []string{"os", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var batches []batch.Batch
			next := int64(0)
			for i := 0; i < 300; i++ {
				b := mkBatch(t, next, 1+rng.IntN(5), 1_700_000_000_000+int64(i)*10, rng.IntN(400))
				batches = append(batches, b)
				next = b.LastOffset() + 1
			}
			newFS := func() (vfs.FS, string) {
				if fsName == "os" {
					return vfs.OS(), t.TempDir()
				}
				return vfs.NewMem(), "/data/t-0"
			}
			clock := newClock()
			fsA, dirA := newFS()
			a, err := Open(fsA, dirA, cfg, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			fsB, dirB := newFS()
			b, err := Open(fsB, dirB, cfg, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range batches {
				if err := a.Append(bytes.Clone(x)); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < len(batches); {
				k := min(len(batches)-i, 1+rng.IntN(12))
				group := make([]batch.Batch, k)
				for j := range group {
					group[j] = bytes.Clone(batches[i+j])
				}
				n, ticket, err := b.AppendBatches(group)
				if err != nil || n != k || ticket != 0 {
					t.Fatalf("AppendBatches of %d at %d: appended %d, ticket %d, %v", k, i, n, ticket, err)
				}
				i += k
			}
			if a.LogEndOffset() != b.LogEndOffset() || a.NumSegments() != b.NumSegments() {
				t.Fatalf("one by one: end %d, %d segments; grouped: end %d, %d segments",
					a.LogEndOffset(), a.NumSegments(), b.LogEndOffset(), b.NumSegments())
			}
			if a.NumSegments() < 5 {
				t.Fatalf("only %d segments: the test should cross rolls", a.NumSegments())
			}
			checkContent(t, b, batches)
			for _, l := range []*Log{a, b} {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			names, err := fsA.ReadDir(dirA)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range names {
				want, err1 := vfs.ReadFile(fsA, path.Join(dirA, e.Name()), 1<<30)
				got, err2 := vfs.ReadFile(fsB, path.Join(dirB, e.Name()), 1<<30)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %v %v", e.Name(), err1, err2)
				}
				if e.Name() == cleanShutdownFile {
					// It records each segment's mtime: compare the rest.
					want, got = markerWithoutTimes(t, want), markerWithoutTimes(t, got)
				}
				if !bytes.Equal(want, got) {
					t.Errorf("%s differs: %d bytes one by one, %d grouped", e.Name(), len(want), len(got))
				}
			}
		})
	}
}

// A group whose batches do not follow one another stops at the first that does not.
func TestAppendBatchesStopsAtBadBatch(t *testing.T) {
	h := newHarness(t, Config{})
	b0 := mkBatch(t, 0, 2, 1, 10)
	b1 := mkBatch(t, 2, 2, 1, 10)
	bad := mkBatch(t, 7, 1, 1, 10)
	n, _, err := h.log.AppendBatches([]batch.Batch{b0, b1, bad, mkBatch(t, 8, 1, 1, 10)})
	if n != 2 || err == nil {
		t.Fatalf("appended %d, err %v; want 2 and an error", n, err)
	}
	if h.log.LogEndOffset() != 4 {
		t.Fatalf("log end %d, want 4", h.log.LogEndOffset())
	}
	checkContent(t, h.log, []batch.Batch{b0, b1})
}

func TestWritevAtShortWritesAndMany(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bufs []batch.Batch
	var want []byte
	for i := 0; i < 2500; i++ { // more than IOV_MAX buffers
		b := bytes.Repeat([]byte{byte(i)}, 1+i%7)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	keep := bytes.Clone(bufs[0])
	if err := writevAt(f, bufs, 3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bufs[0], keep) {
		t.Fatal("writevAt changed the caller's buffers")
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 3); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, want))
	}
}
