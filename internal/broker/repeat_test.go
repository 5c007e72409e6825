package broker

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// TestRepeatedErrorLinesAreCounted: a producer snapshot that fails every second (a full
// disk) is logged once a minute with a count of the lines it stands for, not 150 times
// in two and a half minutes.
func TestRepeatedErrorLinesAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var full atomic.Bool
		fsys := vfs.WithErrors(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op) error {
			if full.Load() && strings.Contains(op.Path, "producer-state-") && (op.Kind == vfs.OpOpen || op.Kind == vfs.OpWrite) {
				return syscall.ENOSPC
			}
			return nil
		}))
		var logs syncBuffer
		b := mustOpenBroker(t, fsys, &logs, map[string]string{"log.cleaner.enable": "false"})
		if _, err := b.CreateTopic("t", 1, 1, map[string]string{"internal.segment.bytes": "300"}, false); err != nil {
			t.Fatal(err)
		}
		full.Store(true)
		p := b.Partition("t", 0)
		for p.Log().ActiveSegmentBase() == 0 {
			bt, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: make([]byte, 100), Timestamp: b.Now().UnixMilli()}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Append(bt); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(150 * time.Second) // 150 housekeeping rounds, each failing the snapshot
		full.Store(false)
		b.Close()
		lines := 0
		counted := false
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "producer snapshot") {
				lines++
				counted = counted || strings.Contains(l, "more like it in the last 1m0s")
			}
		}
		if lines == 0 || lines > 4 || !counted {
			t.Fatalf("%d producer snapshot lines in 150s (a count among them: %v):\n%s", lines, counted, logs.String())
		}
	})
}
