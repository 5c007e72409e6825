// Package quorum is the metadata quorum's replicated log: a Raft log (go.etcd.io/raft/v3,
// whose core is a pure state machine) with Vltava's storage, transport, clock and
// snapshots around it. It replicates opaque entries; the metadata image above it is the
// StateMachine. Voters are the controllers; broker-only nodes are observers (raft
// learners).
//
// A Node owns one goroutine, its loop, which drives the raft glue (core.go): it takes
// ticks from the Clock, messages from Deliver, proposals from Propose and membership
// changes, and carries out each of raft's Readies. Files: storage.go and walformat.go
// (the WAL), snapformat.go (snapshots), membership.go (KIP-853's changes), transport.go
// and tcp.go (messages between members), status.go (DescribeQuorum's view).
package quorum

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// inboxFrames bounds the decoded frames queued for the loop (their bytes are bounded by
// ReceiveBufferBytes).
const inboxFrames = 1024

// drainLimit bounds the inputs the loop takes per round, so one busy input cannot starve
// the others.
const drainLimit = 256

// Node is a quorum member. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	tr    Transport
	core  *core // owned by the loop

	props     chan *proposal
	inbox     chan inbound
	inBytes   atomic.Int64
	statusReq chan chan Status
	reports   reports

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error // from closing the log, set by the loop as it stops

	addr atomic.Pointer[string] // SetAddr's

	failed   atomic.Pointer[error] // the failure that stopped the member
	failedCh chan struct{}         // closed when failed is set

	leaderMu sync.Mutex
	leader   LeaderInfo
	leaderCh chan struct{} // closed at the next leader change
}

type inbound struct {
	msgs []*raftpb.Message
	size int64
}

// reports collects the transport's reports for the loop. Snapshot reports must not be
// lost (raft waits for them), so they are kept per peer rather than queued in a channel
// that could fill.
type reports struct {
	mu          sync.Mutex
	unreachable map[uint64]bool
	snapshot    map[uint64]bool   // peer -> ok
	rejected    map[uint64]string // peer -> its cluster id
	signal      chan struct{}
}

// Open opens the member whose log lives in dir/__cluster_metadata-0 (creating and
// bootstrapping it on first use) and starts its loop. The Node owns tr from now on
// (Close stops it); a nil tr is a TCP transport from cfg. logger may be nil.
func Open(cfg Config, fsys vfs.FS, dir string, sm StateMachine, tr Transport, clock Clock, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = SystemClock()
	}
	full, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("quorum config: %w", err)
	}
	if tr == nil {
		tr = NewTCPTransport(full, logger)
	}
	c, err := newCore(full, fsys, dir, sm, tr, clock.Now(), logger)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: full, log: logger.With("node", full.NodeID), clock: clock, tr: tr, core: c,
		props:     make(chan *proposal, full.MaxPendingProposals),
		inbox:     make(chan inbound, inboxFrames),
		statusReq: make(chan chan Status),
		reports:   reports{unreachable: map[uint64]bool{}, snapshot: map[uint64]bool{}, rejected: map[uint64]string{}, signal: make(chan struct{}, 1)},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		leader:    c.leader,
		leaderCh:  make(chan struct{}),
		failedCh:  make(chan struct{}),
	}
	c.onLeader = n.setLeader
	c.addr = func() string {
		if a := n.addr.Load(); a != nil {
			return *a
		}
		return ""
	}
	c.onFail = func(err error) {
		if n.failed.CompareAndSwap(nil, &err) {
			close(n.failedCh)
		}
	}
	if err := tr.Start(n); err != nil {
		c.shutdown(ErrClosed)
		return nil, fmt.Errorf("quorum transport: %w", err)
	}
	go n.run()
	return n, nil
}

func (n *Node) run() {
	defer close(n.done)
	ticker := n.clock.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	var (
		props []*proposal
		msgs  []inbound
		ticks int
	)
	c := n.core
	// What opening left for raft (a lone voter's campaign, committed entries to apply
	// again) is handled now, not at the first tick.
	c.now = n.clock.Now()
	c.process()
	for {
		var statusCh chan Status
		select {
		case <-n.stop:
			n.closeErr = c.shutdown(ErrClosed)
			n.failQueued()
			return
		case <-ticker.C():
			ticks++
		case p := <-n.props:
			props = append(props, p)
		case in := <-n.inbox:
			msgs = append(msgs, in)
		case <-n.reports.signal:
		case statusCh = <-n.statusReq:
		}
	drain:
		for range drainLimit {
			select {
			case p := <-n.props:
				props = append(props, p)
			case in := <-n.inbox:
				msgs = append(msgs, in)
			default:
				break drain
			}
		}
		c.now = n.clock.Now()
		// Proposals first: raft is quiescent now, so each takes the next index.
		for i, p := range props {
			c.propose(p)
			props[i] = nil
		}
		props = props[:0]
		n.reports.deliver(c)
		for i, in := range msgs {
			for _, m := range in.msgs {
				c.step(m)
			}
			n.inBytes.Add(-in.size)
			msgs[i] = inbound{}
		}
		msgs = msgs[:0]
		for ; ticks > 0; ticks-- {
			c.tick()
		}
		c.process()
		if statusCh != nil {
			statusCh <- c.status()
		}
	}
}

// failQueued fails proposals still queued when the loop stops.
func (n *Node) failQueued() {
	for {
		select {
		case p := <-n.props:
			p.finish(0, ErrClosed)
		default:
			return
		}
	}
}

// Propose appends data to the log and returns its index once it is committed and applied
// here. It fails with a *NotLeaderError (ErrNotLeader) unless this member leads, also when
// leadership is lost before the entry commits (the entry may commit anyway), with
// ErrProposalDropped when the leader refused it or a new leader replaced it, with the
// context's error when ctx ends first (the entry may commit anyway), and with the storage
// error of a failed member. Proposals that arrive while an fsync runs share the next one.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	if len(data) == 0 || len(data) > n.cfg.MaxEntryBytes {
		return 0, fmt.Errorf("%w: %d bytes (1 to %d)", ErrEntryTooLarge, len(data), n.cfg.MaxEntryBytes)
	}
	return n.submit(ctx, &proposal{data: data})
}

// AddObserver adds node id, reachable at addr (its controller listener), as an observer:
// it replicates the log but does not vote until PromoteToVoter. It returns once the change
// is committed and applied here.
func (n *Node) AddObserver(ctx context.Context, id uint64, addr string) error {
	_, err := n.submit(ctx, &proposal{cc: &confChangeOp{kind: addObserver, id: id, addr: addr}})
	return err
}

// SetAddr sets where the quorum's members reach this node (host:port) when it is not a
// configured voter: a broker-only node gives its inter-broker listener, which accepts
// the quorum's frames. From then on, while it is no member, it asks the voters to add
// it as an observer (observe.go).
func (n *Node) SetAddr(addr string) { n.addr.Store(&addr) }

// PromoteToVoter makes observer id a voter (KIP-853's AddRaftVoter), if it has caught up.
func (n *Node) PromoteToVoter(ctx context.Context, id uint64) error {
	_, err := n.submit(ctx, &proposal{cc: &confChangeOp{kind: promoteToVoter, id: id}})
	return err
}

// RemoveNode removes voter or observer id (KIP-853's RemoveRaftVoter). Removing the
// leader makes it step down once the change is applied.
func (n *Node) RemoveNode(ctx context.Context, id uint64) error {
	_, err := n.submit(ctx, &proposal{cc: &confChangeOp{kind: removeNode, id: id}})
	return err
}

type result struct {
	index uint64
	err   error
}

func (n *Node) submit(ctx context.Context, p *proposal) (uint64, error) {
	if err := n.Err(); err != nil {
		return 0, err
	}
	done := make(chan result, 1)
	p.done = func(index uint64, err error) { done <- result{index, err} }
	select {
	case n.props <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		return 0, ErrClosed
	}
	select {
	case r := <-done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		select { // the loop finishes everything it took before it stops
		case r := <-done:
			return r.index, r.err
		default:
			return 0, ErrClosed
		}
	}
}

// Err returns the failure that stopped this member (wrapping ErrStorage for its
// storage), nil while it participates.
func (n *Node) Err() error {
	if p := n.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Failed returns a channel closed when the member stops participating for good (Err
// says why: its storage failed, or its state machine refused an entry).
func (n *Node) Failed() <-chan struct{} { return n.failedCh }

// Status returns this member's view of the quorum.
func (n *Node) Status(ctx context.Context) (Status, error) {
	ch := make(chan Status, 1)
	select {
	case n.statusReq <- ch:
	case <-ctx.Done():
		return Status{}, ctx.Err()
	case <-n.done:
		return Status{}, ErrClosed
	}
	return <-ch, nil
}

// Leader returns the leader as this member knows it, and a channel closed when that
// changes (a new leader, a new term, or none).
func (n *Node) Leader() (LeaderInfo, <-chan struct{}) {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leader, n.leaderCh
}

func (n *Node) setLeader(l LeaderInfo) {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if l == n.leader {
		return
	}
	n.leader = l
	close(n.leaderCh)
	n.leaderCh = make(chan struct{})
}

// Deliver hands the member a frame body from a peer (what follows the request header of
// an APIKey frame; see transport.go). An error means the frame is bad and the connection
// it came on must be closed. A good frame that finds the receive buffer
// (vltava.quorum.receive.buffer.bytes) full is dropped: raft resends.
func (n *Node) Deliver(body []byte) error {
	msgs, err := decodeBatch(body, n.cfg.ClusterID, n.cfg.NodeID)
	if err != nil {
		return err
	}
	size := int64(len(body))
	if total := n.inBytes.Add(size); total > int64(n.cfg.ReceiveBufferBytes) && total != size {
		n.inBytes.Add(-size)
		n.log.Debug("quorum: receive buffer full, dropping a frame", "bytes", size)
		return nil
	}
	select {
	case n.inbox <- inbound{msgs: msgs, size: size}:
	default:
		n.inBytes.Add(-size)
		n.log.Debug("quorum: receive queue full, dropping a frame", "bytes", size)
	}
	return nil
}

// ReportUnreachable implements Reporter.
func (n *Node) ReportUnreachable(id uint64) {
	n.reports.mu.Lock()
	n.reports.unreachable[id] = true
	n.reports.mu.Unlock()
	n.reports.notify()
}

// ReportSnapshot implements Reporter.
func (n *Node) ReportSnapshot(id uint64, ok bool) {
	n.reports.mu.Lock()
	if prev, seen := n.reports.snapshot[id]; seen {
		ok = ok && prev
	}
	n.reports.snapshot[id] = ok
	n.reports.mu.Unlock()
	n.reports.notify()
}

// ReportRejected implements Reporter.
func (n *Node) ReportRejected(id uint64, clusterID string) {
	n.reports.mu.Lock()
	n.reports.rejected[id] = clusterID
	n.reports.mu.Unlock()
	n.reports.notify()
}

func (r *reports) notify() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *reports) deliver(c *core) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.unreachable {
		c.reportUnreachable(id)
	}
	for id, ok := range r.snapshot {
		c.reportSnapshot(id, ok)
	}
	for id, cluster := range r.rejected {
		c.rejected(id, cluster)
	}
	clear(r.unreachable)
	clear(r.snapshot)
	clear(r.rejected)
}

// Close stops the loop and the transport, waits for them, and closes the log. Proposals
// still waiting fail with ErrClosed.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		<-n.done
		n.tr.Stop()
	})
	return n.closeErr
}
