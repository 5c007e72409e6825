package broker

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// producerBatch is producer pid's batch at seq with one record written at ts.
func producerBatch(t *testing.T, pid int64, seq int32, ts time.Time) batch.Batch {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq},
		[]batch.Record{{Timestamp: ts.UnixMilli(), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// producer.id.expiration.ms applies to every partition, and a dynamic change of it
// applies from the next check.
func TestBrokerExpiresProducers(t *testing.T) {
	var clockMs atomic.Int64 // housekeeping reads it too
	clockMs.Store(1_700_000_000_000)
	now := func() time.Time { return time.UnixMilli(clockMs.Load()) }
	setClock := func(t time.Time) { clockMs.Store(t.UnixMilli()) }
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/data"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openServing(cfg, Options{FS: vfs.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("t", 2, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	start := now()
	for i := range int32(2) {
		for seq := int32(0); seq < 3; seq++ {
			if _, err := b.Partition("t", i).Append(producerBatch(t, 7, seq, start)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// gapTaken reports whether partition i takes producer 7's batch at sequence seq, a
	// gap, written now: only once it has forgotten the producer.
	gapTaken := func(i int32, seq int32) bool {
		_, err := b.Partition("t", i).Append(producerBatch(t, 7, seq, now()))
		if err != nil && !errors.Is(err, partition.ErrOutOfOrderSequence) {
			t.Fatal(err)
		}
		return err == nil
	}
	setClock(start.Add(23 * time.Hour))
	b.ExpireProducers()
	if gapTaken(0, 10) || gapTaken(1, 10) {
		t.Fatal("producer state expired before producer.id.expiration.ms (24 h)")
	}
	setClock(start.Add(24 * time.Hour))
	b.ExpireProducers()
	if !gapTaken(0, 10) || !gapTaken(1, 10) {
		t.Fatal("producer state kept past producer.id.expiration.ms")
	}

	// Dynamically one hour: the producer's last batch (sequence 10) is an hour old.
	one := "3600000"
	if err := b.AlterBrokerConfigs("", []ConfigChange{{Key: "producer.id.expiration.ms", Value: &one}}, false); err != nil {
		t.Fatal(err)
	}
	setClock(now().Add(time.Hour))
	b.ExpireProducers()
	if !gapTaken(0, 20) {
		t.Fatal("a dynamic producer.id.expiration.ms was not applied")
	}
}

// lockedBuffer is a log destination shared with the housekeeping goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A producer snapshot a restart cannot use is logged, with where the state was rebuilt
// from; it used to be dropped without a word.
func TestBrokerLogsUnusableProducerSnapshot(t *testing.T) {
	fsys := vfs.NewMem()
	var out lockedBuffer
	open := func() *Broker {
		cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/data"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := openServing(cfg, Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(&out, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	if _, err := b.CreateTopic("t", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Partition("t", 0).Append(producerBatch(t, 7, 0, time.Now())); err != nil {
		t.Fatal(err)
	}
	dir := b.Partition("t", 0).Log().Dir()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "producer-state.snapshot")
	data, err := vfs.ReadFile(fsys, snap, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := vfs.WriteFileAtomic(fsys, snap, data); err != nil {
		t.Fatal(err)
	}
	b = open()
	defer b.Close()
	b.ExpireProducers() // logs the note, unless housekeeping's first run already has
	if got := out.String(); !strings.Contains(got, "producer state snapshot") || !strings.Contains(got, "clean-close snapshot not used") {
		t.Fatalf("no line about the unusable snapshot in:\n%s", got)
	}
}
