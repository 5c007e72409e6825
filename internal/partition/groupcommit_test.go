package partition

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// syncCounter counts the fsyncs of segment files and makes each take a while, as a disk
// does, so that concurrent appenders pile up behind one.
type syncCounter struct {
	syncs atomic.Int64
	fail  atomic.Int64 // fail this many segment fsyncs first
}

func (c *syncCounter) MaybeError(op vfs.Op) error {
	if op.Kind != vfs.OpSync || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	if c.fail.Add(-1) >= 0 {
		return errors.New("injected fsync failure")
	}
	c.syncs.Add(1)
	time.Sleep(2 * time.Millisecond)
	return nil
}

// openTest opens a partition over fsys with the given log config.
func openTest(t *testing.T, fsys vfs.FS, lc log.Config) *Partition {
	t.Helper()
	l, err := log.Open(fsys, "/data/t-0", lc, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open("t", 0, l, Config{MaxMessageBytes: 1 << 20, MaxDecompressed: 1 << 20, TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1}, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openSynced(t *testing.T, fsys vfs.FS) *Partition {
	t.Helper()
	return openTest(t, fsys, log.Config{FlushIntervalMessages: 1})
}

func plainBatch(t *testing.T, value string) batch.Batch {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte(value), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		t.Fatal(err)
	}
	return batch.Batch(b)
}

// With flush.messages=1 every acknowledged append must survive a crash that drops what
// was not fsynced, and concurrent appends must share fsyncs rather than queue for one
// each.
func TestGroupCommitSharesFsyncsAndLosesNothing(t *testing.T) {
	mem := vfs.NewMem()
	counter := &syncCounter{}
	p := openSynced(t, vfs.WithErrors(mem, counter))

	const writers, each = 8, 40
	var wg sync.WaitGroup
	acked := make(chan int64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				res, err := p.Append(plainBatch(t, string(rune('a'+w))+string(rune('0'+i%10))))
				if err != nil {
					t.Error(err)
					return
				}
				if hw := p.HighWatermark(); hw <= res.BaseOffset {
					t.Errorf("acknowledged offset %d not below the high watermark %d", res.BaseOffset, hw)
				}
				acked <- res.BaseOffset
			}
		}()
	}
	wg.Wait()
	close(acked)
	if t.Failed() {
		return
	}
	n := counter.syncs.Load()
	t.Logf("%d appends, %d segment fsyncs", writers*each, n)
	if n > writers*each/2 {
		t.Errorf("%d fsyncs for %d concurrent appends: not shared", n, writers*each)
	}

	// Crash without closing: only fsynced bytes remain.
	p2 := openSynced(t, mem.Crash())
	defer p2.Log().Close()
	for off := range acked {
		rs, err := p2.Read(off, 1<<20, true, false)
		if err != nil || len(rs) == 0 {
			t.Fatalf("acknowledged offset %d lost after the crash: %v", off, err)
		}
	}
	if got := p2.LogEndOffset(); got != writers*each {
		t.Errorf("log end offset after crash %d, want %d", got, writers*each)
	}
}

// A failed fsync fails the append it was for, leaves the high watermark below it, and a
// later append's fsync covers both.
func TestGroupCommitSyncFailure(t *testing.T) {
	mem := vfs.NewMem()
	counter := &syncCounter{}
	p := openSynced(t, vfs.WithErrors(mem, counter))
	defer p.Log().Close()
	counter.fail.Store(1)
	if _, err := p.Append(plainBatch(t, "x")); err == nil {
		t.Fatal("append succeeded although its fsync failed")
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d after a failed fsync, want 0", hw)
	}
	res, err := p.Append(plainBatch(t, "y"))
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset != 1 || p.HighWatermark() != 2 {
		t.Fatalf("second append at %d, high watermark %d; want 1 and 2", res.BaseOffset, p.HighWatermark())
	}
	p2 := openSynced(t, mem.Crash())
	defer p2.Log().Close()
	if got := p2.LogEndOffset(); got != 2 {
		t.Errorf("log end offset after crash %d, want 2", got)
	}
}
