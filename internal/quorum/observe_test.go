package quorum

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/vfs"
)

// until re-checks cond (each time ch fires, or every 20 ms) until it holds, failing the
// test when ctx ends first.
func until(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}

func ids(rs []Replica) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// openObserver opens node id as a broker-only node of c (not a configured voter) with
// its own listener, at addr if given.
func openObserver(t *testing.T, c *tcpCluster, id uint64, dir, addr string) (*Node, *listSM, *Listener) {
	t.Helper()
	target := &atomic.Pointer[Node]{}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := Listen(addr, DefaultConfig().MaxFrameBytes, func(body []byte) error {
		if n := target.Load(); n != nil {
			return n.Deliver(body)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.cfg(id)
	cfg.Observer = true
	// Exact, as the metadata image is: the snapshot a new observer gets is taken right
	// after the membership change that added it, an entry the state never saw.
	sm := &listSM{exact: true}
	n, err := Open(cfg, vfs.OS(), dir, sm, nil, nil, newTestLogger(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	target.Store(n)
	n.SetAddr(ln.Addr())
	return n, sm, ln
}

// TestBrokerOnlyNodeJoinsAsObserver: a node that is not a configured voter asks to join
// and the leader adds it as an observer with no operator step; it catches up and
// follows the log, is never a voter and never counts for commit; stopped, the leader
// removes it after ObserverTimeout; started again, it asks again and catches up.
func TestBrokerOnlyNodeJoinsAsObserver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startTCPCluster(t, vfs.OS(), t.TempDir(), func(cfg *Config) {
		cfg.ElectionTimeout = 300 * time.Millisecond
		cfg.ObserverTimeout = time.Second
	}, 1, 2, 3)
	defer c.closeAll()
	l := c.leader(ctx, 0)
	var last uint64
	for i := range 20 {
		idx, err := l.node.Propose(ctx, fmt.Appendf(nil, "before-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}

	dir := filepath.Join(t.TempDir(), "4")
	obs, sm, ln := openObserver(t, c, 4, dir, "")
	addr := ln.Addr()
	until(ctx, t, "node 4 caught up", func() bool { a, _ := sm.lastApplied(); return a >= last })
	idx, err := l.node.Propose(ctx, []byte("after-join"))
	if err != nil {
		t.Fatal(err)
	}
	until(ctx, t, "node 4 follows", func() bool { a, _ := sm.lastApplied(); return a >= idx })
	st, err := l.node.Status(ctx)
	if err != nil || !slices.Equal(ids(st.Observers), []uint64{4}) || slices.Contains(ids(st.Voters), 4) {
		t.Fatalf("leader's status: voters %v observers %v (%v)", ids(st.Voters), ids(st.Observers), err)
	}
	if ost, err := obs.Status(ctx); err != nil || ost.Role != RoleObserver || ost.LeaderID != l.id {
		t.Fatalf("node 4's status: %+v %v", ost, err)
	}

	// Never counts for commit: with two voters down, the last voter and the observer
	// commit nothing, and the observer never leads.
	var down []uint64
	for id := range c.members {
		if id != l.id && len(down) < 2 {
			down = append(down, id)
		}
	}
	for _, id := range down {
		c.stop(id)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = l.node.Propose(pctx, []byte("no-majority"))
	pcancel()
	if err == nil {
		t.Fatal("a voter and an observer committed an entry")
	}
	if lead, _ := obs.Leader(); lead.LeaderID == 4 {
		t.Fatal("the observer leads")
	}
	for _, id := range down {
		c.restart(id)
	}
	l = c.leader(ctx, 0)

	// Stopped, the observer is removed after ObserverTimeout.
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	until(ctx, t, "the silent observer removed", func() bool {
		st, err := c.leader(ctx, 0).node.Status(ctx)
		return err == nil && len(st.Observers) == 0
	})

	// Back, it asks again and catches up with what it missed.
	l = c.leader(ctx, 0)
	for {
		if idx, err = l.node.Propose(ctx, []byte("while-away")); err == nil {
			break
		} else if !errors.Is(err, ErrNotLeader) {
			t.Fatal(err)
		}
		l = c.leader(ctx, 0)
	}
	obs, sm, ln = openObserver(t, c, 4, dir, addr)
	defer ln.Close()
	defer obs.Close()
	until(ctx, t, "node 4 back", func() bool { a, _ := sm.lastApplied(); return a >= idx })
	if st, err := l.node.Status(ctx); err != nil || !slices.Equal(ids(st.Observers), []uint64{4}) {
		t.Fatalf("leader's status after node 4 came back: %+v %v", st, err)
	}
}
