package broker

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// TestLogDirFailure: with two log dirs, a failed write takes only its own dir offline:
// the partitions there answer storage errors, those in the other dir go on, and the
// broker halts only when the second dir fails too. A failed dir's logs write no
// clean-shutdown marker.
func TestLogDirFailure(t *testing.T) {
	var mu sync.Mutex
	failing := map[string]bool{}
	efs := vfs.WithErrors(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op) error {
		mu.Lock()
		defer mu.Unlock()
		if op.Kind == vfs.OpWrite && failing[strings.SplitN(op.Path, "/", 3)[1]] {
			return &vfs.Partial{N: op.Len / 2, Err: syscall.EIO}
		}
		return nil
	}))
	fail := func(dir string) {
		mu.Lock()
		failing[strings.TrimPrefix(dir, "/")] = true
		mu.Unlock()
	}
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/d1,/d2"})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	b, err := openServing(cfg, Options{FS: efs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{"a", "b"} {
		if _, err := b.CreateTopic(name, 1, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := b.Partition("a", 0), b.Partition("b", 0)
	dirA, dirB := filepath.Dir(pa.Log().Dir()), filepath.Dir(pb.Log().Dir())
	if dirA == dirB {
		t.Fatalf("both partitions in %s; the test needs one per log dir", dirA)
	}
	appendTo := func(topic string) error {
		bt, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Partition(topic, 0).Append(bt)
		return err
	}
	for _, topic := range []string{"a", "b"} {
		if err := appendTo(topic); err != nil {
			t.Fatal(err)
		}
	}

	fail(dirA)
	if err := appendTo("a"); !errors.Is(err, log.ErrStorage) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append in the failing dir = %v", err)
	}
	if b.LogDirErr(dirA) == nil || b.LogDirErr(dirB) != nil {
		t.Fatalf("LogDirErr: %s %v, %s %v; want only %s offline", dirA, b.LogDirErr(dirA), dirB, b.LogDirErr(dirB), dirA)
	}
	if err := appendTo("b"); err != nil {
		t.Fatalf("append in the healthy dir: %v", err)
	}
	select {
	case <-b.Halted():
		t.Fatal("halted with one log dir still online")
	default:
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"log dir offline") || !strings.Contains(logs.String(), "dir="+dirA) {
		t.Fatalf("no ERROR line naming %s:\n%s", dirA, logs.String())
	}

	fail(dirB)
	if err := appendTo("b"); !errors.Is(err, log.ErrStorage) {
		t.Fatalf("append in the second failing dir = %v", err)
	}
	select {
	case <-b.Halted():
	default:
		t.Fatal("not halted with every log dir offline")
	}
	if err := b.HaltErr(); err == nil || !strings.Contains(err.Error(), "all log dirs in /d1, /d2 have failed") {
		t.Fatalf("HaltErr = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, d := range []string{pa.Log().Dir(), pb.Log().Dir()} {
		if _, err := efs.FS.Stat(filepath.Join(d, "clean-shutdown")); err == nil {
			t.Fatalf("%s: clean-shutdown marker written for a failed log", d)
		}
	}
}

// syncBuf is a log destination the test reads while the broker writes.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
