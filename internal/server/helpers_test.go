package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

// node is an in-process broker on a random loopback port.
type node struct {
	t    *testing.T
	dir  string
	over map[string]string
	srv  *server.Server
	addr string
}

// startNode starts a broker with its data in a fresh temp dir (or dir, if restarting).
func startNode(t *testing.T, over map[string]string) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir(), over: over}
	n.start()
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *node) start() {
	n.t.Helper()
	ov := map[string]string{"log.dirs": n.dir, "listeners": "PLAINTEXT://127.0.0.1:0"}
	for k, v := range n.over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		n.t.Fatalf("config: %v", err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("VLTAVA_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, broker.Options{Logger: logger})
	if err != nil {
		n.t.Fatalf("server: %v", err)
	}
	if err := srv.Start(); err != nil {
		n.t.Fatalf("start: %v", err)
	}
	n.srv = srv
	n.addr = srv.Addrs()[0]
}

func (n *node) stop() {
	if n.srv != nil {
		if err := n.srv.Close(); err != nil {
			n.t.Errorf("close: %v", err)
		}
		n.srv = nil
	}
}

// restart closes the broker cleanly and starts it again over the same data.
func (n *node) restart() {
	n.t.Helper()
	n.stop()
	n.start()
}

func (n *node) client(opts ...kgo.Opt) *kgo.Client {
	n.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.addr)}, opts...)...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(cl.Close)
	return cl
}

func (n *node) admin() *kadm.Client {
	return kadm.NewClient(n.client())
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (n *node) createTopic(t *testing.T, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := n.admin().CreateTopic(ctxT(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}
