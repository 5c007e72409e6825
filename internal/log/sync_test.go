package log

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// TestFlushWaitsForRunningFsync: while a group commit's fsync of an older segment is
// still running, a concurrent Flush, FlushIfDue or Close must not move the recovery
// point (or write the clean-shutdown marker) past that segment, nor report success for
// appends the running fsync has not made durable yet. A crash at any moment must find a
// log that is a prefix of what was appended, with no hole, and everything a successful
// flush covered.
func TestFlushWaitsForRunningFsync(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(l *Log) error
	}{
		{"Flush", (*Log).Flush},
		{"FlushIfDue", (*Log).FlushIfDue},
		{"Close", (*Log).Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := vfs.NewMem()
				var armed atomic.Bool
				entered, release := make(chan struct{}), make(chan struct{})
				var released atomic.Bool
				unblock := func() {
					if released.CompareAndSwap(false, true) {
						close(release)
					}
				}
				defer unblock() // a failed check must not leave the fsync blocked
				first := segmentName(0, logSuffix)
				efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
					// The group commit's fsync of the first segment takes until released.
					if op.Kind == vfs.OpSync && strings.HasSuffix(op.Path, first) && armed.CompareAndSwap(true, false) {
						close(entered)
						<-release
					}
					return nil
				}))
				cfg := Config{FlushIntervalMessages: 1, FlushInterval: time.Second, IndexIntervalBytes: 1}
				l, err := Open(efs, dir, cfg, time.Now)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				ts := time.Now().UnixMilli()
				bs := []batch.Batch{mkBatch(t, 0, 2, ts, 40)}
				if err := l.Append(bs[0]); err != nil { // durable: segment 0 and the directory synced
					t.Fatal(err)
				}
				deferred := func() int64 {
					b := mkBatch(t, l.LogEndOffset(), 2, ts, 40)
					ticket, err := l.AppendDeferred(b)
					if err != nil || ticket == 0 {
						t.Fatalf("AppendDeferred = %d, %v", ticket, err)
					}
					bs = append(bs, b)
					return ticket
				}
				deferred() // in segment 0, unsynced
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
				ticket := deferred() // in the new segment, unsynced

				armed.Store(true)
				errA := make(chan error, 1)
				go func() { errA <- l.SyncThrough(ticket) }()
				<-entered
				deferred()                  // more data during the fsync
				time.Sleep(2 * time.Second) // and old enough for FlushIfDue
				errB := make(chan error, 1)
				go func() { errB <- tc.op(l) }()
				synctest.Wait()

				// Crash now, with the group commit's fsync still running.
				select {
				case err := <-errB:
					if err != nil {
						t.Fatalf("%s during a running fsync: %v", tc.name, err)
					}
					// It returned while the fsync of segment 0 is running: it must have made
					// everything durable itself.
					checkCrash(t, mem.Crash(), cfg, bs, len(bs))
					errB <- nil
				default:
					checkCrash(t, mem.Crash(), cfg, bs, 1)
				}

				unblock()
				synctest.Wait()
				if err := <-errA; err != nil {
					t.Fatalf("SyncThrough: %v", err)
				}
				if err := <-errB; err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				checkCrash(t, mem.Crash(), cfg, bs, len(bs))
			})
		})
	}
}

// checkCrash opens the crashed filesystem and checks that the log is a prefix of bs
// holding at least the first durable batches, readable from every offset.
func checkCrash(t *testing.T, crashed *vfs.MemFS, cfg Config, bs []batch.Batch, durable int) {
	t.Helper()
	r, err := Open(crashed, dir, cfg, time.Now)
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer r.Close()
	n := 0
	for n < len(bs) && bs[n].LastOffset() < r.LogEndOffset() {
		n++
	}
	if n < durable {
		t.Fatalf("after a crash the log ends at %d: %d of the %d durable batches survived", r.LogEndOffset(), n, durable)
	}
	if got := readBatches(t, r, 0, 1<<62, 1<<40, true); len(got) != n {
		t.Fatalf("after a crash the log ends at %d but holds %d batches, not %d: a hole where batches were never synced", r.LogEndOffset(), len(got), n)
	}
	checkContent(t, r, bs[:n])
}

// TestFailedFsyncPoisons: after a failed fsync, whose data the disk may have dropped,
// the log answers the error to every append, flush and read instead of letting a later
// fsync "cover" the lost bytes; reopened, it holds what was durable and takes appends.
func TestFailedFsyncPoisons(t *testing.T) {
	mem := vfs.NewMem()
	failSync := failOnce(vfs.OpSync)
	efs := vfs.WithErrors(mem, failSync)
	cfg := Config{FlushIntervalMessages: 1}
	l, err := Open(efs, dir, cfg, newClock().now)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b0 := mkBatch(t, 0, 2, 0, 40)
	if err := l.Append(b0); err != nil {
		t.Fatal(err)
	}
	failSync.arm()
	if err := l.Append(mkBatch(t, 2, 2, 0, 40)); !errors.Is(err, vfs.ErrInjected) || !errors.Is(err, ErrStorage) {
		t.Fatalf("append whose fsync failed = %v", err)
	}
	if err := l.Append(mkBatch(t, l.LogEndOffset(), 2, 0, 40)); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("append after a failed fsync = %v, want the fsync's error", err)
	}
	if _, err := l.AppendDeferred(mkBatch(t, l.LogEndOffset(), 2, 0, 40)); !errors.Is(err, ErrStorage) {
		t.Fatalf("AppendDeferred after a failed fsync = %v", err)
	}
	if n, _, err := l.AppendBatches([]batch.Batch{mkBatch(t, l.LogEndOffset(), 2, 0, 40)}); n != 0 || !errors.Is(err, ErrStorage) {
		t.Fatalf("AppendBatches after a failed fsync = %d, %v", n, err)
	}
	if err := l.SyncThrough(l.SyncTicket()); !errors.Is(err, ErrStorage) {
		t.Fatalf("SyncThrough after a failed fsync = %v", err)
	}
	if _, err := l.Read(0, 1<<62, 1<<20, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("Read after a failed fsync = %v", err)
	}
	if err := l.Batches(0, func(batch.Batch) bool { return true }); !errors.Is(err, ErrStorage) {
		t.Fatalf("Batches after a failed fsync = %v", err)
	}
	if _, _, _, err := l.OffsetForTimestamp(0); !errors.Is(err, ErrStorage) {
		t.Fatalf("OffsetForTimestamp after a failed fsync = %v", err)
	}
	if _, _, err := l.MaxTimestamp(); !errors.Is(err, ErrStorage) {
		t.Fatalf("MaxTimestamp after a failed fsync = %v", err)
	}
	if _, err := l.EnforceRetention(); !errors.Is(err, ErrStorage) {
		t.Fatalf("EnforceRetention after a failed fsync = %v", err)
	}
	if err := l.TruncateTo(0); !errors.Is(err, ErrStorage) {
		t.Fatalf("TruncateTo after a failed fsync = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(mem, cleanShutdownFile) {
		t.Fatal("a poisoned log wrote the clean-shutdown marker")
	}
	for _, fsys := range []*vfs.MemFS{mem, mem.Crash()} {
		r, err := Open(fsys, dir, cfg, newClock().now)
		if err != nil {
			t.Fatal(err)
		}
		checkContent(t, r, []batch.Batch{b0})
		b1 := mkBatch(t, 2, 3, 0, 40)
		if err := r.Append(b1); err != nil {
			t.Fatalf("append after reopening: %v", err)
		}
		checkContent(t, r, []batch.Batch{b0, b1})
		r.Close()
	}
}

// TestDirStateSharesFailure: the first failure of one log takes its log directory
// offline: the other logs in it answer the error, and the owner is told once.
func TestDirStateSharesFailure(t *testing.T) {
	mem := vfs.NewMem()
	var told []string
	ds := NewDirState("/data", func(path string, err error) {
		told = append(told, path+": "+err.Error())
	})
	var failing atomic.Bool
	efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
		if failing.Load() && op.Kind == vfs.OpWrite && strings.HasPrefix(op.Path, "/data/a-0/") {
			return &vfs.Partial{N: op.Len / 2}
		}
		return nil
	}))
	open := func(d string) *Log {
		l, err := Open(efs, d, Config{}, newClock().now)
		if err != nil {
			t.Fatal(err)
		}
		l.SetDirState(ds)
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open("/data/a-0"), open("/data/b-0")
	if err := b.Append(mkBatch(t, 0, 1, 0, 10)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if err := a.Append(mkBatch(t, 0, 1, 0, 10)); !errors.Is(err, ErrStorage) || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("short write = %v", err)
	}
	if err := b.Append(mkBatch(t, 1, 1, 0, 10)); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "log dir /data is offline") {
		t.Fatalf("append to another log of the failed dir = %v", err)
	}
	if _, err := b.Read(0, 1<<62, 1<<20, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("read of another log of the failed dir = %v", err)
	}
	a.Close() // a second failure report would come from here if Fail were not once only
	if len(told) != 1 || !strings.Contains(told[0], "/data/a-0") {
		t.Fatalf("owner told %q, want once about /data/a-0", told)
	}
	if ds.Err() == nil {
		t.Fatal("dir state online after a failure")
	}
}

// onceFailer fails the next operation of a kind after arm, once.
type onceFailer struct {
	kind  vfs.OpKind
	armed atomic.Bool
}

func failOnce(kind vfs.OpKind) *onceFailer { return &onceFailer{kind: kind} }

func (f *onceFailer) arm() { f.armed.Store(true) }

func (f *onceFailer) MaybeError(op vfs.Op) error {
	if op.Kind == f.kind && f.armed.CompareAndSwap(true, false) {
		return vfs.ErrInjected
	}
	return nil
}

// TestCrashWithFaults appends under seeded short writes and fsync failures, with every
// append fsynced before it is acknowledged (flush.messages=1). A failure poisons the log;
// the log is then reopened, over the same files or after a crash. Whatever happens, every
// acknowledged batch survives, in order, and the only other batch a reopened log may hold
// is the one whose append failed last (its bytes may all have reached the file, as a
// timed-out produce's may in Kafka).
func TestCrashWithFaults(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 3))
		syncs := vfs.InjectorFunc(func(op vfs.Op) error {
			if op.Kind == vfs.OpSync && rng.IntN(25) == 0 {
				return vfs.ErrInjected
			}
			return nil
		})
		faults := vfs.Chain{vfs.NewShortWrites(seed, 0.03), syncs}
		mem := vfs.NewMem()
		efs := vfs.WithErrors(mem, nil)
		cfg := Config{SegmentBytes: 1500, IndexIntervalBytes: 200, FlushIntervalMessages: 1}
		open := func(fsys vfs.FS) *Log {
			efs.FS, efs.Inj = fsys, nil
			l, err := Open(efs, dir, cfg, newClock().now)
			if err != nil {
				t.Fatalf("seed %d: open: %v", seed, err)
			}
			efs.Inj = faults
			return l
		}
		l := open(mem)
		var acked []batch.Batch
		failures := 0
		for range 80 {
			b := mkBatch(t, l.LogEndOffset(), 1+rng.IntN(3), 0, rng.IntN(120))
			err := l.Append(b)
			if err == nil {
				acked = append(acked, b)
				continue
			}
			if !errors.Is(err, ErrStorage) {
				t.Fatalf("seed %d: append failed with %v, not a storage error", seed, err)
			}
			failures++
			l.abandon()
			switch rng.IntN(3) {
			case 0:
				l = open(mem)
			case 1:
				mem = mem.Crash()
				l = open(mem)
			default:
				mem = mem.CrashPartial(rng)
				l = open(mem)
			}
			efs.Inj = nil
			got := readBatches(t, l, 0, 1<<62, 1<<40, true)
			switch {
			case len(got) == len(acked)+1 && bytes.Equal(got[len(acked)], b):
				acked = append(acked, b)
			case len(got) != len(acked):
				t.Fatalf("seed %d: reopened log holds %d batches, %d acknowledged", seed, len(got), len(acked))
			}
			checkContent(t, l, acked)
			efs.Inj = faults
		}
		efs.Inj = nil
		l.abandon()
		mem = mem.Crash()
		r := open(mem)
		efs.Inj = nil
		checkContent(t, r, acked)
		r.Close()
		if seed == 0 && failures == 0 {
			t.Fatal("no injected failure: the test tests nothing")
		}
	}
}
