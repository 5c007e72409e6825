package handler_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/vfs"
)

// FuzzServe feeds arbitrary request frames to the handler over a real broker on an
// in-memory filesystem: whatever a client sends, the handler answers, refuses or asks
// for the connection to be closed, and never panics.
func FuzzServe(f *testing.F) {
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/data", "listeners": "PLAINTEXT://127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(cfg, broker.Options{FS: vfs.NewMem(), Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	b.SetAdvertised([]string{"127.0.0.1:9092"})
	groups := group.New(group.Config{NumPartitions: 3, InitialRebalanceDelay: -1, Logger: logger, Topics: b.GroupTopics, Now: b.Now}, b.GroupStore())
	if err := groups.Load(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(groups.Close)
	h, err := handler.New(b, groups)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := b.CreateTopic("t", 2, 1, nil, false); err != nil {
		f.Fatal(err)
	}

	// Seeds: a default request of every key at every version we serve.
	for key := int16(0); key < 80; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			fr := binary.BigEndian.AppendUint16(nil, uint16(key))
			fr = binary.BigEndian.AppendUint16(fr, uint16(v))
			fr = binary.BigEndian.AppendUint32(fr, 1)
			fr = binary.BigEndian.AppendUint16(fr, 1)
			fr = append(fr, 'c')
			if req.IsFlexible() {
				fr = append(fr, 0)
			}
			f.Add(req.AppendTo(fr))
		}
	}
	client := &handler.Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no request may wait: a join or a long poll returns at once
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, _ := h.Serve(ctx, client, frame)
			if resp != nil {
				resp.Release()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("Serve hung on %x\n%s", frame, buf[:runtime.Stack(buf, true)])
		}
	})
}
