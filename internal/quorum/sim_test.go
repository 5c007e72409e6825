package quorum

// A seeded simulation of a quorum in one goroutine: a virtual clock (one raft tick per
// step), an in-memory network that drops, duplicates, delays (so reorders) and partitions,
// members whose MemFS crashes (losing unsynced writes, sometimes tearing the last write)
// and whose writes and fsyncs fail, restarts, a stream of proposals and membership changes
// (add an observer, promote it, remove a voter). After every step: no two leaders in one
// term, and every member's applied entries agree with one sequence. At the end, with the
// faults healed: every member applies the same entries, and every proposal that returned
// success is among them.
//
// raft draws its election timeouts from crypto/rand; testing/cryptotest seeds that too, so
// a seed replays the same run:
//
//	go test ./internal/quorum -run 'TestSimulation/voters=3' -sim.seed=N -v
//
// -sim.seeds runs more seeds, -sim.steps makes each run longer, -sim.log prints the
// members' logs of a replayed seed.

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

var (
	flagSimSeeds = flag.Int("sim.seeds", 0, "simulation seeds per cluster size (0: the CI default)")
	flagSimSeed  = flag.Uint64("sim.seed", 0, "replay this simulation seed only")
	flagSimSteps = flag.Int("sim.steps", 0, "faulty steps per simulation run (0: the default)")
	flagSimLog   = flag.Bool("sim.log", false, "print the members' logs (with -sim.seed)")
)

const (
	simTick       = 10 * time.Millisecond
	simMaxDelay   = 3 // steps a message may take
	simHealSteps  = 4000
	simCheckEvery = 50
	simSpares     = 3
	simClusterID  = "sim-cluster"
	// simProposeAfterHeal: proposals go on this many steps after the faults stop.
	simProposeAfterHeal = 300
)

// simDefaults: CI runs a bounded number of seeds: 12 per cluster size (about 4 s in all
// on a shared 2-core machine), 4 under the race detector (about 25 s), 2 with -short.
func simDefaults() (seeds, steps int) {
	seeds, steps = 12, 1500
	if raceEnabled {
		seeds = 4
	}
	if testing.Short() {
		seeds = 2
	}
	if *flagSimSeeds > 0 {
		seeds = *flagSimSeeds
	}
	if *flagSimSteps > 0 {
		steps = *flagSimSteps
	}
	return seeds, steps
}

func TestSimulation(t *testing.T) {
	seeds, steps := simDefaults()
	for _, voters := range []int{3, 5} {
		t.Run(fmt.Sprintf("voters=%d", voters), func(t *testing.T) {
			var total simStats
			list := make([]uint64, seeds)
			for i := range list {
				list[i] = uint64(voters)*1000 + uint64(i) + 1
			}
			if *flagSimSeed != 0 {
				list = []uint64{*flagSimSeed}
			}
			for _, seed := range list {
				st := runSim(t, voters, seed, steps)
				total.add(st)
			}
			t.Logf("%d seeds: %+v", len(list), total)
			if *flagSimSeed == 0 && (total.snapshots == 0 || total.restores == 0 || total.crashes == 0 ||
				total.confChanges == 0 || total.failedIO == 0 || total.acked == 0 || total.tornTails == 0) {
				t.Errorf("the runs did not exercise everything they should: %+v", total)
			}
		})
	}
}

type simStats struct {
	steps, acked, proposals, snapshots, restores, crashes, powerLosses, partitions int
	failedIO, tornTails, confChanges, promotions, removals                         int
}

func (s *simStats) add(o simStats) {
	s.steps += o.steps
	s.acked += o.acked
	s.proposals += o.proposals
	s.snapshots += o.snapshots
	s.restores += o.restores
	s.crashes += o.crashes
	s.powerLosses += o.powerLosses
	s.partitions += o.partitions
	s.failedIO += o.failedIO
	s.tornTails += o.tornTails
	s.confChanges += o.confChanges
	s.promotions += o.promotions
	s.removals += o.removals
}

type simMsg struct {
	at, seq  int
	from, to uint64
	body     []byte // a frame body of one message
	snap     bool
}

type simNode struct {
	id   uint64
	cfg  Config
	mem  *vfs.MemFS
	inj  *simInjector
	logs *logBuffer
	c    *core // nil while down
	sm   *listSM

	downUntil    int
	gone         bool // removed from the quorum and decommissioned
	checked      int  // sm entries checked against the global sequence
	seenRestores int
}

// simInjector fails the next operation of one kind, once armed.
type simInjector struct {
	armed   bool
	kind    vfs.OpKind
	partial int // for a write: the bytes written before it fails (-1: none)
	fired   bool
}

func (j *simInjector) MaybeError(op vfs.Op) error {
	if !j.armed || op.Kind != j.kind {
		return nil
	}
	j.armed, j.fired = false, true
	if op.Kind == vfs.OpWrite && j.partial >= 0 {
		return &vfs.Partial{N: min(j.partial, max(op.Len-1, 0))}
	}
	return vfs.ErrInjected
}

type simAck struct {
	index uint64
	data  string
}

type sim struct {
	t         *testing.T
	seed      uint64
	rng       *rand.Rand
	step      int
	now       time.Time
	faults    bool
	voters    int // initial
	nodes     []*simNode
	byID      map[uint64]*simNode
	net       []simMsg
	due       []simMsg // reused by deliver
	seq       int
	group     map[uint64]int    // partition groups; nil when healed
	healAt    int               // when the partition heals
	healStart int               // when the faults stopped
	global    map[uint64]string // index -> data of every applied entry seen
	leaders   map[uint64]uint64 // term -> leader
	acked     []simAck
	ackSeen   int
	nextP     int
	stats     simStats
	trace     []string
	confOp    bool            // a membership change is waiting
	added     map[uint64]bool // spares proposed as observers
}

func runSim(t *testing.T, voters int, seed uint64, steps int) (stats simStats) {
	t.Helper()
	cryptotest.SetGlobalRandom(t, seed) // raft's election timeouts
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x51a1)), now: epoch, voters: voters,
		byID: map[uint64]*simNode{}, global: map[uint64]string{}, leaders: map[uint64]uint64{},
		added: map[uint64]bool{},
	}
	vs := map[uint64]string{}
	for id := uint64(1); id <= uint64(voters); id++ {
		vs[id] = fmt.Sprintf("10.0.0.%d:9093", id)
	}
	// Spare nodes start empty and wait to be added (observers, later voters).
	for id := uint64(1); id <= uint64(voters)+simSpares; id++ {
		cfg := Config{NodeID: id, ClusterID: simClusterID, Voters: vs, Observer: id > uint64(voters),
			ElectionTimeout: 10 * simTick, TickInterval: simTick,
			SnapshotMaxBytes: 400 + int64(s.rng.IntN(800)), SnapshotCatchUpEntries: uint64(2 + s.rng.IntN(10)),
			SnapshotInterval: time.Duration(200+s.rng.IntN(400)) * simTick}
		n := &simNode{id: id, cfg: cfg, mem: vfs.NewMem(), inj: &simInjector{}}
		s.nodes = append(s.nodes, n)
		s.byID[id] = n
		s.open(n)
	}
	defer func() {
		if r := recover(); r != nil {
			s.dump()
			s.fatalf("panic: %v\n%s", r, debug.Stack())
		}
		if t.Failed() || *flagSimLog {
			s.dump()
		}
	}()
	s.faults = true
	for range steps {
		s.runStep()
		if t.Failed() {
			return s.stats
		}
	}
	s.heal()
	return s.stats
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d step %d: %s\nreplay: go test ./internal/quorum -run 'TestSimulation/voters=%d' -sim.seed=%d -sim.steps=%d -v",
		s.seed, s.step, fmt.Sprintf(format, args...), s.voters, s.seed, *flagSimSteps)
}

func (s *sim) tracef(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%5d ", s.step)+fmt.Sprintf(format, args...))
	if len(s.trace) > 400 {
		s.trace = s.trace[200:]
	}
}

func (s *sim) dump() {
	s.t.Logf("seed %d, last events:\n%s", s.seed, strings.Join(s.trace, "\n"))
	for _, n := range s.nodes {
		if n.logs != nil && (*flagSimLog || n.logs.contains("level=ERROR")) {
			s.t.Logf("node %d log:\n%s", n.id, n.logs.String())
		}
	}
}

func (s *sim) open(n *simNode) {
	var logger *slog.Logger
	if *flagSimLog {
		n.logs = &logBuffer{}
		logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	} else {
		logger = slog.New(slog.DiscardHandler)
	}
	n.sm = &listSM{}
	c, err := newCore(n.cfg, vfs.WithErrors(n.mem, n.inj), "/data", n.sm, &simTransport{s: s, from: n.id}, s.now, logger)
	if err != nil {
		s.fatalf("node %d does not open: %v", n.id, err)
	}
	n.c, n.checked, n.seenRestores = c, 0, 0
}

func (n *simNode) up() bool { return n.c != nil }

// simTransport puts a member's messages on the simulated network.
type simTransport struct {
	s    *sim
	from uint64
}

func (tr *simTransport) Start(Reporter) error   { return nil }
func (tr *simTransport) Stop()                  {}
func (tr *simTransport) SetPeer(uint64, string) {}
func (tr *simTransport) RemovePeer(uint64)      {}
func (tr *simTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		tr.s.send(tr.from, m)
	}
}

func (s *sim) send(from uint64, m *raftpb.Message) {
	body, err := appendBatch(nil, simClusterID, []*raftpb.Message{m})
	if err != nil {
		s.fatalf("encode %v: %v", m, err)
	}
	msg := simMsg{from: from, to: m.GetTo(), body: body, snap: m.GetType() == raftpb.MsgSnap}
	if s.faults && s.rng.Float64() < 0.03 {
		if msg.snap {
			s.report(from, msg.to, false)
		}
		return
	}
	s.enqueue(msg, s.rng.IntN(simMaxDelay+1))
	if s.faults && !msg.snap && s.rng.Float64() < 0.02 {
		s.enqueue(msg, s.rng.IntN(simMaxDelay+1))
	}
}

func (s *sim) enqueue(m simMsg, delay int) {
	s.seq++
	m.at, m.seq = s.step+delay, s.seq
	s.net = append(s.net, m)
}

// report tells a sender how a snapshot it sent fared, as a TCP transport does.
func (s *sim) report(from, to uint64, ok bool) {
	if n := s.byID[from]; n.up() {
		n.c.reportSnapshot(to, ok)
	}
}

func (s *sim) reachable(a, b uint64) bool {
	return s.group == nil || s.group[a] == s.group[b]
}

func (s *sim) deliver() {
	due := s.due[:0]
	rest := s.net[:0]
	for _, m := range s.net {
		if m.at <= s.step {
			due = append(due, m)
		} else {
			rest = append(rest, m)
		}
	}
	s.net, s.due = rest, due
	slices.SortFunc(due, func(a, b simMsg) int { return a.seq - b.seq })
	for _, m := range due {
		dst := s.byID[m.to]
		if dst == nil || !dst.up() || !s.reachable(m.from, m.to) {
			if src := s.byID[m.from]; src.up() {
				src.c.reportUnreachable(m.to)
			}
			if m.snap {
				s.report(m.from, m.to, false)
			}
			continue
		}
		msgs, err := decodeBatch(m.body, simClusterID, m.to)
		if err != nil {
			s.fatalf("a member's message does not pass the receiver's checks: %v", err)
		}
		for _, rm := range msgs {
			dst.c.step(rm)
		}
		if m.snap {
			s.report(m.from, m.to, true)
		}
	}
}

func (s *sim) runStep() {
	s.step++
	s.now = s.now.Add(simTick)
	s.stats.steps++
	if s.faults {
		s.injectFaults()
	}
	for _, n := range s.nodes {
		if !n.up() && !n.gone && n.downUntil <= s.step {
			s.open(n)
			s.tracef("node %d restarts (log %d..%d, commit %d)", n.id, n.c.st.snapIndex, n.c.lastIndex, n.c.st.hs.GetCommit())
		}
	}
	for _, n := range s.nodes {
		if n.up() {
			n.c.now = s.now
		}
	}
	s.propose()
	s.deliver()
	for _, n := range s.nodes {
		if n.up() {
			n.c.tick()
			n.c.process()
		}
	}
	for _, n := range s.nodes {
		if n.up() && n.gone {
			s.stopNode(n, "(decommissioned)", false)
		}
		if n.up() && n.c.err != nil {
			if !n.inj.fired {
				s.fatalf("node %d failed without an injected fault: %v", n.id, n.c.err)
			}
			s.stopNode(n, "after an injected I/O failure", s.rng.IntN(2) == 0)
		}
	}
	s.check()
}

// stopNode takes a member down: its process is gone, and with crash its machine too
// (unsynced writes lost).
func (s *sim) stopNode(n *simNode, why string, crash bool) {
	s.checkApplied(n) // what it applied (and acknowledged) this step counts
	s.collect(n)
	n.c = nil
	n.inj.armed, n.inj.fired = false, false
	if crash {
		if s.rng.IntN(2) == 0 {
			n.mem = n.mem.CrashPartial(s.rng)
		} else {
			n.mem = n.mem.Crash()
		}
	}
	n.downUntil = s.step + 1 + s.rng.IntN(60)
	s.tracef("node %d stops %s (machine crash %v), back at %d", n.id, why, crash, n.downUntil)
}

// collect adds a member's counters to the run's before its core goes away.
func (s *sim) collect(n *simNode) {
	s.stats.snapshots += n.c.stats.snapshotsTaken
	s.stats.restores += n.c.stats.snapshotsRestored
	s.stats.confChanges += n.c.stats.confChanges
	s.stats.tornTails += n.c.stats.tornTails
	n.c.stats = coreStats{}
}

func (s *sim) injectFaults() {
	r := s.rng.Float64()
	live := s.liveNodes()
	switch {
	case r < 0.004: // a member's process or machine dies
		down := len(s.nodes) - len(live)
		if down < (s.voters-1)/2 && len(live) > 0 {
			s.stats.crashes++
			s.stopNode(live[s.rng.IntN(len(live))], "(crash)", s.rng.IntN(3) > 0)
		}
	case r < 0.0045: // power loss: every machine at once
		s.stats.powerLosses++
		for _, n := range live {
			s.stopNode(n, "(power loss)", true)
		}
	case r < 0.009: // the next write, fsync, rename or directory sync of a member fails
		if len(live) > 0 {
			n := live[s.rng.IntN(len(live))]
			kinds := []vfs.OpKind{vfs.OpWrite, vfs.OpWrite, vfs.OpSync, vfs.OpSync, vfs.OpRename, vfs.OpSyncDir}
			*n.inj = simInjector{armed: true, kind: kinds[s.rng.IntN(len(kinds))], partial: s.rng.IntN(40) - 10}
			s.stats.failedIO++
			s.tracef("node %d: the next %v fails", n.id, n.inj.kind)
		}
	case r < 0.013 && s.group == nil: // a partition
		s.group = map[uint64]int{}
		if s.rng.IntN(2) == 0 {
			s.group[s.nodes[s.rng.IntN(len(s.nodes))].id] = 1
		} else {
			for _, n := range s.nodes {
				s.group[n.id] = s.rng.IntN(2)
			}
		}
		s.healAt = s.step + 20 + s.rng.IntN(200)
		s.stats.partitions++
		s.tracef("partition %v until %d", s.group, s.healAt)
	}
	if s.group != nil && s.step >= s.healAt {
		s.group = nil
		s.tracef("partition healed")
	}
}

func (s *sim) liveNodes() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.up() {
			out = append(out, n)
		}
	}
	return out
}

// leader returns the live member that leads the highest term, if any.
func (s *sim) leader() *simNode {
	var best *simNode
	for _, n := range s.nodes {
		if n.up() && n.c.state == raft.StateLeader && (best == nil || n.c.leader.Term > best.c.leader.Term) {
			best = n
		}
	}
	return best
}

func (s *sim) propose() {
	live := s.liveNodes()
	if len(live) == 0 {
		return
	}
	if s.faults || s.step < s.healStart+simProposeAfterHeal {
		for range s.rng.IntN(3) {
			target := s.leader()
			if target == nil || s.rng.IntN(10) == 0 {
				target = live[s.rng.IntN(len(live))]
			}
			s.nextP++
			data := fmt.Sprintf("p%d-n%d", s.nextP, target.id)
			s.stats.proposals++
			target.c.propose(&proposal{data: []byte(data), done: func(index uint64, err error) {
				s.proposalDone(target.id, data, index, err)
			}})
		}
	}
	if s.faults && !s.confOp && s.rng.IntN(40) == 0 {
		s.membershipChange()
	}
}

func (s *sim) proposalDone(from uint64, data string, index uint64, err error) {
	switch {
	case err == nil:
		s.acked = append(s.acked, simAck{index, data})
		s.stats.acked++
	case errorsIsAny(err, ErrNotLeader, ErrProposalDropped, ErrStorage):
	default:
		s.fatalf("proposal %s on node %d: unexpected error %v", data, from, err)
	}
}

// membershipChange asks the leader for the next step of the scenario: promote an
// observer; or remove a voter (down to one: the quorum shrinks and grows again); or add a
// spare as an observer. Raft ids are never reused, so a spare is added at most once, and
// a removed node is decommissioned.
func (s *sim) membershipChange() {
	l := s.leader()
	if l == nil {
		return
	}
	voters, observers := members(l.c.conf)
	var op confChangeOp
	spare := slices.ContainsFunc(s.nodes[s.voters:], func(n *simNode) bool { return !s.added[n.id] })
	switch {
	case len(observers) > 0:
		op = confChangeOp{kind: promoteToVoter, id: observers[s.rng.IntN(len(observers))]}
	case len(voters) > 1 && (!spare || s.rng.IntN(3) == 0):
		op = confChangeOp{kind: removeNode, id: voters[s.rng.IntN(len(voters))]}
	default:
		for _, n := range s.nodes[s.voters:] {
			if !s.added[n.id] {
				op = confChangeOp{kind: addObserver, id: n.id, addr: fmt.Sprintf("10.0.0.%d:9093", n.id)}
				s.added[n.id] = true
				break
			}
		}
		if op.id == 0 {
			return
		}
	}
	s.confOp = true
	s.tracef("node %d proposes: %v %d", l.id, op.kind, op.id)
	l.c.propose(&proposal{cc: &op, done: func(_ uint64, err error) {
		s.confOp = false
		s.tracef("%v %d: %v", op.kind, op.id, err)
		var nl *NotLeaderError
		switch {
		case err == nil:
			switch op.kind {
			case promoteToVoter:
				s.stats.promotions++
			case removeNode:
				s.stats.removals++
				// An operator decommissions a removed node: it never comes back, so the
				// others must not need it (its vote, its copy of the log).
				s.byID[op.id].gone = true // stopped at the end of the step
			}
			return
		case errorsIsAny(err, ErrNotLeader, ErrProposalDropped, ErrStorage, ErrConfChangeInProgress, ErrNotCaughtUp):
		default:
			s.fatalf("%v %d: unexpected error %v", op.kind, op.id, err)
		}
		// Unless the change may still commit, the spare can be tried again.
		if op.kind == addObserver && !errors.Is(err, ErrStorage) && !(errors.As(err, &nl) && nl.Lost) {
			s.added[op.id] = false
		}
	}})
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
