package quorum

// Real sockets: members on 127.0.0.1 with the TCP transport and their own Listener,
// files on the OS filesystem, real time. Waiting is for conditions (leader change and
// apply notifications), bounded by a deadline that only fails the test.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/vfs"
)

type tcpMember struct {
	id   uint64
	node *Node
	ln   *Listener
	sm   *listSM
	dir  string
}

type tcpCluster struct {
	t       testing.TB
	members map[uint64]*tcpMember
	fsys    vfs.FS
	cfg     func(id uint64) Config
	addrs   map[uint64]string
	root    string
}

// startTCPCluster starts len(ids) voters on loopback; tune adjusts each config.
func startTCPCluster(t testing.TB, fsys vfs.FS, root string, tune func(*Config), ids ...uint64) *tcpCluster {
	c := &tcpCluster{t: t, members: map[uint64]*tcpMember{}, fsys: fsys, root: root}
	addrs := map[uint64]string{}
	c.addrs = addrs
	targets := map[uint64]*atomic.Pointer[Node]{}
	lns := map[uint64]*Listener{}
	for _, id := range ids {
		target := &atomic.Pointer[Node]{}
		ln, err := Listen("127.0.0.1:0", DefaultConfig().MaxFrameBytes, func(body []byte) error {
			if n := target.Load(); n != nil {
				return n.Deliver(body)
			}
			return nil // not open yet: raft resends
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		addrs[id], targets[id], lns[id] = ln.Addr(), target, ln
	}
	c.cfg = func(id uint64) Config {
		cfg := Config{NodeID: id, ClusterID: "tcp-test", Voters: addrs}
		if tune != nil {
			tune(&cfg)
		}
		return cfg
	}
	for _, id := range ids {
		m := &tcpMember{id: id, ln: lns[id], sm: &listSM{}, dir: filepath.Join(root, fmt.Sprint(id))}
		n, err := Open(c.cfg(id), fsys, m.dir, m.sm, nil, nil, newTestLogger(t, nil))
		if err != nil {
			t.Fatalf("open %d: %v", id, err)
		}
		m.node = n
		targets[id].Store(n)
		c.members[id] = m
	}
	return c
}

// restart opens a stopped member again, listening on its old address.
func (c *tcpCluster) restart(id uint64) *tcpMember {
	c.t.Helper()
	target := &atomic.Pointer[Node]{}
	ln, err := Listen(c.addrs[id], DefaultConfig().MaxFrameBytes, func(body []byte) error {
		if n := target.Load(); n != nil {
			return n.Deliver(body)
		}
		return nil
	}, nil)
	if err != nil {
		c.t.Fatalf("listen again on %s: %v", c.addrs[id], err)
	}
	m := &tcpMember{id: id, ln: ln, sm: &listSM{}, dir: filepath.Join(c.root, fmt.Sprint(id))}
	if m.node, err = Open(c.cfg(id), c.fsys, m.dir, m.sm, nil, nil, newTestLogger(c.t, nil)); err != nil {
		c.t.Fatalf("reopen %d: %v", id, err)
	}
	target.Store(m.node)
	c.members[id] = m
	return m
}

func (c *tcpCluster) stop(id uint64) {
	c.t.Helper()
	m := c.members[id]
	if err := m.node.Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	m.ln.Close()
	delete(c.members, id)
}

func (c *tcpCluster) closeAll() {
	for id := range c.members {
		c.stop(id)
	}
}

// leader waits until every member knows the same leader, other than not.
func (c *tcpCluster) leader(ctx context.Context, not uint64) *tcpMember {
	c.t.Helper()
	for {
		var lead uint64
		agree := true
		var change <-chan struct{}
		for _, m := range c.members {
			l, ch := m.node.Leader()
			if change == nil {
				change = ch
			}
			if lead == 0 {
				lead = l.LeaderID
			}
			agree = agree && l.LeaderID == lead
		}
		if agree && lead != 0 && lead != not && c.members[lead] != nil {
			return c.members[lead]
		}
		select {
		case <-change:
		case <-time.After(50 * time.Millisecond): // another member's view may change
		case <-ctx.Done():
			c.t.Fatalf("no agreed leader: %v", ctx.Err())
		}
	}
}

func (c *tcpCluster) waitApplied(ctx context.Context, index uint64) {
	c.t.Helper()
	for id, m := range c.members {
		for {
			last, ch := m.sm.lastApplied()
			if last >= index {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				c.t.Fatalf("node %d applied %d, not %d: %v", id, last, index, ctx.Err())
			}
		}
	}
}

// quorumGoroutines lists the goroutines running this package's code.
func quorumGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/quorum.(*") && !strings.Contains(g, "quorumGoroutines") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

func TestTCPClusterElectsReplicatesAndFailsOver(t *testing.T) {
	if before := quorumGoroutines(); len(before) != 0 {
		t.Fatalf("goroutines before the test: %v", before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startTCPCluster(t, vfs.OS(), t.TempDir(), func(cfg *Config) {
		cfg.ElectionTimeout = 300 * time.Millisecond
		cfg.SnapshotMaxBytes, cfg.SnapshotCatchUpEntries = 1000, 5 // snapshot every ~100 entries
	}, 1, 2, 3)
	defer c.closeAll()

	l := c.leader(ctx, 0)
	var last uint64
	for i := range 100 {
		idx, err := l.node.Propose(ctx, fmt.Appendf(nil, "before-%d", i))
		if err != nil {
			t.Fatalf("propose %d: %v", i, err)
		}
		last = idx
	}
	c.waitApplied(ctx, last)

	old := l.id
	c.stop(old)
	l2 := c.leader(ctx, old)
	for i := range 50 {
		idx, err := l2.node.Propose(ctx, fmt.Appendf(nil, "after-%d", i))
		var nl *NotLeaderError
		if errors.As(err, &nl) { // leadership moved again; follow it
			l2 = c.leader(ctx, old)
			idx, err = l2.node.Propose(ctx, fmt.Appendf(nil, "after-%d", i))
		}
		if err != nil {
			t.Fatalf("propose %d on the new leader: %v", i, err)
		}
		last = idx
	}
	c.waitApplied(ctx, last)
	for id, m := range c.members {
		got := m.sm.snapshotEntries()
		if len(got) != 150 || got[0].data != "before-0" || got[149].data != "after-49" {
			t.Fatalf("node %d applied %d entries (%v ... )", id, len(got), got[:min(3, len(got))])
		}
	}
	for id, m := range c.members {
		if st, err := m.node.Status(ctx); err != nil || st.SnapshotIndex == 0 {
			t.Fatalf("node %d took no snapshot: %+v %v", id, st, err)
		}
	}
	st, err := l2.node.Status(ctx)
	if err != nil || st.Role != RoleLeader || len(st.Voters) != 3 {
		t.Fatalf("status %+v: %v", st, err)
	}
	for _, r := range st.Voters {
		if r.ID != old && r.MatchIndex < last {
			t.Errorf("voter %d match %d < %d", r.ID, r.MatchIndex, last)
		}
	}

	// The old leader comes back far behind: the others compacted their logs past it, so
	// it catches up from a snapshot sent over the socket.
	back := c.restart(old)
	c.waitApplied(ctx, last)
	if got := back.sm.snapshotEntries(); len(got) != 150 || got[149].data != "after-49" {
		t.Fatalf("the old leader applied %d entries after coming back", len(got))
	}
	back.sm.mu.Lock()
	restores := back.sm.restores
	back.sm.mu.Unlock()
	if restores < 2 { // its own snapshot at open, then the leader's
		t.Fatalf("the old leader caught up without a snapshot from the leader (%d restores)", restores)
	}

	c.closeAll()
	// Close returns once each goroutine has signalled its end; it may still be returning.
	left := quorumGoroutines()
	for deadline := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = quorumGoroutines() {
		runtime.Gosched()
	}
	if len(left) != 0 {
		t.Fatalf("goroutines left after closing every member:\n%s", strings.Join(left, "\n\n"))
	}
}

// TestListenerClosesConnectionsOnBadFrames: a frame of another API, or a body Deliver
// refuses, closes that connection.
func TestListenerClosesConnectionsOnBadFrames(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", 1<<20, func(body []byte) error {
		if len(body) == 0 {
			return errors.New("empty body")
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, frame := range [][]byte{
		{0, 0, 0, 12, 0, 3, 0, 0, 0, 0, 0, 1, 0, 2, 'i', 'd'},   // Metadata, not VltavaRaft
		{0, 0, 0, 10, 0x03, 0xe8, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, // VltavaRaft with an empty body
		{0x7f, 0, 0, 0}, // larger than the limit
		{0, 0, 0, 10, 0x03, 0xe8, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 1}, // version 1
	} {
		conn, err := net.Dial("tcp", ln.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(frame)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			t.Errorf("frame %x: connection not closed (%v)", frame, err)
		}
		conn.Close()
	}
}
