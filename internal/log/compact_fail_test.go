package log

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// TestFailedSwapPoisonsTheLog: a compaction swap whose renames or directory sync fail
// leaves files only recovery can sort out, and Linux may have lost the directory
// change: as Kafka's cleaner takes the log dir offline on an I/O error, the log is
// poisoned (appends and reads answer ErrStorage) until it is reopened. And a log that is
// already poisoned swaps nothing in.
func TestFailedSwapPoisonsTheLog(t *testing.T) {
	cfg := Config{SegmentBytes: 150, IndexIntervalBytes: 40}
	build := func(fsys vfs.FS, clk *clock) *Log {
		l, err := Open(fsys, dir, cfg, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		for r := range 6 {
			appendKV(t, l, clk.now().UnixMilli()+int64(r), fmt.Sprintf("a=%d", r), fmt.Sprintf("b%d=%d", r%3, r))
		}
		roll(t, l)
		flush(t, l)
		return l
	}
	for _, kind := range []vfs.OpKind{vfs.OpRename, vfs.OpSyncDir} {
		t.Run(kind.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			efs := vfs.WithErrors(mem, nil)
			clk := newClock()
			l := build(efs, clk)
			boom := errors.New("injected")
			swapping := false // a file has been renamed to .swap: the swap is under way
			efs.Inj = vfs.InjectorFunc(func(op vfs.Op) error {
				if op.Kind == kind && (swapping || kind == vfs.OpRename && strings.Contains(op.Path, ".cleaned")) {
					return boom
				}
				if op.Kind == vfs.OpRename && strings.Contains(op.Path, ".cleaned") {
					swapping = true
				}
				return nil
			})
			_, err := NewCleaner(1<<20).Clean(l, CleanOptions{DeleteRetention: time.Hour, HighWatermark: l.LogEndOffset()})
			efs.Inj = nil
			if !errors.Is(err, boom) {
				t.Fatalf("clean with a failing %s: %v, want the injected error", kind, err)
			}
			if !errors.Is(l.Err(), ErrStorage) {
				t.Fatalf("after a failed swap the log is not poisoned: Err() = %v", l.Err())
			}
			b, err := batch.Build(batch.BuildOptions{BaseOffset: l.LogEndOffset()}, []batch.Record{{Timestamp: clk.now().UnixMilli(), Key: []byte("c"), Value: []byte("1")}})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Append(b); !errors.Is(err, ErrStorage) {
				t.Fatalf("append after a failed swap: %v, want ErrStorage", err)
			}
			l.abandon()
		})
	}

	// A poisoned log is not cleaned: its files stay as they are for recovery.
	mem := vfs.NewMem()
	efs := vfs.WithErrors(mem, nil)
	clk := newClock()
	l := build(efs, clk)
	l.fail(errors.New("an earlier fsync failed"))
	renames := 0
	efs.Inj = vfs.InjectorFunc(func(op vfs.Op) error {
		if op.Kind == vfs.OpRename {
			renames++
		}
		return nil
	})
	if _, err := NewCleaner(1<<20).Clean(l, CleanOptions{DeleteRetention: time.Hour, HighWatermark: l.LogEndOffset()}); !errors.Is(err, ErrStorage) {
		t.Fatalf("clean of a poisoned log: %v, want ErrStorage", err)
	}
	if renames != 0 {
		t.Fatalf("a clean of a poisoned log renamed %d files", renames)
	}
	l.abandon()
}
