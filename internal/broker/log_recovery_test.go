package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// TestLogRecoveryRefusesWithoutOverride: a partition whose synced data is found damaged
// at start stops the broker with a message naming the partition and the key that lets
// recovery cut it; with vltava.log.recovery.truncate.below.recovery.point=true the
// broker starts, the log is cut there and the report is logged at WARN.
func TestLogRecoveryRefusesWithoutOverride(t *testing.T) {
	mem := vfs.NewMem()
	open := func(over map[string]string, logs *syncBuffer) (*Broker, error) {
		ov := map[string]string{"log.dirs": "/data", "log.cleaner.enable": "false"}
		for k, v := range over {
			ov[k] = v
		}
		cfg, err := config.Load("", nil, ov)
		if err != nil {
			t.Fatal(err)
		}
		return openServing(cfg, Options{FS: mem, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}
	var logs syncBuffer
	b, err := open(nil, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("t", 1, 1, map[string]string{"internal.segment.bytes": "300"}, false); err != nil {
		t.Fatal(err)
	}
	p := b.Partition("t", 0)
	for r := range 10 {
		bt, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Timestamp: b.Now().UnixMilli(), Value: fmt.Appendf(nil, "record %d %s", r, strings.Repeat("x", 60))}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(bt); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Log().NumSegments(); n < 3 {
		t.Fatalf("%d segments", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage the first segment, which was synced at the clean shutdown.
	seg := path.Join(p.Log().Dir(), "00000000000000000000.log")
	f, err := mem.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	f.Truncate(st.Size() - 1)
	f.Close()

	logs.Reset()
	if b, err := open(nil, &logs); err == nil {
		b.Close()
		t.Fatal("the broker started over a damaged synced segment")
	} else if !errors.Is(err, log.ErrCorruptBelowRecoveryPoint) || !strings.Contains(err.Error(), log.TruncateBelowRecoveryPointKey) {
		t.Fatalf("Open = %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "partition=t-0") {
		t.Fatalf("broker log:\n%s", out)
	}

	logs.Reset()
	b, err = open(map[string]string{log.TruncateBelowRecoveryPointKey: "true"}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rep := b.Partition("t", 0).Log().Recovery()
	if len(rep.Truncated) != 1 || rep.Truncated[0].Segment != 0 || !rep.Truncated[0].Synced || len(rep.Dropped) == 0 {
		t.Fatalf("report %+v", rep)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "partition=t-0") || !strings.Contains(out, ".aside") {
		t.Fatalf("broker log:\n%s", out)
	}
}
