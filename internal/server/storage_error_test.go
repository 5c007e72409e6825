package server_test

import (
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// TestFullDiskAnswersStorageError: a write that fails for lack of space is answered
// KAFKA_STORAGE_ERROR, leaves nothing behind, and appends resume when space returns.
func TestFullDiskAnswersStorageError(t *testing.T) {
	var full atomic.Bool
	fsys := vfs.WithErrors(vfs.OS(), vfs.InjectorFunc(func(op vfs.Op) error {
		if full.Load() && op.Kind == vfs.OpWrite && strings.HasSuffix(op.Path, ".log") {
			return syscall.ENOSPC
		}
		return nil
	}))
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": t.TempDir(), "listeners": "PLAINTEXT://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, broker.Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	n := &node{t: t, srv: srv, addr: srv.Addrs()[0]}
	n.createTopic(t, "disk", 1, nil)
	r := dialRaw(t, n.addr)

	if p := produceRaw(t, r, "disk", -1, buildBatch(t, batch.BuildOptions{}, "a")); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("before: %+v", p)
	}
	full.Store(true)
	if p := produceRaw(t, r, "disk", -1, buildBatch(t, batch.BuildOptions{}, "b")); p.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("full disk: %+v", p)
	}
	full.Store(false)
	if p := produceRaw(t, r, "disk", -1, buildBatch(t, batch.BuildOptions{}, "c")); p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("after: %+v", p)
	}
}
