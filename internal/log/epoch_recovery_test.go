package log

import (
	"path"
	"testing"

	"github.com/vltava/vltava/internal/batch"
)

// appendEpochBatch appends one batch of n records at the log end in leader epoch epoch.
func appendEpochBatch(t *testing.T, l *Log, epoch int32, n int) batch.Batch {
	t.Helper()
	b := mkBatch(t, l.LogEndOffset(), n, 1_700_000_000_000, 10)
	b.SetPartitionLeaderEpoch(epoch)
	if err := l.Append(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// The leader-epoch cache answers OffsetForLeaderEpoch for followers truncating after a
// leader change (KIP-101/279): if its checkpoint is lost or damaged, Open must rebuild it
// from the batches' epochs, or a follower asking "where did epoch E end" gets no answer
// and keeps a tail the leader never had.
func TestEpochCacheRebuiltWhenCheckpointLost(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(h *harness)
	}{
		{"missing", func(h *harness) {
			if err := h.fs.Remove(path.Join(dir, leaderEpochFile)); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"garbage", func(h *harness) {
			if err := writeCheckpoint(h.fs, dir, leaderEpochFile, []byte("0\n2\n1 0\nx\n")); err != nil {
				h.t.Fatal(err)
			}
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			h := newHarness(t, Config{SegmentBytes: 1 << 10})
			l := h.log
			if err := l.AssignEpoch(1, 0); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				appendEpochBatch(t, l, 1, 3)
			}
			end1 := l.LogEndOffset()
			if err := l.AssignEpoch(3, end1); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				appendEpochBatch(t, l, 3, 3)
			}
			leo := l.LogEndOffset()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			damage.do(h)
			h.open()
			l = h.log
			if got := l.LatestEpoch(); got != 3 {
				t.Fatalf("latest epoch after reopen = %d, want 3", got)
			}
			if e, off := l.EndOffsetForEpoch(1); e != 1 || off != end1 {
				t.Fatalf("EndOffsetForEpoch(1) = (%d, %d), want (1, %d)", e, off, end1)
			}
			if e, off := l.EndOffsetForEpoch(2); e != 1 || off != end1 {
				t.Fatalf("EndOffsetForEpoch(2) = (%d, %d), want (1, %d)", e, off, end1)
			}
			if e, off := l.EndOffsetForEpoch(3); e != 3 || off != leo {
				t.Fatalf("EndOffsetForEpoch(3) = (%d, %d), want (3, %d)", e, off, leo)
			}
			if rep := l.Recovery(); rep.EpochCache == "" {
				t.Fatalf("the recovery report does not say the epoch cache was rebuilt")
			}
			// The rebuilt cache is durable: a second open reads it back.
			h.reopen()
			if e, off := h.log.EndOffsetForEpoch(1); e != 1 || off != end1 || h.log.Recovery().EpochCache != "" {
				t.Fatalf("after a second open: EndOffsetForEpoch(1) = (%d, %d), report %q", e, off, h.log.Recovery().EpochCache)
			}
		})
	}
}
