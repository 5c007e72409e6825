package controller

// A seeded simulation at the controller's level: three controllers (cores, driven
// without goroutines) over one simulated log whose leadership moves, five brokers that
// register, heartbeat with lagging images, crash, restart as new incarnations and shut
// down in a controlled way, and clients creating and deleting topics and partitions, on
// a virtual clock. Each controller's writer is played faithfully: one entry in the log at
// a time per controller, the next only once it committed. The log drops proposals, and
// when leadership moves the deposed leader's entry in flight either survives (it commits
// under the next leader, before its NoOp) or is lost. Entries are small (512 bytes), so a
// broker's fencing or controlled shutdown often takes several.
//
// After every step: every node's image is the same and no entry was refused; every
// partition's leader is in its ISR and active (unfenced, not shutting down) or there is
// none; the ISR is a non-empty subset of the replicas; leader, partition and broker
// epochs never go back; at most one controller is active, and only the leader's. Answers
// must agree with the committed image: a created topic exists, an unfenced broker is.
//
// A failing run prints its seed; VLTAVA_SIM_SEED=<seed> replays it alone (with -v for
// the controllers' logs).

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

type simEntry struct {
	node uint64
	w    *write
	term uint64
}

type simNode struct {
	id       uint64
	core     *core
	sm       *metadata.StateMachine
	queue    []*write  // the writer's queue
	inflight *simEntry // proposed, in the log, not committed
}

type simBroker struct {
	id         int32
	up         bool
	registered bool
	epoch      int64
	applied    uint64 // the metadata offset its image has reached
	stopping   bool   // in controlled shutdown
}

type sim struct {
	t       *testing.T
	rnd     *rand.Rand
	now     time.Time
	nodes   []*simNode
	leader  quorum.LeaderInfo
	log     []*simEntry // uncommitted entries, in log order
	index   uint64      // last committed
	brokers []*simBroker
	topics  int
	prev    *metadata.Image
	steps   int
	stats   map[string]int // events seen, to show the run exercised them
}

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{t: t, rnd: rand.New(rand.NewPCG(seed, 0x5eed)), now: time.Unix(1_700_000_000, 0), prev: metadata.Empty(),
		stats: map[string]int{}}
	for id := uint64(1); id <= 3; id++ {
		cfg := testConfig()
		cfg.NodeID, cfg.Seed = int32(id), int64(seed*10+id)
		cfg.MaxEntryBytes = 512 // small entries: a broker's fencing takes several
		// Frequent periodic elections: leader rebalances, and unclean elections where
		// the cluster default allows them (half the seeds).
		cfg.Broker = cfg.Broker.WithDynamicDefaults(nil)
		cfg.Broker.Values["leader.imbalance.check.interval.seconds"] = "5"
		cfg.Broker.Values["unclean.leader.election.interval.ms"] = "5000"
		cfg.Broker.Values["unclean.leader.election.enable"] = fmt.Sprint(seed%2 == 0)
		n := &simNode{id: id, sm: metadata.NewStateMachine(nil, testLogger(t))}
		n.core = newCore(cfg, n.sm.Image, testLogger(t).With("node", id))
		s.nodes = append(s.nodes, n)
	}
	for id := int32(1); id <= 5; id++ {
		s.brokers = append(s.brokers, &simBroker{id: id, up: true})
	}
	return s
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d: %s", s.steps, fmt.Sprintf(format, args...))
}

// call runs fn on a node's core at the virtual time and carries its writes out.
func (s *sim) call(n *simNode, fn func()) {
	n.core.now = s.now
	fn()
	s.pump()
}

// pump plays every node's writer until nothing moves.
func (s *sim) pump() {
	for moved := true; moved; {
		moved = false
		for _, n := range s.nodes {
			n.queue = append(n.queue, n.core.takeWrites()...)
			for n.inflight == nil && len(n.queue) > 0 {
				w := n.queue[0]
				n.queue = n.queue[1:]
				moved = true
				n.core.now = s.now
				switch {
				case w.gen != n.core.gen:
					n.core.written(w, 0, errStale)
				case s.leader.LeaderID != n.id:
					n.core.written(w, 0, &quorum.NotLeaderError{LeaderID: s.leader.LeaderID})
				case s.rnd.IntN(50) == 0:
					n.core.written(w, 0, fmt.Errorf("propose: %w", quorum.ErrProposalDropped))
				case s.rnd.IntN(80) == 0:
					// An outcome the proposer cannot tell: the entry is in the log and may
					// commit, the proposer hears an error.
					s.log = append(s.log, &simEntry{node: n.id, w: w, term: s.leader.Term})
					n.core.written(w, 0, errors.New("propose: unknown outcome"))
					s.stats["unknown outcomes"]++
				default:
					n.inflight = &simEntry{node: n.id, w: w, term: s.leader.Term}
					s.log = append(s.log, n.inflight)
				}
				n.queue = append(n.queue, n.core.takeWrites()...)
			}
		}
	}
}

// commitOne commits the first uncommitted entry on every node.
func (s *sim) commitOne() {
	if len(s.log) == 0 {
		return
	}
	e := s.log[0]
	s.log = s.log[1:]
	s.index++
	for _, n := range s.nodes {
		if err := n.sm.Apply(s.index, e.term, e.w.data); err != nil {
			s.fail("apply: %v", err)
		}
	}
	n := s.nodes[e.node-1]
	if n.inflight == e {
		n.inflight = nil
		s.call(n, func() { n.core.written(e.w, s.index, nil) })
	}
	s.check()
}

// elect moves leadership to node id in a new term. The deposed leader's entry in flight
// survives or is lost; either way the deposed leader hears it lost leadership.
func (s *sim) elect(id uint64) {
	s.stats["elections"]++
	next := quorum.LeaderInfo{LeaderID: id, Term: s.leader.Term + 1}
	if prev := s.leader.LeaderID; prev != 0 && prev != id {
		// The new leader names the old one and how long it had not heard from it: the
		// broker of that node (nodes 1-3 are brokers 1-3) gets its session from then.
		next.Predecessor, next.PredecessorSilence = prev, time.Duration(s.rnd.IntN(12000))*time.Millisecond
	}
	s.leader = next
	var kept []*simEntry
	for _, e := range s.log {
		if s.rnd.IntN(2) == 0 {
			kept = append(kept, e)
		}
	}
	s.log = kept
	for _, n := range s.nodes {
		if e := n.inflight; e != nil {
			n.inflight = nil
			s.call(n, func() { n.core.written(e.w, 0, &quorum.NotLeaderError{LeaderID: id, Lost: true}) })
		}
	}
	for _, n := range s.nodes {
		s.call(n, func() { n.core.leader(s.leader) })
	}
}

// request sends req to the leader's controller (or, now and then, to another node) and
// hands the answer to check once there is one.
func (s *sim) request(req kmsg.Request, check func(kmsg.Response)) {
	n := s.nodes[s.rnd.IntN(len(s.nodes))]
	if s.leader.LeaderID != 0 && s.rnd.IntN(5) != 0 {
		n = s.nodes[s.leader.LeaderID-1]
	}
	s.call(n, func() {
		n.core.handle(&op{req: req, respond: func(r kmsg.Response) {
			if check != nil {
				check(r)
			}
		}})
	})
}

func (s *sim) image() *metadata.Image { return s.nodes[0].sm.Image() }

func (s *sim) brokerStep(b *simBroker) {
	switch {
	case !b.up:
		if s.rnd.IntN(4) == 0 { // restart: a new incarnation, its image recovered to some point
			b.up, b.registered, b.stopping = true, false, false
			b.applied = uint64(s.rnd.Int64N(int64(s.index) + 1))
		}
	case !b.registered:
		reg := registration(b.id, uuid.UUID(s.randomID()), "")
		if b.epoch > 0 && s.rnd.IntN(2) == 0 { // its last incarnation stopped cleanly (KIP-966)
			reg.PreviousBrokerEpoch = b.epoch
		}
		s.request(reg, func(r kmsg.Response) {
			if resp := r.(*kmsg.BrokerRegistrationResponse); resp.ErrorCode == 0 {
				b.registered, b.epoch = true, resp.BrokerEpoch
				s.stats["registered"]++
			}
		})
	default:
		b.applied += uint64(s.rnd.Int64N(int64(s.index-b.applied) + 1)) // catching up, lagging
		if !b.stopping && s.rnd.IntN(60) == 0 {
			b.stopping = true
		}
		if s.rnd.IntN(80) == 0 {
			b.up = false // crash: it stops heartbeating
			return
		}
		if s.rnd.IntN(3) == 0 && s.expandISR(b) {
			return
		}
		req := heartbeat(b.id, b.epoch, int64(b.applied))
		req.WantShutdown = b.stopping
		s.request(req, func(r kmsg.Response) {
			resp := r.(*kmsg.BrokerHeartbeatResponse)
			if resp.ErrorCode != 0 {
				return
			}
			rb := s.image().Broker(b.id)
			if !resp.IsFenced && (rb == nil || rb.Fenced || rb.Epoch != b.epoch) {
				s.fail("broker %d answered unfenced, the image has %+v", b.id, rb)
			}
			if resp.ShouldShutdown {
				if rb := s.image().Broker(b.id); rb == nil || !rb.Fenced {
					s.fail("broker %d told to shut down, the image has %+v", b.id, rb)
				}
				if b.stopping {
					s.stats["controlled shutdown"]++
				}
				b.up = false
			}
		})
	}
}

// expandISR has b, as the leader of a partition whose ISR lacks one of its replicas (one
// being added by a reassignment, or one that was fenced), add that replica back with
// AlterPartition, as a leader does once the follower has caught up; it reports whether
// it sent one.
func (s *sim) expandISR(b *simBroker) bool {
	im := s.image()
	for t := range im.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader != b.id || s.rnd.IntN(2) == 0 {
				continue
			}
			var out []int32
			for _, r := range p.Replicas() {
				if !slices.Contains(p.ISR(), r) && isActive(im.Broker(r)) {
					out = append(out, r)
				}
			}
			if len(out) == 0 {
				continue
			}
			req := kmsg.NewPtrAlterPartitionRequest()
			req.Version = 3
			req.BrokerID, req.BrokerEpoch = b.id, b.epoch
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = t.ID
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = int32(i), p.LeaderEpoch, p.PartitionEpoch
			for _, id := range append(slices.Clone(p.ISR()), out[s.rnd.IntN(len(out))]) {
				e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				e.BrokerID, e.BrokerEpoch = id, -1
				rp.NewEpochISR = append(rp.NewEpochISR, e)
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			s.request(req, func(r kmsg.Response) {
				resp := r.(*kmsg.AlterPartitionResponse)
				if resp.ErrorCode == 0 && len(resp.Topics) == 1 && resp.Topics[0].Partitions[0].ErrorCode == 0 {
					s.stats["isr expanded"]++
				}
			})
			return true
		}
	}
	return false
}

func (s *sim) randomID() [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = byte(s.rnd.IntN(256))
	}
	return id
}

func (s *sim) clientStep() {
	im := s.image()
	switch s.rnd.IntN(7) {
	case 0, 1:
		s.topics++
		name := fmt.Sprintf("t%d", s.topics)
		req := createTopic(name, int32(1+s.rnd.IntN(4)), int16(1+s.rnd.IntN(3)))
		s.request(req, func(r kmsg.Response) {
			st := r.(*kmsg.CreateTopicsResponse).Topics[0]
			if st.ErrorCode == 0 {
				if t := s.image().Topic(name); t == nil || t.ID != st.TopicID {
					s.fail("topic %s answered created, the image has %+v", name, t)
				}
			}
		})
	case 2:
		if names := im.TopicNames(); len(names) > 0 {
			s.request(deleteByName(6, names[s.rnd.IntN(len(names))]), nil)
		}
	case 3:
		if names := im.TopicNames(); len(names) > 0 {
			t := im.Topic(names[s.rnd.IntN(len(names))])
			s.request(createPartitionsReq(t.Name, t.NumPartitions()+1), nil)
		}
	case 5, 6: // a reassignment (KIP-455) of a partition to 1-3 of the brokers, or its cancellation
		names := im.TopicNames()
		if len(names) == 0 {
			return
		}
		t := im.Topic(names[s.rnd.IntN(len(names))])
		part := int32(s.rnd.IntN(int(t.NumPartitions())))
		var target []int32
		if s.rnd.IntN(4) != 0 {
			for _, i := range s.rnd.Perm(len(s.brokers))[:1+s.rnd.IntN(3)] {
				target = append(target, s.brokers[i].id)
			}
		}
		s.request(reassignReq(t.Name, part, target), func(r kmsg.Response) {
			resp := r.(*kmsg.AlterPartitionAssignmentsResponse)
			if resp.ErrorCode != 0 || len(resp.Topics) == 0 {
				return // NOT_CONTROLLER, a timeout
			}
			switch code := resp.Topics[0].Partitions[0].ErrorCode; code {
			case 0:
				if target == nil {
					s.stats["reassignments cancelled"]++
				} else {
					s.stats["reassignments started"]++
				}
			case kerr.NoReassignmentInProgress.Code, kerr.InvalidReplicaAssignment.Code, kerr.UnknownTopicOrPartition.Code,
				kerr.NotController.Code, kerr.RequestTimedOut.Code:
			default:
				s.fail("AlterPartitionReassignments %s-%d to %v answered %s", t.Name, part, target, codeName(code))
			}
		})
	case 4: // ElectLeaders of either type for every partition: the invariants hold after it
		typ := int8(s.rnd.IntN(2))
		s.request(electReq(typ, nil), func(r kmsg.Response) {
			resp := r.(*kmsg.ElectLeadersResponse)
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					switch p.ErrorCode {
					case 0:
						s.stats["elections asked"]++
					case kerr.PreferredLeaderNotAvailable.Code, kerr.EligibleLeadersNotAvailable.Code,
						kerr.NotController.Code, kerr.RequestTimedOut.Code:
					default:
						s.fail("ElectLeaders (type %d) answered %s-%d %s", typ, t.Topic, p.Partition, codeName(p.ErrorCode))
					}
				}
			}
		})
	}
}

// check asserts the invariants on the committed image.
func (s *sim) check() {
	im := s.image()
	if s.steps%50 == 0 { // every node applies every entry: a full comparison now and then
		snap, _ := metadata.AppendSnapshot(nil, im)
		for _, n := range s.nodes[1:] {
			other, _ := metadata.AppendSnapshot(nil, n.sm.Image())
			if !slices.Equal(snap, other) {
				s.fail("node %d's image differs from node 1's", n.id)
			}
		}
	}
	for _, n := range s.nodes {
		if n.sm.Refused() != 0 {
			s.fail("node %d refused an entry", n.id)
		}
	}
	for t := range im.Topics() {
		old := s.prev.TopicByID(t.ID)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			// An empty ISR (KIP-966, the default) leaves the partition leaderless and
			// remembering who may lead again: its ELR or its last leader.
			if len(p.ISR()) == 0 && (p.Leader != metadata.NoLeader || (len(p.ELR()) == 0 && len(p.LastKnownELR()) != 1)) {
				s.fail("%s-%d: empty ISR, leader %d, ELR %v, last known %v", t.Name, i, p.Leader, p.ELR(), p.LastKnownELR())
			}
			replicas := p.Replicas()
			if len(slices.Compact(slices.Sorted(slices.Values(replicas)))) != len(replicas) ||
				!subset(p.ISR(), replicas) || !subset(p.AddingReplicas(), replicas) || !subset(p.RemovingReplicas(), replicas) ||
				slices.ContainsFunc(p.AddingReplicas(), func(r int32) bool { return slices.Contains(p.RemovingReplicas(), r) }) {
				s.fail("%s-%d: replicas %v, isr %v, adding %v, removing %v", t.Name, i, replicas, p.ISR(), p.AddingReplicas(), p.RemovingReplicas())
			}
			if old != nil && i < len(old.Partitions) {
				if o := &old.Partitions[i]; len(o.AddingReplicas())+len(o.RemovingReplicas()) > 0 &&
					len(p.AddingReplicas())+len(p.RemovingReplicas()) == 0 && !slices.Equal(o.Replicas(), replicas) {
					s.stats["reassignments completed"]++
				}
			}
			if p.Leader != metadata.NoLeader && (!slices.Contains(p.ISR(), p.Leader) || !isActive(im.Broker(p.Leader))) {
				s.fail("%s-%d: leader %d (isr %v) is not an active ISR member: %+v", t.Name, i, p.Leader, p.ISR(), im.Broker(p.Leader))
			}
			if old != nil && i < len(old.Partitions) {
				if o := &old.Partitions[i]; p.LeaderEpoch < o.LeaderEpoch || p.PartitionEpoch < o.PartitionEpoch {
					s.fail("%s-%d: epochs went back", t.Name, i)
				}
			}
		}
	}
	for b := range s.prev.Brokers() {
		nb := im.Broker(b.ID)
		if nb != nil && nb.Epoch < b.Epoch {
			s.fail("broker %d's epoch went back", b.ID)
		}
		if nb != nil && nb.Epoch == b.Epoch && nb.Fenced && !b.Fenced {
			s.stats["fenced"]++
		}
	}
	active := 0
	for _, n := range s.nodes {
		if n.core.isActive() {
			active++
			if n.id != s.leader.LeaderID || n.core.term != s.leader.Term {
				s.fail("node %d is active in term %d, the leader is %d in term %d", n.id, n.core.term, s.leader.LeaderID, s.leader.Term)
			}
		}
	}
	if active > 1 {
		s.fail("%d controllers active", active)
	}
	s.prev = im
}

// subset reports whether every member of a is in b.
func subset(a, b []int32) bool {
	return !slices.ContainsFunc(a, func(x int32) bool { return !slices.Contains(b, x) })
}

func (s *sim) run(steps int) {
	s.elect(1)
	for s.steps = 0; s.steps < steps; s.steps++ {
		switch r := s.rnd.IntN(100); {
		case r < 35:
			s.brokerStep(s.brokers[s.rnd.IntN(len(s.brokers))])
		case r < 45:
			s.clientStep()
		case r < 80:
			for range 1 + s.rnd.IntN(3) {
				s.commitOne()
			}
		case r < 98:
			s.now = s.now.Add(time.Duration(s.rnd.IntN(1500)) * time.Millisecond)
			for _, n := range s.nodes {
				s.call(n, n.core.tick)
			}
		default:
			s.elect(uint64(1 + s.rnd.IntN(len(s.nodes))))
		}
		s.check()
	}
	s.steps = 0 // a last full comparison of the nodes' images
	s.check()
}

func TestSimulation(t *testing.T) {
	seeds := []uint64{}
	if v := os.Getenv("VLTAVA_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed)
	} else {
		n := uint64(40)
		if raceEnabled {
			n = 5
		}
		for i := range n {
			seeds = append(seeds, 1000+i)
		}
	}
	steps := 3000
	if testing.Short() || raceEnabled {
		steps = 1000
	}
	total := map[string]int{}
	for _, seed := range seeds {
		ok := t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed)
			s.run(steps)
			for k, v := range s.stats {
				total[k] += v
			}
			total["topics"] += s.image().NumTopics()
		})
		if !ok {
			t.Logf("replay with VLTAVA_SIM_SEED=%d go test -run TestSimulation ./internal/controller", seed)
		}
	}
	t.Logf("over %d runs: %v", len(seeds), total)
	// The runs must have exercised what the invariants are about.
	for _, k := range []string{"registered", "fenced", "controlled shutdown", "elections", "topics", "unknown outcomes",
		"isr expanded", "reassignments started", "reassignments cancelled", "reassignments completed"} {
		if len(seeds) > 1 && total[k] == 0 {
			t.Errorf("no run saw %q", k)
		}
	}
}

// A seed replays the same run: the controllers' decisions depend on nothing but it.
func TestSimulationReplays(t *testing.T) {
	var images [2][]byte
	for i := range images {
		s := newSim(t, 77)
		s.run(800)
		images[i], _ = metadata.AppendSnapshot(nil, s.image())
	}
	if !slices.Equal(images[0], images[1]) {
		t.Fatal("two runs of one seed ended with different images")
	}
}
