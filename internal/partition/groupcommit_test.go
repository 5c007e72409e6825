package partition

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// A failed fsync fails the append it was for and poisons the log: Linux may have dropped
// the batch's bytes and will report success for the next fsync, so no later fsync may
// "cover" it. The high watermark stays below it; the idempotent producer's retry is not
// answered as a duplicate (at an offset whose bytes may be gone) but with the storage
// error, as is every append and read until the partition is reopened. Reopened, the log
// holds only what was durable and the retry is appended.
func TestGroupCommitSyncFailure(t *testing.T) {
	mem := vfs.NewMem()
	counter := &syncCounter{}
	p := openSynced(t, vfs.WithErrors(mem, counter))
	if res, err := p.Append(idem(t, 1, 0)); err != nil || res.BaseOffset != 0 {
		t.Fatalf("first append = %+v, %v", res, err)
	}
	counter.fail.Store(1)
	if _, err := p.Append(idem(t, 1, 2)); err == nil {
		t.Fatal("append succeeded although its fsync failed")
	}
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after a failed fsync, want 2", hw)
	}
	if res, err := p.Append(idem(t, 1, 2)); !errors.Is(err, log.ErrStorage) {
		t.Fatalf("the idempotent retry = %+v, %v; want the storage error, not a duplicate", res, err)
	}
	if _, err := p.Append(plainBatch(t, "y")); !errors.Is(err, log.ErrStorage) {
		t.Fatalf("a later append = %v, want the storage error", err)
	}
	if _, err := p.Read(0, 1<<20, true, false); !errors.Is(err, log.ErrStorage) {
		t.Fatalf("read = %v, want the storage error", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened over the same files (the process restarted), then after a crash.
	p2 := openSynced(t, mem)
	if got := p2.LogEndOffset(); got != 2 {
		t.Fatalf("log end offset after reopening %d, want 2: only the first batch was durable", got)
	}
	if res, err := p2.Append(idem(t, 1, 2)); err != nil || res.BaseOffset != 2 {
		t.Fatalf("the retry after reopening = %+v, %v; want it appended at 2", res, err)
	}
	p2.Log().Close()
	p3 := openSynced(t, mem.Crash())
	defer p3.Log().Close()
	if got := p3.LogEndOffset(); got != 4 {
		t.Errorf("log end offset after crash %d, want 4", got)
	}
}

// blockingSync blocks the next segment fsync after arm until released, then fails it
// or not.
type blockingSync struct {
	armed            atomic.Bool
	entered, release chan struct{}
	fail             bool
}

func (b *blockingSync) MaybeError(op vfs.Op) error {
	if op.Kind != vfs.OpSync || !strings.HasSuffix(op.Path, ".log") || !b.armed.CompareAndSwap(true, false) {
		return nil
	}
	close(b.entered)
	<-b.release
	if b.fail {
		return errors.New("injected fsync failure")
	}
	return nil
}

// An idempotent producer's retry that arrives while the original batch's fsync is still
// running (the client timed out) is a duplicate, but it is answered only once the
// original is durable, with the original's outcome: here the fsync fails, and both get
// an error. Answering it at once would acknowledge bytes the disk then dropped.
func TestDuplicateWaitsForOriginalFsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := &blockingSync{entered: make(chan struct{}), release: make(chan struct{}), fail: true}
		p := openSynced(t, vfs.WithErrors(vfs.NewMem(), block))
		defer p.Log().Close()
		released := false
		release := func() {
			if !released {
				released = true
				close(block.release)
			}
		}
		defer release() // a failed check must not leave the fsync blocked
		if _, err := p.Append(idem(t, 1, 0)); err != nil {
			t.Fatal(err)
		}
		block.armed.Store(true)
		errA, errB := make(chan error, 1), make(chan error, 1)
		go func() { _, err := p.Append(idem(t, 1, 2)); errA <- err }()
		<-block.entered
		go func() { _, err := p.Append(idem(t, 1, 2)); errB <- err }()
		synctest.Wait()
		select {
		case err := <-errB:
			t.Fatalf("the retry was answered (err %v) while the original's fsync was still running", err)
		default:
		}
		release()
		synctest.Wait()
		for _, ch := range []chan error{errA, errB} {
			if err := <-ch; err == nil {
				t.Fatal("append succeeded although the fsync failed")
			}
		}
		if hw := p.HighWatermark(); hw != 2 {
			t.Fatalf("high watermark %d, want 2", hw)
		}
	})
}
