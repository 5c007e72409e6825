package log

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// leaderBatch is a batch as a leader wrote it: n records at base in leader epoch epoch.
func leaderBatch(t testing.TB, base int64, n int, epoch int32) batch.Batch {
	t.Helper()
	b := mkBatch(t, base, n, 1_700_000_000_000+base, 20)
	b.SetPartitionLeaderEpoch(epoch)
	return b
}

// leaderLog is a leader's batches: epochs 1, 2 and 4, with gaps its cleaner left
// (offsets 6-9 and 15-19 are gone).
func leaderLog(t testing.TB) []batch.Batch {
	return []batch.Batch{
		leaderBatch(t, 0, 3, 1), leaderBatch(t, 3, 3, 1),
		leaderBatch(t, 10, 3, 2), leaderBatch(t, 13, 2, 2),
		leaderBatch(t, 20, 3, 4), leaderBatch(t, 23, 1, 4),
	}
}

// logBatches returns copies of every batch of l, read whole.
func logBatches(t testing.TB, l *Log) []batch.Batch {
	t.Helper()
	rs, err := l.Read(l.LogStartOffset(), l.LogEndOffset(), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, r := range rs {
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		all = append(all, buf...)
	}
	var out []batch.Batch
	for len(all) > 0 {
		b, rest, err := batch.Next(all, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		all = rest
	}
	return out
}

// checkPrefix fails unless got is a prefix of want, byte for byte.
func checkPrefix(t testing.TB, got, want []batch.Batch) {
	t.Helper()
	if len(got) > len(want) {
		t.Fatalf("%d batches, more than the %d appended", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d (offset %d) differs from what the leader wrote (offset %d)", i, got[i].BaseOffset(), want[i].BaseOffset())
		}
	}
}

// checkEpochsMatch fails unless the leader-epoch cache holds exactly the first offset of
// each epoch of the batches in the log, plus at most one entry at the log end (written
// before a batch a crash then lost).
func checkEpochsMatch(t testing.TB, l *Log) {
	t.Helper()
	var want []epochEntry
	for _, b := range logBatches(t, l) {
		if e := b.PartitionLeaderEpoch(); len(want) == 0 || e > want[len(want)-1].Epoch {
			want = append(want, epochEntry{e, b.BaseOffset()})
		}
	}
	l.mu.RLock()
	got := append([]epochEntry(nil), l.epochs...)
	l.mu.RUnlock()
	if n := len(got); n > len(want) && got[n-1].StartOffset == l.LogEndOffset() {
		got = got[:n-1]
	}
	if len(got) != len(want) {
		t.Fatalf("epoch cache %v, want %v (log end %d)", got, want, l.LogEndOffset())
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("epoch cache %v, want %v", got, want)
		}
	}
}

func TestFollowerAppendKeepsLeaderOffsetsAndEpochs(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 300})
	want := leaderLog(t)
	for _, part := range [][]batch.Batch{want[:3], want[3:]} {
		if _, _, err := h.log.AppendAsFollower(part); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		l := h.log
		if l.LogEndOffset() != 24 {
			t.Fatalf("%s: log end %d, want 24", when, l.LogEndOffset())
		}
		got := logBatches(t, l)
		if len(got) != len(want) {
			t.Fatalf("%s: %d batches, want %d", when, len(got), len(want))
		}
		checkPrefix(t, got, want)
		for _, c := range []struct {
			ask, epoch int32
			end        int64
		}{{0, 0, 0}, {1, 1, 10}, {2, 2, 20}, {3, 2, 20}, {4, 4, 24}, {5, -1, -1}} {
			if e, off := l.EndOffsetForEpoch(c.ask); e != c.epoch || off != c.end {
				t.Fatalf("%s: EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", when, c.ask, e, off, c.epoch, c.end)
			}
		}
	}
	check("appended")
	// A machine crash after a flush: recovery scans the segments and must accept the
	// gaps the leader's cleaner made, and the epochs.
	if err := h.log.Flush(); err != nil {
		t.Fatal(err)
	}
	h.fs = h.fs.(*vfs.MemFS).Crash()
	h.open()
	if rep := h.log.Recovery(); rep.Lost() {
		t.Fatalf("recovery removed data: %+v", rep)
	}
	check("after a crash")
}

func TestFollowerAppendRefusesWithoutWriting(t *testing.T) {
	h := newHarness(t, Config{})
	if _, _, err := h.log.AppendAsFollower([]batch.Batch{leaderBatch(t, 0, 5, 3)}); err != nil {
		t.Fatal(err)
	}
	corrupt := leaderBatch(t, 7, 2, 3)
	corrupt[len(corrupt)-1] ^= 1
	for name, bs := range map[string][]batch.Batch{
		"below the log end":  {leaderBatch(t, 4, 2, 3)},
		"epoch going back":   {leaderBatch(t, 5, 2, 3), leaderBatch(t, 7, 2, 2)},
		"bad crc":            {leaderBatch(t, 5, 2, 3), corrupt},
		"offsets going back": {leaderBatch(t, 6, 2, 3), leaderBatch(t, 5, 1, 3)},
	} {
		if _, _, err := h.log.AppendAsFollower(bs); err == nil {
			t.Fatalf("%s: appended", name)
		}
		if h.log.LogEndOffset() != 5 || h.log.LatestEpoch() != 3 {
			t.Fatalf("%s: log end %d, latest epoch %d after a refused append", name, h.log.LogEndOffset(), h.log.LatestEpoch())
		}
	}
	if err := h.log.Err(); err != nil {
		t.Fatalf("a refused append poisoned the log: %v", err)
	}
}

// A crash in the middle of a follower's appends (any prefix of the unsynced writes
// survives, the last one torn) must leave a log that opens, holds a prefix of the
// leader's batches, and whose epoch cache describes them.
func TestFollowerAppendCrashMidway(t *testing.T) {
	want := leaderLog(t)
	for seed := uint64(0); seed < 300; seed++ {
		fsys := vfs.NewMem()
		clk := newClock()
		l, err := Open(fsys, dir, Config{SegmentBytes: 300}, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.AppendAsFollower(want[:2]); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, b := range want[2:] {
			if _, _, err := l.AppendAsFollower([]batch.Batch{b}); err != nil {
				t.Fatal(err)
			}
		}
		crashed := fsys.CrashPartial(rand.New(rand.NewPCG(seed, 1)))
		l2, err := Open(crashed, dir, Config{SegmentBytes: 300}, clk.now)
		if err != nil {
			t.Fatalf("seed %d: open after the crash: %v", seed, err)
		}
		got := logBatches(t, l2)
		if len(got) < 2 {
			t.Fatalf("seed %d: the synced batches are gone (%d left)", seed, len(got))
		}
		checkPrefix(t, got, want)
		checkEpochsMatch(t, l2)
		// The follower goes on from where the crash left it.
		if _, _, err := l2.AppendAsFollower(want[len(got):]); err != nil {
			t.Fatalf("seed %d: append after the crash: %v", seed, err)
		}
		checkPrefix(t, logBatches(t, l2), want)
		checkEpochsMatch(t, l2)
		l.Close()
		l2.Close()
	}
}

// A replica that became leader in epoch 5 and appended nothing holds the entry 5@10. As
// a follower of the epoch 6 leader, which never had epoch 5, it is told its epoch 5
// ended where epoch 1 did (10): the truncation to 10 removes no batch but must drop
// the entry, or the next fetch names epoch 5 again and diverges again, forever.
func TestTruncateAsFollowerAtLogEndDropsStaleEpoch(t *testing.T) {
	h := newHarness(t, Config{})
	if _, _, err := h.log.AppendAsFollower([]batch.Batch{leaderBatch(t, 0, 10, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := h.log.AssignEpoch(5, 10); err != nil {
		t.Fatal(err)
	}
	if err := h.log.TruncateAsFollower(10); err != nil {
		t.Fatal(err)
	}
	if e := h.log.LatestEpoch(); e != 1 {
		t.Fatalf("latest epoch %d after truncating to the log end, want 1", e)
	}
	h.reopen()
	if e := h.log.LatestEpoch(); e != 1 {
		t.Fatalf("latest epoch %d after reopening, want 1", e)
	}
	// The new leader's batches follow.
	if _, _, err := h.log.AppendAsFollower([]batch.Batch{leaderBatch(t, 10, 2, 6)}); err != nil {
		t.Fatal(err)
	}
	if e, off := h.log.EndOffsetForEpoch(1); e != 1 || off != 10 {
		t.Fatalf("EndOffsetForEpoch(1) = (%d, %d)", e, off)
	}
}

// A follower truncates its diverged tail and appends the new leader's batches; a
// machine crash before those are synced must not bring the tail back: the cut is
// synced before TruncateAsFollower returns.
func TestFollowerTruncationSurvivesCrash(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 400})
	var old []batch.Batch
	for off := int64(0); off < 20; off += 2 {
		old = append(old, leaderBatch(t, off, 2, 1))
	}
	if _, _, err := h.log.AppendAsFollower(old); err != nil {
		t.Fatal(err)
	}
	if err := h.log.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := h.log.TruncateAsFollower(11); err != nil { // inside the batch 10-11: cut at 10
		t.Fatal(err)
	}
	if h.log.LogEndOffset() != 10 {
		t.Fatalf("log end %d after truncating to 11, want 10 (a batch boundary)", h.log.LogEndOffset())
	}
	fresh := []batch.Batch{leaderBatch(t, 10, 3, 2), leaderBatch(t, 13, 3, 2)}
	if _, _, err := h.log.AppendAsFollower(fresh); err != nil {
		t.Fatal(err)
	}
	h.fs = h.fs.(*vfs.MemFS).Crash() // only what was synced survives
	h.open()
	got := logBatches(t, h.log)
	checkPrefix(t, got, old[:5])
	if h.log.LogEndOffset() != 10 {
		t.Fatalf("log end %d after the crash, want 10: the truncated tail came back", h.log.LogEndOffset())
	}
	checkEpochsMatch(t, h.log)
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	h := newHarness(t, Config{})
	if _, _, err := h.log.AppendAsFollower([]batch.Batch{leaderBatch(t, 0, 10, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := h.log.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if h.log.LogStartOffset() != 100 || h.log.LogEndOffset() != 100 || h.log.LatestEpoch() != -1 {
		t.Fatalf("start %d end %d epoch %d", h.log.LogStartOffset(), h.log.LogEndOffset(), h.log.LatestEpoch())
	}
	if _, _, err := h.log.AppendAsFollower([]batch.Batch{leaderBatch(t, 100, 2, 3)}); err != nil {
		t.Fatal(err)
	}
	h.fs = h.fs.(*vfs.MemFS).Crash()
	h.open()
	if h.log.LogStartOffset() != 100 || h.log.LogEndOffset() < 100 {
		t.Fatalf("after a crash: start %d end %d", h.log.LogStartOffset(), h.log.LogEndOffset())
	}
	if _, err := h.log.Read(50, 200, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
}
