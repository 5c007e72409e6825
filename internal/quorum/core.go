// The raft glue: a RawNode, its durable storage, the state machine and the proposals
// waiting for their entries, driven by one goroutine (Node's loop in production, the
// simulation in tests). Time and I/O are inputs: tick, step and propose feed raft, and
// process carries out each Ready in etcd raft's order:
//
//  1. the snapshot, entries and HardState are made durable (fsynced when raft says the
//     Ready must sync: entries, a vote or a term), so nothing below acknowledges what a
//     crash could lose;
//  2. the messages are handed to the transport;
//  3. the received snapshot, then the committed entries, are applied: normal entries to
//     the state machine, membership changes to raft (ApplyConfChange) and the address book;
//  4. Advance; then a snapshot is taken if one is due.
//
// A proposal's entry is identified by the index and term it was appended at. Proposals
// are stepped only when raft is quiescent (every Ready handled), when the leader's last
// index is the memory storage's: each accepted one takes the next index, in the current
// term. It succeeds when the entry committed at that index has that term and has been
// applied here; a different term means a new leader replaced it. A leader that steps
// down fails its waiting proposals with NotLeaderError{Lost: true}, as Kafka's controller
// fails its pending writes when it resigns: their entries may still commit.
package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/vltava/vltava/internal/vfs"
)

// Raft's flow control: appends per message and in flight per peer. An entry larger than
// maxSizePerMsg travels alone.
const (
	maxSizePerMsg    = 1 << 20
	maxInflightMsgs  = 256
	maxInflightBytes = 32 << 20
)

// proposal is a normal entry or a membership change waiting to commit.
type proposal struct {
	data []byte
	cc   *confChangeOp
	// index and term the entry was appended at, once accepted.
	index, term uint64
	// done is called once, from the driving goroutine, with the entry's index or an error.
	done func(index uint64, err error)
}

func (p *proposal) finish(index uint64, err error) {
	if p.done != nil {
		p.done(index, err)
		p.done = nil
	}
}

// contact is what a leader knows of a peer's replication, for Status (Kafka's
// DescribeQuorum fields).
type contact struct {
	last     time.Time // last message from it
	caughtUp time.Time // last time its log reached the leader's end (Kafka's rule, below)
	prevEnd  uint64    // the leader's last index at the previous contact
}

type coreStats struct {
	tornTails         int
	snapshotsTaken    int
	snapshotsRestored int
	confChanges       int
}

// core is one quorum member's raft state. It is not safe for concurrent use.
type core struct {
	id  uint64
	cfg Config
	log *slog.Logger
	rn  *raft.RawNode
	st  *storage
	sm  StateMachine
	tr  Transport
	now time.Time // the time of the current input, set by the driver

	peers map[uint64]string // addresses: the configured voters, replicated ones
	conf  *raftpb.ConfState // as of applied

	applied       uint64
	smIndex       uint64 // last index given to the state machine (Apply or Restore)
	lastIndex     uint64 // raft's last index while quiescent, plus proposals since
	dirty         bool   // raft was stepped or ticked since the last process
	lastConfIndex uint64 // the last membership change entry in the log
	leaderStart   uint64 // while leading: the index of this term's first entry

	selfVoter bool // this node is a voter in conf
	opening   bool // the first process after open has not run

	state    raft.StateType
	leader   LeaderInfo // from the Readies handled so far
	notified LeaderInfo // the last one given to onLeader
	// lastLead is the last other member this node knew as leader, and leadHeard when a
	// message from it last arrived: LeaderInfo.Predecessor when this node wins.
	lastLead  uint64
	leadHeard time.Time

	pending  map[uint64]*proposal
	contacts map[uint64]*contact

	dir          string            // the log's directory, for messages
	addr         func() string     // where peers reach this node if it is no configured voter (observe.go)
	observeTicks int               // ticks since observeTick last acted
	rejections   map[uint64]string // configured voters that rejected this node's cluster id: theirs

	snapBytes int64
	snapTime  time.Time
	forceSnap bool

	err      error
	onLeader func(LeaderInfo)
	onFail   func(error)
	stats    coreStats
}

// newCore opens (bootstrapping if new) the member whose log is in dir/DirName.
func newCore(cfg Config, fsys vfs.FS, dir string, sm StateMachine, tr Transport, now time.Time, logger *slog.Logger) (*core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("quorum config: %w", err)
	}
	logger = logger.With("node", cfg.NodeID)
	st, rec, err := openStorage(fsys, path.Join(dir, DirName), logger)
	if err != nil {
		return nil, err
	}
	c := &core{
		id: cfg.NodeID, cfg: cfg, log: logger, st: st, sm: sm, tr: tr, now: now,
		peers: make(map[uint64]string), conf: raftpb.EnsureConfState(nil),
		pending: make(map[uint64]*proposal), contacts: make(map[uint64]*contact), snapTime: now,
		dir: path.Join(dir, DirName), rejections: make(map[uint64]string), addr: func() string { return "" },
	}
	for id, a := range cfg.Voters {
		c.peers[id] = a
	}
	if rec.fresh {
		var voters []uint64
		if cfg.isVoterAtBootstrap() {
			for id := range cfg.Voters {
				voters = append(voters, id)
			}
			slices.Sort(voters)
			logger.Info("metadata log: bootstrapping a new log with the configured voters", "voters", voters)
		} else {
			logger.Info("metadata log: new log; waiting to be added to the quorum")
		}
		var state []byte
		if len(voters) > 0 {
			state = cfg.BootstrapState
		}
		if err := st.bootstrap(voters, encodeSnapshotData(cfg.Voters, state)); err != nil {
			st.close()
			return nil, err
		}
		rec.lastIndex, _ = st.ms.LastIndex()
	}
	if snap, _ := st.ms.Snapshot(); !raft.IsEmptySnap(snap) {
		if err := c.loadSnapshot(snap); err != nil {
			st.close()
			return nil, err
		}
	}
	c.lastConfIndex = rec.confIndex
	if rec.tornBytes > 0 {
		c.stats.tornTails++
	}
	c.lastIndex, _ = st.ms.LastIndex()
	election, heartbeat := cfg.ticks()
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        cfg.NodeID,
		ElectionTick:              election,
		HeartbeatTick:             heartbeat,
		Storage:                   st.ms,
		Applied:                   c.applied,
		MaxSizePerMsg:             maxSizePerMsg,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedBytes,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxInflightBytes:          maxInflightBytes,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         false, // see tick: a removed leader hands over first
		Logger:                    raftLogger{logger},
	})
	if err != nil {
		st.close()
		return nil, fmt.Errorf("quorum: %w", err)
	}
	c.rn = rn
	bs := rn.BasicStatus()
	c.state, c.leader = bs.RaftState, LeaderInfo{LeaderID: bs.Lead, Term: bs.GetTerm()}
	c.notified = c.leader
	for id, a := range c.peers {
		if id != c.id {
			tr.SetPeer(id, a)
		}
	}
	c.opening, c.dirty = true, true
	return c, nil
}

// loadSnapshot restores the state machine and address book from a snapshot: the local
// one at open, or one the leader sent.
func (c *core) loadSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	peers, state, stateIndex, err := decodeSnapshotDataAt(snap.GetData())
	if err == nil && stateIndex > md.GetIndex() {
		err = fmt.Errorf("its state is as of index %d, after it", stateIndex)
	}
	if err != nil {
		return fmt.Errorf("metadata log snapshot at %d: %w", md.GetIndex(), err)
	}
	if stateIndex == 0 {
		stateIndex = md.GetIndex()
	}
	for id, a := range peers {
		if _, configured := c.cfg.Voters[id]; !configured {
			c.setPeer(id, a)
		}
	}
	// The state is as of stateIndex: a snapshot taken right after a membership change
	// covers entries the state machine was never given.
	if err := c.sm.Restore(state, stateIndex); err != nil {
		return fmt.Errorf("restore the state machine from the snapshot at %d: %w", md.GetIndex(), err)
	}
	c.applied, c.smIndex = md.GetIndex(), stateIndex
	c.conf = proto.Clone(raftpb.EnsureConfState(md.GetConfState())).(*raftpb.ConfState)
	voters, _ := members(c.conf)
	c.selfVoter = slices.Contains(voters, c.id)
	c.snapBytes, c.snapTime = 0, c.now
	return nil
}

// setPeer records an address, telling the transport when it is new or changed.
func (c *core) setPeer(id uint64, addr string) {
	if old, ok := c.peers[id]; ok && old == addr {
		return
	}
	c.peers[id] = addr
	if id != c.id && c.tr != nil {
		c.tr.SetPeer(id, addr)
	}
}

// fail stops the member: its storage or state machine failed. Waiting proposals get the
// error; raft is neither ticked nor stepped again.
func (c *core) fail(err error) {
	if c.err != nil {
		return
	}
	if !errors.Is(err, ErrStorage) {
		c.log.Error("quorum member stops participating", "err", err)
	}
	c.err = err
	if c.onFail != nil {
		c.onFail(err) // published before anyone waiting hears of it
	}
	c.failPending(err)
}

func (c *core) failPending(err error) {
	idx := make([]uint64, 0, len(c.pending))
	for i := range c.pending {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		c.pending[i].finish(0, err)
		delete(c.pending, i)
	}
}

// tick advances raft's logical clock by one tick.
func (c *core) tick() {
	if c.err != nil {
		return
	}
	c.rn.Tick()
	c.dirty = true
	c.observeTick()
	// A leader the log removed (a change another leader proposed committed under it)
	// keeps leading, so the others learn the removal committed, until it has handed
	// over; raft refuses its proposals meanwhile.
	if c.state == raft.StateLeader && !c.selfVoter && c.rn.BasicStatus().LeadTransferee == 0 {
		c.handOver()
	}
}

// step hands raft a message from a peer.
func (c *core) step(m *raftpb.Message) {
	if c.err != nil {
		return
	}
	delete(c.rejections, m.GetFrom()) // a peer of this cluster after all
	if m.GetFrom() == c.lastLead {
		c.leadHeard = c.now
	}
	if c.joinRequest(m) {
		return
	}
	// Responses from peers raft no longer tracks and local-only types are refused by
	// raft; there is nothing to do about them here.
	_ = c.rn.Step(m)
	c.dirty = true
	if c.state == raft.StateLeader && raft.IsResponseMsg(m.GetType()) {
		c.noteContact(m.GetFrom())
	}
}

// noteContact records a peer's reply to the leader, and whether its log has caught up,
// by Kafka's rule: caught up now if its log reaches the leader's end now, else caught
// up as of the previous contact if it reaches the leader's end as it was then.
func (c *core) noteContact(id uint64) {
	var match uint64
	found := false
	c.rn.WithProgress(func(pid uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pid == id {
			match, found = pr.Match, true
		}
	})
	if !found {
		return
	}
	ct := c.contacts[id]
	if ct == nil {
		ct = &contact{}
		c.contacts[id] = ct
	}
	if match >= c.lastIndex {
		ct.caughtUp = c.now
	} else if ct.prevEnd > 0 && match >= ct.prevEnd && ct.last.After(ct.caughtUp) {
		ct.caughtUp = ct.last
	}
	ct.prevEnd, ct.last = c.lastIndex, c.now
}

func (c *core) reportUnreachable(id uint64) {
	if c.err == nil {
		c.rn.ReportUnreachable(id)
		c.dirty = true
	}
}

func (c *core) reportSnapshot(id uint64, ok bool) {
	if c.err != nil {
		return
	}
	status := raft.SnapshotFinish
	if !ok {
		status = raft.SnapshotFailure
	}
	c.rn.ReportSnapshot(id, status)
	c.dirty = true
}

// propose appends a proposal's entry if this member leads, or finishes it with the
// reason it cannot.
func (c *core) propose(p *proposal) {
	if c.err != nil {
		p.finish(0, c.err)
		return
	}
	if c.dirty {
		c.process() // proposals take the next index only while raft is quiescent
	}
	// After process, state and leader are raft's own.
	if c.state != raft.StateLeader {
		p.finish(0, &NotLeaderError{LeaderID: c.leader.LeaderID})
		return
	}
	var err error
	if p.cc != nil {
		var cc *raftpb.ConfChangeV2
		if cc, err = c.confChange(p.cc); err != nil {
			p.finish(0, err)
			return
		}
		err = c.rn.ProposeConfChange(cc)
	} else {
		err = c.rn.Propose(p.data)
	}
	if err != nil {
		p.finish(0, fmt.Errorf("%w: %w", ErrProposalDropped, err))
		return
	}
	c.lastIndex++
	p.index, p.term = c.lastIndex, c.leader.Term
	c.pending[p.index] = p
	if p.cc != nil {
		c.lastConfIndex = p.index
	}
}

// process handles Readies until raft has none.
func (c *core) process() {
	for c.err == nil && c.rn.HasReady() {
		rd := c.rn.Ready()
		c.handleReady(&rd)
	}
	if c.opening && c.err == nil {
		// The committed entries are applied again, so the configuration is current. The
		// only voter has no one to wait for (the default single-node quorum): it leads at
		// once instead of after an election timeout.
		c.opening = false
		if voters, _ := members(c.conf); len(voters) == 1 && voters[0] == c.id && c.state != raft.StateLeader {
			if err := c.rn.Campaign(); err == nil {
				c.process()
				return
			}
		}
	}
	c.dirty = false
	if c.err == nil {
		c.lastIndex, _ = c.st.ms.LastIndex()
	}
}

func (c *core) handleReady(rd *raft.Ready) {
	next := c.leader
	if rd.HardState != nil {
		next.Term = rd.HardState.GetTerm()
	}
	if rd.SoftState != nil && rd.SoftState.Lead != next.LeaderID {
		next.LeaderID = rd.SoftState.Lead
		next.Predecessor, next.PredecessorSilence = 0, 0
		switch lead := rd.SoftState.Lead; {
		case lead == c.id && c.lastLead != 0:
			next.Predecessor, next.PredecessorSilence = c.lastLead, max(c.now.Sub(c.leadHeard), 0)
		case lead != 0 && lead != c.id:
			c.lastLead, c.leadHeard = lead, c.now
		}
	}
	c.leader = next
	if rd.SoftState != nil {
		c.noteSoftState(rd.SoftState)
	}
	if err := c.st.save(rd); err != nil {
		c.fail(err)
		return
	}
	c.noteEntries(rd.Entries)
	if len(rd.Messages) > 0 {
		c.tr.Send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.loadSnapshot(rd.Snapshot); err != nil {
			c.fail(err)
			return
		}
		c.stats.snapshotsRestored++
		c.log.Info("metadata log: restored a snapshot from the leader", "index", c.applied, "term", rd.Snapshot.GetMetadata().GetTerm())
		for i, p := range c.pending { // cannot happen: a leader receives no snapshot
			if i <= c.applied {
				p.finish(0, ErrProposalDropped)
				delete(c.pending, i)
			}
		}
	}
	for _, e := range rd.CommittedEntries {
		if err := c.apply(e); err != nil {
			c.fail(err)
			return
		}
	}
	c.rn.Advance(*rd)
	if c.leader != c.notified {
		c.notified = c.leader
		if c.onLeader != nil {
			c.onLeader(c.leader)
		}
	}
	c.maybeSnapshot()
}

// noteSoftState follows leadership: a leader that steps down fails what it was waiting for.
func (c *core) noteSoftState(ss *raft.SoftState) {
	was := c.state
	c.state = ss.RaftState
	if was == raft.StateLeader && ss.RaftState != raft.StateLeader {
		c.failPending(&NotLeaderError{LeaderID: ss.Lead, Lost: true})
		clear(c.contacts)
	}
	if ss.RaftState == raft.StateLeader && was != raft.StateLeader {
		c.leaderStart = 0
	}
}

// noteEntries checks newly appended entries against the proposals waiting for them and
// remembers membership changes and the first entry of a leader's term.
func (c *core) noteEntries(ents []*raftpb.Entry) {
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal {
			c.lastConfIndex = max(c.lastConfIndex, e.GetIndex())
		}
		if c.state == raft.StateLeader && c.leaderStart == 0 && e.GetTerm() == c.leader.Term {
			c.leaderStart = e.GetIndex()
		}
		p := c.pending[e.GetIndex()]
		if p == nil || p.term != e.GetTerm() {
			continue
		}
		// The proposal's entry is the one raft appended at its index, or the index
		// tracking is broken and success could be reported for another entry.
		if p.cc == nil && (e.GetType() != raftpb.EntryNormal || !bytes.Equal(e.GetData(), p.data)) {
			panic(fmt.Sprintf("quorum: proposal tracked at index %d term %d does not match the entry appended there", p.index, p.term))
		}
	}
}

// apply applies one committed entry and finishes the proposal waiting for it.
func (c *core) apply(e *raftpb.Entry) error {
	idx := e.GetIndex()
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) > 0 {
			if err := c.sm.Apply(idx, e.GetTerm(), e.GetData()); err != nil {
				return fmt.Errorf("apply entry %d: %w", idx, err)
			}
			c.smIndex = idx
			c.snapBytes += int64(len(e.GetData()))
		}
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		if err := c.applyConfChange(e); err != nil {
			return err
		}
	default:
		return fmt.Errorf("apply entry %d: unknown entry type %d", idx, e.GetType())
	}
	c.applied = idx
	if p := c.pending[idx]; p != nil {
		delete(c.pending, idx)
		switch {
		case p.term != e.GetTerm():
			p.finish(0, fmt.Errorf("%w: a new leader replaced its entry", ErrProposalDropped))
		case p.cc != nil && e.GetType() == raftpb.EntryNormal:
			// raft refused the change (another was pending) and appended an empty entry.
			p.finish(0, ErrConfChangeInProgress)
		default:
			p.finish(idx, nil)
		}
	}
	return nil
}

// maybeSnapshot takes a snapshot at the applied index when one is due: enough entry
// bytes or time since the last, or a member was added (raft refuses a snapshot whose
// ConfState lacks the receiver, so the leader's must include every new member).
func (c *core) maybeSnapshot() {
	if c.err != nil || c.applied <= c.st.snapIndex {
		return
	}
	if !c.forceSnap && c.snapBytes < c.cfg.SnapshotMaxBytes && c.now.Sub(c.snapTime) < c.cfg.SnapshotInterval {
		return
	}
	state, smIndex, err := c.sm.Snapshot()
	if err == nil && smIndex != c.smIndex {
		err = fmt.Errorf("the state machine's snapshot is at index %d, it was given %d", smIndex, c.smIndex)
	}
	if err != nil {
		c.fail(fmt.Errorf("snapshot at %d: %w", c.applied, err))
		return
	}
	start := time.Now()
	data := encodeSnapshotDataAt(c.peers, c.smIndex, state)
	if err := c.st.createSnapshot(c.applied, c.conf, data, c.cfg.SnapshotCatchUpEntries); err != nil {
		c.fail(err)
		return
	}
	c.log.Info("metadata log: snapshot taken", "index", c.applied, "bytes", len(data),
		"log_bytes_since_last", c.snapBytes, "took", time.Since(start))
	c.snapBytes, c.snapTime, c.forceSnap = 0, c.now, false
	c.stats.snapshotsTaken++
}

// shutdown fails what waits and releases the storage.
func (c *core) shutdown(err error) error {
	c.failPending(err)
	return c.st.close()
}
