package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

func openOn(t *testing.T, fsys vfs.FS) *Partition {
	t.Helper()
	return openTest(t, fsys, log.Config{SegmentBytes: 2048})
}

func idem(t *testing.T, pid int64, seq int32) batch.Batch {
	t.Helper()
	recs := []batch.Record{{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 100)}, {Timestamp: time.Now().UnixMilli(), Value: make([]byte, 100)}}
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkProducers checks that p knows where each of the producers left off: its last batch
// is a duplicate answered with its offset, a gap is refused, the next batch is taken.
func checkProducers(t *testing.T, p *Partition, last map[int64]int32, lastOffset map[int64]int64) {
	t.Helper()
	for pid, seq := range last {
		res, err := p.Append(idem(t, pid, seq))
		if err != nil || res.BaseOffset != lastOffset[pid] {
			t.Fatalf("producer %d: retry of seq %d answered at %d (%v), want the duplicate at %d", pid, seq, res.BaseOffset, err, lastOffset[pid])
		}
		if _, err := p.Append(idem(t, pid, seq+4)); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("producer %d: a gap got %v", pid, err)
		}
		if _, err := p.Append(idem(t, pid, seq+2)); err != nil {
			t.Fatalf("producer %d: next batch: %v", pid, err)
		}
	}
}

// After a crash (no clean-close snapshot), producer state comes from the newest rolling
// snapshot plus the batches after it, not from the whole log.
func TestRollingSnapshotAfterCrash(t *testing.T) {
	mem := vfs.NewMem()
	p := openOn(t, mem)
	last := map[int64]int32{}
	lastOffset := map[int64]int64{}
	for i := 0; i < 60; i++ {
		pid := int64(1 + i%3)
		seq := int32(2 * (i / 3))
		res, err := p.Append(idem(t, pid, seq))
		if err != nil {
			t.Fatal(err)
		}
		last[pid], lastOffset[pid] = seq, res.BaseOffset
		if err := p.SnapshotIfRolled(); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := listRolling(mem, "/data/t-0")
	if err != nil || len(offs) != rollingKeep {
		t.Fatalf("rolling snapshots %v (%v), want the newest %d", offs, err, rollingKeep)
	}
	// kill -9: the files stay as the page cache has them; nothing is closed.
	p2 := openOn(t, mem)
	defer p2.Log().Close()
	if p2.rebuiltFrom != offs[len(offs)-1] {
		t.Fatalf("producer state rebuilt from offset %d, want the newest snapshot's %d", p2.rebuiltFrom, offs[len(offs)-1])
	}
	if p2.rebuiltFrom == 0 {
		t.Fatal("no snapshot used")
	}
	checkProducers(t, p2, last, lastOffset)
}

// A snapshot past the log end left by a recovery that truncated the log is removed, even
// once later appends take the log past its offset again.
func TestRollingSnapshotPastTruncation(t *testing.T) {
	mem := vfs.NewMem()
	p := openOn(t, mem)
	last := map[int64]int32{}
	lastOffset := map[int64]int64{}
	var cut int64
	for i := 0; i < 40; i++ {
		if i == 20 {
			cut = p.LogEndOffset()
		}
		seq := int32(2 * i)
		res, err := p.Append(idem(t, 9, seq))
		if err != nil {
			t.Fatal(err)
		}
		if i < 20 {
			last[9], lastOffset[9] = seq, res.BaseOffset
		}
		if err := p.SnapshotIfRolled(); err != nil {
			t.Fatal(err)
		}
	}
	offs, _ := listRolling(mem, "/data/t-0")
	if len(offs) == 0 || offs[0] <= cut {
		t.Fatalf("snapshots %v, want them all past %d for this test", offs, cut)
	}
	// What a recovery that found a torn tail does.
	if err := p.Log().TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	p2 := openOn(t, mem)
	if rest, _ := listRolling(mem, "/data/t-0"); len(rest) != 0 {
		t.Fatalf("snapshots past the log end %d kept: %v", cut, rest)
	}
	if p2.rebuiltFrom != 0 {
		t.Fatalf("rebuilt from %d, want the log start", p2.rebuiltFrom)
	}
	checkProducers(t, p2, last, lastOffset)
	p2.Log().Close()
}
