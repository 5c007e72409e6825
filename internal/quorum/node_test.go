package quorum

// Node, the member with its own goroutine, inside testing/synctest bubbles: time is
// virtual (ticks come from the bubble's clock), members talk through an in-process
// transport that calls Deliver, and a bubble cannot end while one of the members'
// goroutines is still running, so a leak fails the test.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// memNet connects Nodes in one process: Send encodes each message into a frame body and
// hands it to the receiver's Deliver.
type memNet struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	down  map[uint64]bool
}

type memTransport struct {
	net  *memNet
	from uint64
	rep  Reporter
}

func (n *memNet) transport(id uint64) *memTransport { return &memTransport{net: n, from: id} }

func (t *memTransport) Start(r Reporter) error { t.rep = r; return nil }
func (t *memTransport) Stop() {
	t.net.mu.Lock()
	t.net.down[t.from] = true
	t.net.mu.Unlock()
}
func (t *memTransport) SetPeer(uint64, string) {}
func (t *memTransport) RemovePeer(uint64)      {}
func (t *memTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.net.mu.Lock()
		dst, down := t.net.nodes[m.GetTo()], t.net.down[m.GetTo()] || t.net.down[t.from]
		t.net.mu.Unlock()
		ok := false
		if dst != nil && !down {
			body, err := appendBatch(nil, "", []*raftpb.Message{m})
			ok = err == nil && dst.Deliver(body) == nil
		}
		if !ok {
			t.rep.ReportUnreachable(m.GetTo())
		}
		if m.GetType() == raftpb.MsgSnap {
			t.rep.ReportSnapshot(m.GetTo(), ok)
		}
	}
}

type testCluster struct {
	t     *testing.T
	net   *memNet
	nodes map[uint64]*Node
	sms   map[uint64]*listSM
	fs    map[uint64]*vfs.MemFS
}

func startCluster(t *testing.T, ids ...uint64) *testCluster {
	c := &testCluster{t: t, net: &memNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}},
		nodes: map[uint64]*Node{}, sms: map[uint64]*listSM{}, fs: map[uint64]*vfs.MemFS{}}
	for _, id := range ids {
		c.fs[id] = vfs.NewMem()
		c.start(id, testConfig(id, voters(ids...)))
	}
	return c
}

func (c *testCluster) start(id uint64, cfg Config) *Node {
	c.t.Helper()
	sm := &listSM{}
	n, err := Open(cfg, c.fs[id], "/data", sm, c.net.transport(id), SystemClock(), newTestLogger(c.t, nil))
	if err != nil {
		c.t.Fatalf("open %d: %v", id, err)
	}
	c.net.mu.Lock()
	c.net.nodes[id], c.net.down[id] = n, false
	c.net.mu.Unlock()
	c.nodes[id], c.sms[id] = n, sm
	return n
}

func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	if err := c.nodes[id].Close(); err != nil {
		c.t.Fatalf("close %d: %v", id, err)
	}
	delete(c.nodes, id)
}

func (c *testCluster) closeAll() {
	for id := range c.nodes {
		c.stop(id)
	}
}

// leader waits until every running member knows the same leader, other than not, and
// returns it.
func (c *testCluster) leader(not uint64) *Node {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute) // virtual: a failure guard, not a wait
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		var changes []<-chan struct{}
		for _, n := range c.nodes {
			l, ch := n.Leader()
			changes = append(changes, ch)
			if lead == 0 {
				lead = l.LeaderID
			}
			agree = agree && l.LeaderID == lead
		}
		if agree && lead != 0 && lead != not && c.nodes[lead] != nil {
			return c.nodes[lead]
		}
		select {
		case <-changes[0]:
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.t.Fatal("no leader within a (virtual) minute")
	return nil
}

// waitApplied waits until every running member applied index.
func (c *testCluster) waitApplied(index uint64) {
	c.t.Helper()
	for id := range c.nodes {
		for {
			last, ch := c.sms[id].lastApplied()
			if last >= index {
				break
			}
			select {
			case <-ch:
			case <-time.After(time.Minute):
				c.t.Fatalf("node %d applied %d, not %d, within a (virtual) minute", id, last, index)
			}
		}
	}
}

func TestNodeReplicatesAndSurvivesLosingItsLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, 2, 3)
		defer c.closeAll()
		start := time.Now()
		l := c.leader(0)
		if d := time.Since(start); d < time.Second || d > 4*time.Second {
			t.Errorf("elected after %v; with an election timeout of 1 s it takes 1 to 2 s plus a round", d)
		}
		// Concurrent proposals share Readies; each returns its own index.
		ctx := context.Background()
		var wg sync.WaitGroup
		idx := make([]uint64, 50)
		for i := range idx {
			wg.Go(func() {
				var err error
				if idx[i], err = l.Propose(ctx, fmt.Appendf(nil, "v%d", i)); err != nil {
					t.Errorf("propose %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		seen := map[uint64]bool{}
		var last uint64
		for _, i := range idx {
			if seen[i] {
				t.Fatalf("two proposals got index %d", i)
			}
			seen[i], last = true, max(last, i)
		}
		c.waitApplied(last)
		for _, f := range []uint64{1, 2, 3} {
			if got := c.sms[f].snapshotEntries(); len(got) != 50 {
				t.Fatalf("node %d applied %d entries, want 50", f, len(got))
			}
		}
		// A follower answers with the leader.
		for id, n := range c.nodes {
			if n != l {
				_, err := n.Propose(ctx, []byte("x"))
				var nl *NotLeaderError
				if !errors.As(err, &nl) || nl.LeaderID != l.cfg.NodeID {
					t.Fatalf("propose on follower %d: %v", id, err)
				}
				break
			}
		}
		st, err := l.Status(ctx)
		if err != nil || st.Role != RoleLeader || len(st.Voters) != 3 || st.CommitIndex < last {
			t.Fatalf("leader status %+v: %v", st, err)
		}

		old := l.cfg.NodeID
		c.stop(old)
		l2 := c.leader(old)
		i2, err := l2.Propose(ctx, []byte("after"))
		if err != nil {
			t.Fatalf("propose on the new leader: %v", err)
		}
		c.waitApplied(i2)
		// The old leader comes back and catches up.
		c.start(old, testConfig(old, voters(1, 2, 3)))
		c.waitApplied(i2)
	})
}

func TestNodeProposeErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := startCluster(t, 1)
		n := c.leader(0)
		// The only voter has no one to wait for: vltava server's default quorum of one
		// leads at once.
		if d := time.Since(start); d != 0 {
			t.Errorf("a single voter led after %v", d)
		}
		ctx := context.Background()
		if _, err := n.Propose(ctx, nil); !errors.Is(err, ErrEntryTooLarge) {
			t.Fatalf("empty proposal: %v", err)
		}
		if _, err := n.Propose(ctx, make([]byte, n.cfg.MaxEntryBytes+1)); !errors.Is(err, ErrEntryTooLarge) {
			t.Fatalf("oversized proposal: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := n.Propose(cctx, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled proposal: %v", err)
		}
		c.stop(1)
		if _, err := n.Propose(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("proposal after close: %v", err)
		}
		if _, err := n.Status(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("status after close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	})
}

// TestNodeStopsOnStorageFailure: the first failed fsync stops the member; Err and every
// later proposal answer it; Close still works and a reopened member carries on.
func TestNodeStopsOnStorageFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := vfs.NewMem()
		var mu sync.Mutex
		failing := false
		efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
			mu.Lock()
			defer mu.Unlock()
			if failing && op.Kind == vfs.OpSync {
				return vfs.ErrInjected
			}
			return nil
		}))
		net := &memNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}}
		n, err := Open(testConfig(1, voters(1)), efs, "/data", &listSM{}, net.transport(1), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		ctx := context.Background()
		for l, ch := n.Leader(); l.LeaderID != 1; l, ch = n.Leader() {
			<-ch
		}
		if _, err := n.Propose(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.Failed():
			t.Fatal("Failed is closed before any failure")
		default:
		}
		mu.Lock()
		failing = true
		mu.Unlock()
		if _, err := n.Propose(ctx, []byte("b")); !errors.Is(err, ErrStorage) {
			t.Fatalf("proposal when the fsync fails: %v", err)
		}
		<-n.Failed()
		if !errors.Is(n.Err(), ErrStorage) {
			t.Fatalf("Err: %v", n.Err())
		}
		if _, err := n.Propose(ctx, []byte("c")); !errors.Is(err, ErrStorage) {
			t.Fatalf("later proposal: %v", err)
		}
		if st, _ := n.Status(ctx); !errors.Is(st.Err, ErrStorage) {
			t.Fatalf("status: %+v", st)
		}
		n.Close()
		sm := &listSM{}
		n2, err := Open(testConfig(1, voters(1)), mem, "/data", sm, net.transport(1), nil, nil)
		if err != nil {
			t.Fatalf("reopen after the failure: %v", err)
		}
		defer n2.Close()
		i, err := n2.Propose(ctx, []byte("d"))
		if err != nil {
			// The reopened member may not lead yet.
			for l, ch := n2.Leader(); l.LeaderID != 1; l, ch = n2.Leader() {
				<-ch
			}
			i, err = n2.Propose(ctx, []byte("d"))
		}
		if err != nil || len(sm.snapshotEntries()) == 0 || sm.snapshotEntries()[len(sm.snapshotEntries())-1] != (smEntry{i, "d"}) {
			t.Fatalf("after reopening: %d %v %v", i, err, sm.snapshotEntries())
		}
	})
}

func TestDeliverRefusesBadFramesAndBoundsItsBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := &memNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}}
		cfg := testConfig(1, voters(1, 2, 3))
		cfg.MaxFrameBytes = 1 << 20
		cfg.MaxEntryBytes = 1 << 10
		cfg.ReceiveBufferBytes = 1 << 20
		n, err := Open(cfg, vfs.NewMem(), "/data", &listSM{}, net.transport(1), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if err := n.Deliver([]byte{0, 0, 0, 0, 0, 9}); err == nil {
			t.Fatal("a bad frame was accepted")
		}
		// Frames beyond the receive buffer are dropped (not queued, not an error), while
		// the loop is busy: the bubble's loop goroutine runs only when this one blocks.
		big := msgApp(2, 1, 1, 1, 1)
		big.Entries = []*raftpb.Entry{{Index: new(uint64(2)), Term: new(uint64(1)), Data: make([]byte, 600<<10)}}
		body, _ := appendBatch(nil, "", []*raftpb.Message{big})
		for range 3 {
			if err := n.Deliver(body); err != nil {
				t.Fatal(err)
			}
		}
		if got := n.inBytes.Load(); got > int64(cfg.ReceiveBufferBytes) {
			t.Fatalf("%d bytes queued, the buffer is %d", got, cfg.ReceiveBufferBytes)
		}
		synctest.Wait()
		if got := n.inBytes.Load(); got != 0 {
			t.Fatalf("%d bytes still counted after the loop took the frames", got)
		}
	})
}

// TestProposalsDuringAnFsyncShareTheNextWrite: while the leader's fsync runs, new
// proposals queue; the next round appends them all in one write and one fsync.
func TestProposalsDuringAnFsyncShareTheNextWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		block := make(chan struct{})
		blocking := false
		var writes []int
		efs := vfs.WithErrors(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op) error {
			mu.Lock()
			b := blocking && op.Kind == vfs.OpSync
			if op.Kind == vfs.OpWrite {
				writes = append(writes, op.Len)
			}
			if b {
				blocking = false
			}
			mu.Unlock()
			if b {
				<-block // the fsync takes until released
			}
			return nil
		}))
		net := &memNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}}
		n, err := Open(testConfig(1, voters(1)), efs, "/data", &listSM{}, net.transport(1), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		ctx := context.Background()
		if _, err := n.Propose(ctx, []byte("warm-up")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		blocking = true
		mu.Unlock()
		var wg sync.WaitGroup
		wg.Go(func() { n.Propose(ctx, []byte("first")) })
		synctest.Wait() // the loop is inside the fsync of "first"
		for i := range 10 {
			wg.Go(func() {
				if _, err := n.Propose(ctx, fmt.Appendf(nil, "queued-%02d", i)); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		mu.Lock()
		before := len(writes)
		mu.Unlock()
		close(block)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		batch := 10 * entryRecordSize(len("queued-00"))
		found := false
		for _, w := range writes[before:] {
			found = found || w >= batch
		}
		if !found {
			t.Fatalf("no write holds the 10 queued proposals (%d bytes); writes after the fsync: %v", batch, writes[before:])
		}
	})
}

// TestBootstrapState: a voter's new log starts from the state it is given (its bootstrap
// snapshot holds it), entries follow it, and a reopened log restores it with them; an
// observer's new log ignores it (its state comes from the leader).
func TestBootstrapState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		seed := &listSM{entries: []smEntry{{1, "before the quorum"}}, last: 1}
		state, _, _ := seed.Snapshot()
		cfg := testConfig(1, voters(1))
		cfg.BootstrapState = state
		sm := &listSM{}
		n, err := Open(cfg, fs, "/data", sm, &recTransport{}, SystemClock(), newTestLogger(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := sm.snapshotEntries(); len(got) != 1 || got[0].data != "before the quorum" {
			t.Fatalf("state after open %v", got)
		}
		if _, err := n.Propose(context.Background(), []byte("after")); err != nil {
			t.Fatal(err)
		}
		n.Close()

		cfg.BootstrapState = nil // an existing log is not bootstrapped again
		sm = &listSM{}
		n, err = Open(cfg, fs, "/data", sm, &recTransport{}, SystemClock(), newTestLogger(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		for {
			last, ch := sm.lastApplied()
			if last >= 3 {
				break
			}
			<-ch
		}
		if got := sm.snapshotEntries(); len(got) != 2 || got[0].data != "before the quorum" || got[1].data != "after" {
			t.Fatalf("state after reopening %v", got)
		}
		n.Close()

		obs := testConfig(2, voters(1))
		obs.Observer, obs.BootstrapState = true, state
		sm = &listSM{}
		n, err = Open(obs, vfs.NewMem(), "/data", sm, &recTransport{}, SystemClock(), newTestLogger(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := sm.snapshotEntries(); len(got) != 0 {
			t.Fatalf("an observer bootstrapped state %v", got)
		}
		n.Close()
	})
}
