package broker

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// openTestBroker opens a broker over an in-memory filesystem.
func openTestBroker(t *testing.T, over map[string]string) *Broker {
	t.Helper()
	ov := map[string]string{"log.dirs": "/data"}
	for k, v := range over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openServing(cfg, Options{FS: vfs.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fillCompacted creates a compacted topic and appends rounds of updates to a few keys.
func fillCompacted(t *testing.T, b *Broker, topic string) {
	t.Helper()
	if _, err := b.CreateTopic(topic, 1, 1, map[string]string{
		"cleanup.policy": "compact", "internal.segment.bytes": "300", "min.cleanable.dirty.ratio": "0.1",
	}, false); err != nil {
		t.Fatal(err)
	}
	p := b.Partition(topic, 0)
	for r := range 20 {
		var recs []batch.Record
		for k := range 3 {
			recs = append(recs, batch.Record{Timestamp: b.Now().UnixMilli(), Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", r)})
		}
		bt, err := batch.Build(batch.BuildOptions{}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(bt); err != nil {
			t.Fatal(err)
		}
	}
	// As the flush loop does within a second of a roll: the cleaner compacts only
	// below the recovery point.
	if err := p.Log().Flush(); err != nil {
		t.Fatal(err)
	}
}

func records(t *testing.T, b *Broker, topic string) int {
	t.Helper()
	n := 0
	err := b.Partition(topic, 0).Log().Batches(0, func(h batch.Batch) bool {
		n += int(h.RecordCount())
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCleanNowCleansCompactedTopicsOnly(t *testing.T) {
	b := openTestBroker(t, map[string]string{"log.cleaner.enable": "false"})
	defer b.Close()
	fillCompacted(t, b, "table")
	if _, err := b.CreateTopic("stream", 1, 1, map[string]string{"internal.segment.bytes": "300"}, false); err != nil {
		t.Fatal(err)
	}
	cleaned, err := b.CleanNow()
	if err != nil || cleaned != 1 {
		t.Fatalf("CleanNow = %d, %v; want the one compacted partition", cleaned, err)
	}
	if n := records(t, b, "table"); n >= 60/2 {
		t.Fatalf("%d of 60 records left after cleaning", n)
	}
	// Nothing is dirty any more.
	if cleaned, err := b.CleanNow(); err != nil || cleaned != 0 {
		t.Fatalf("second CleanNow = %d, %v", cleaned, err)
	}
}

// TestCleanerLoop: the broker's own goroutine cleans after log.cleaner.backoff.ms, and
// Close stops it (synctest fails the test if a goroutine of the bubble is left).
func TestCleanerLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openTestBroker(t, map[string]string{"log.cleaner.backoff.ms": "1000"})
		fillCompacted(t, b, "table")
		synctest.Wait()
		if n := records(t, b, "table"); n != 60 {
			t.Fatalf("cleaned before the backoff: %d records", n)
		}
		time.Sleep(1001 * time.Millisecond)
		synctest.Wait()
		if n := records(t, b, "table"); n >= 60/2 {
			t.Fatalf("%d of 60 records left after the backoff", n)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// CleanerStats: each pass is counted with every compacted partition's dirty ratio, and
// the bytes a clean rewrote and removed add up.
func TestCleanerStats(t *testing.T) {
	b := openTestBroker(t, map[string]string{"log.cleaner.enable": "false"})
	defer b.Close()
	if st := b.CleanerStats(); st.Passes != 0 || !st.LastPass.IsZero() {
		t.Fatalf("before any pass: %+v", st)
	}
	fillCompacted(t, b, "table")
	before := b.Partition("table", 0).Log().Size()
	if n, err := b.CleanNow(); err != nil || n != 1 {
		t.Fatalf("CleanNow = %d, %v", n, err)
	}
	st := b.CleanerStats()
	if st.Passes != 1 || st.LastPass.IsZero() || len(st.Dirty) != 1 || st.Dirty[0].Topic != "table" || st.Dirty[0].Ratio <= 0 ||
		st.MaxDirtyRatio != st.Dirty[0].Ratio {
		t.Fatalf("after a pass: %+v", st)
	}
	after := b.Partition("table", 0).Log().Size()
	if st.BytesRemoved != before-after || st.BytesCleaned <= st.BytesRemoved {
		t.Fatalf("bytes cleaned %d, removed %d; the log went from %d to %d bytes", st.BytesCleaned, st.BytesRemoved, before, after)
	}
	if _, err := b.CleanNow(); err != nil {
		t.Fatal(err)
	}
	if st := b.CleanerStats(); st.Passes != 2 {
		t.Fatalf("after two passes: %+v", st)
	}
}
