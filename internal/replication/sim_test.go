package replication

// A deterministic simulation of one partition replicated on three brokers (the seed of
// issue 10's multi-node simulation): real partitions and logs over MemFS, the fetchers
// as state machines, an in-memory network that delays and drops, a tiny controller
// that follows Kafka's rules (elect from the ISR, else from the eligible leader
// replicas of KIP-966; accept AlterPartition only with the current epochs; a broker
// that crashed is fenced and leaves the ISR and the ELR before it comes back), an
// idempotent acks=all producer with min.insync.replicas=2, and crashes of any one
// broker at a time (MemFS.CrashPartial: unsynced writes lost or torn). One goroutine,
// a virtual clock, everything drawn from one seed.
//
// Checked after every step: a leader's high watermark never goes back; what any
// leader's high watermark ever covered (what a consumer could read) stays in every
// later leader's log, byte for byte; every acknowledged record is covered. After the
// faults stop and the cluster heals: the replicas are byte-identical and every
// acknowledged record is at its offset with its value.
//
// A failure names its seed; go test -run TestSimulation -sim.seed=N replays it.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

var (
	simSeed  = flag.Uint64("sim.seed", 0, "replay this seed of TestSimulation (0: run the default range)")
	simSeeds = flag.Int("sim.seeds", 24, "how many seeds TestSimulation runs")
)

const (
	simMinISR      = 2
	simSession     = 800 * time.Millisecond // a crashed broker is fenced within this
	simReqTimeout  = 400 * time.Millisecond // a lost request fails after this
	simLongPoll    = 100 * time.Millisecond // an empty fetch answers after this
	simAckTimeout  = 2 * time.Second        // request.timeout.ms of the producer
	simCheckpoints = time.Second            // high watermark checkpoint and flush interval
)

type simNode struct {
	id          int32
	fsys        *vfs.MemFS
	p           *partition.Partition
	up          bool
	brokerEpoch int64
	fetcher     *Fetcher
	flight      *simFlight
	outbox      []partition.ISRChange
	ckpt        *partition.HighWatermarkCheckpoint
	restartAt   time.Time
}

type simFlight struct {
	f     *Fetcher
	req   kmsg.Request
	resp  kmsg.Response
	err   error
	to    int32
	back  bool // the answer is on its way back
	at    time.Time
	dropB bool // the answer will be lost
}

type simPending struct {
	seq int32
	w   *partition.AckWaiter
}

type simStats struct {
	crashes, leaderCrashes, elections, truncations, refused, retried, committedISR int
}

type simAlter struct {
	from int32
	c    partition.ISRChange
	at   time.Time
	lost bool
}

type sim struct {
	t    *testing.T
	seed uint64
	rng  *rand.Rand
	now  time.Time

	nodes []*simNode
	// the controller's state of the partition
	leader                      int32
	leaderEpoch, partitionEpoch int32
	isr, elr                    []int32
	fenced                      map[int32]bool
	alters                      []simAlter

	drop float64 // probability a message is lost

	// the producer: one idempotent acks=all producer with up to 5 batches in flight,
	// which after a failure waits for them all and resends from the first unacknowledged
	pid      int64
	next     int32 // the next sequence to send
	inflight []simPending
	ackedSeq map[int32]int64 // sequence -> offset
	resend   bool
	retryAt  time.Time
	acked    map[int64]string // offset -> value
	stopped  bool             // healing: no new batch is sent

	stats simStats

	// what consumers could have read: the bytes below the highest high watermark a
	// leader ever had
	committed    []byte
	committedEnd int64
	hwOf         map[[2]int32]int64 // (leader, epoch) -> its high watermark
	steps        int
}

func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		runSim(t, *simSeed, 3000)
		return
	}
	for seed := uint64(1); seed <= uint64(*simSeeds); seed++ {
		if !runSim(t, seed, 3000) {
			return
		}
	}
}

func runSim(t *testing.T, seed uint64, steps int) bool {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: time.UnixMilli(1_700_000_000_000),
		leader: -1, fenced: map[int32]bool{}, pid: 77, acked: map[int64]string{}, ackedSeq: map[int32]int64{}, hwOf: map[[2]int32]int64{}}
	ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		s.t = t
		defer func() {
			for _, n := range s.nodes {
				if n.up {
					n.p.Close()
				}
			}
		}()
		s.start()
		s.drop = 0.05
		for s.steps = 0; s.steps < steps; s.steps++ {
			s.chaos()
			s.step()
		}
		s.heal()
	})
	if !ok {
		t.Logf("replay with: go test ./internal/replication -run TestSimulation -sim.seed=%d", seed)
	}
	return ok
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, step %d, t+%v: %s", s.seed, s.steps, s.now.Sub(time.UnixMilli(1_700_000_000_000)), fmt.Sprintf(format, args...))
}

func (s *sim) clock() time.Time { return s.now }

func (s *sim) node(id int32) *simNode { return s.nodes[id-1] }

func (s *sim) brokers(id int32) (partition.BrokerState, bool) {
	if id < 1 || int(id) > len(s.nodes) || !s.node(id).up {
		return partition.BrokerState{}, false
	}
	return partition.BrokerState{Epoch: s.node(id).brokerEpoch, Fenced: s.fenced[id]}, true
}

func (s *sim) start() {
	for id := int32(1); id <= 3; id++ {
		n := &simNode{id: id, fsys: vfs.NewMem()}
		s.nodes = append(s.nodes, n)
		s.open(n)
	}
	s.isr = []int32{1, 2, 3}
	s.elect()
}

// open opens (or reopens after a crash) node n's replica, with the high watermark of
// its checkpoint, and registers it with a new broker epoch.
func (s *sim) open(n *simNode) {
	s.t.Helper()
	if err := vfs.MkdirAllDurable(n.fsys, "/data"); err != nil {
		s.fatalf("mkdir: %v", err)
	}
	hws, _, err := partition.ReadHighWatermarks(n.fsys, "/data")
	if err != nil {
		s.fatalf("node %d: read the high watermark checkpoint: %v", n.id, err)
	}
	l, err := log.OpenWith(n.fsys, "/data/t-0", log.Config{SegmentBytes: 2048}, log.Options{Now: s.clock, Logger: discard})
	if err != nil {
		s.fatalf("node %d: open the log after a crash: %v", n.id, err)
	}
	p, err := partition.OpenReplica(topic, 0, l, partition.Config{MaxMessageBytes: 1 << 20, MinInsyncReplicas: simMinISR,
		TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1}, s.clock, partition.ReplicaOptions{
		ReplicaConfig: partition.ReplicaConfig{LocalID: n.id, LagTimeMax: time.Second, Brokers: s.brokers},
		HighWatermark: partition.CheckpointedHighWatermark(hws, topic, 0),
		SendISRChange: func(c partition.ISRChange) { n.outbox = append(n.outbox, c) },
	})
	if err != nil {
		s.fatalf("node %d: open the partition: %v", n.id, err)
	}
	n.p, n.up, n.fetcher, n.flight, n.outbox = p, true, nil, nil, nil
	n.brokerEpoch = int64(s.steps)*10 + int64(n.id)
	n.ckpt = partition.NewHighWatermarkCheckpoint(n.fsys, "/data")
	delete(s.fenced, n.id)
	s.publish(n)
}

// chaos injects the faults: a crash of one broker when all are healthy, restarts.
func (s *sim) chaos() {
	allUp := true
	for _, n := range s.nodes {
		if !n.up {
			allUp = false
			if !s.now.Before(n.restartAt) && s.fenced[n.id] {
				s.open(n)
				s.elect()
			}
		}
	}
	// One broker at a time: the next crash waits until the last one is healed (back in
	// the ISR), or it would be a double failure, which KIP-966 leaves leaderless.
	if allUp && len(s.isr) == 3 && s.rng.Float64() < 0.01 {
		n := s.nodes[s.rng.IntN(3)]
		if s.leader > 0 && s.rng.IntN(2) == 0 {
			n = s.node(s.leader) // leaders crash more often: that is where the tails are
		}
		s.stats.crashes++
		if n.id == s.leader {
			s.stats.leaderCrashes++
		}
		s.crash(n)
	}
}

func (s *sim) crash(n *simNode) {
	// What the disk holds at the crash; closing the old replica afterwards (on the old
	// filesystem, thrown away) fails its waiting produce requests, as the dropped
	// connections would.
	crashed := n.fsys.CrashPartial(s.rng)
	n.p.Close()
	n.fsys = crashed
	n.up, n.fetcher, n.flight, n.outbox = false, nil, nil, nil
	// It comes back after it was fenced (chaos waits for that), soon or late.
	n.restartAt = s.now.Add(time.Duration(50+s.rng.IntN(1500)) * time.Millisecond)
	// The controller fences it within the session timeout, before it can register again
	// (after an unclean shutdown it leaves the ISR and the ELR: KIP-966).
	fenceIn := time.Duration(s.rng.Int64N(int64(simSession)))
	s.alters = append(s.alters, simAlter{from: -n.id, at: s.now.Add(fenceIn)})
}

// step advances the clock and runs everything due.
func (s *sim) step() {
	s.now = s.now.Add(time.Duration(1+s.rng.IntN(20)) * time.Millisecond)
	s.controller()
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		n.p.Tick()
		s.sendAlters(n)
		s.fetch(n)
		if s.now.UnixMilli()%simCheckpoints.Milliseconds() < 20 {
			if err := n.p.Log().FlushIfDue(); err != nil {
				s.fatalf("node %d: flush: %v", n.id, err)
			}
			if err := n.ckpt.Write([]*partition.Partition{n.p}); err != nil {
				s.fatalf("node %d: checkpoint: %v", n.id, err)
			}
		}
	}
	s.checkCommitted()
	s.produce()
}

// fetch moves node n's fetcher: answers arriving, the next request.
func (s *sim) fetch(n *simNode) {
	fl := n.flight
	if fl != nil && !s.now.Before(fl.at) {
		if !fl.back {
			// The request arrives at the leader (or is lost on the way).
			dst := s.node(fl.to)
			switch {
			case fl.err != nil:
			case !dst.up:
				fl.err = fmt.Errorf("broker %d down", fl.to)
			default:
				fl.resp, fl.err = serveReplica(dst.p, fl.req)
				if fl.err != nil {
					s.fatalf("serve: %v", fl.err)
				}
			}
			fl.back, fl.at = true, s.now.Add(time.Duration(1+s.rng.IntN(10))*time.Millisecond)
			if fr, ok := fl.resp.(*kmsg.FetchResponse); ok && emptyFetch(fr) {
				fl.at = fl.at.Add(simLongPoll)
			}
			if fl.dropB {
				fl.resp, fl.err, fl.at = nil, errors.New("answer lost"), s.now.Add(simReqTimeout)
			}
			return
		}
		n.flight = nil
		if fl.f == n.fetcher {
			before := n.p.LogEndOffset()
			fl.f.Handle(fl.req, fl.resp, fl.err, s.now)
			if n.p.LogEndOffset() < before {
				s.stats.truncations++
			}
		}
	}
	if n.flight != nil || n.fetcher == nil {
		return
	}
	req, _ := n.fetcher.Next(s.now)
	if req == nil {
		return
	}
	fl = &simFlight{f: n.fetcher, req: req, to: n.fetcher.Source(), at: s.now.Add(time.Duration(1+s.rng.IntN(10)) * time.Millisecond)}
	if s.rng.Float64() < s.drop {
		fl.err, fl.at = errors.New("request lost"), s.now.Add(simReqTimeout)
	}
	fl.dropB = s.rng.Float64() < s.drop
	n.flight = fl
}

func emptyFetch(r *kmsg.FetchResponse) bool {
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if len(p.RecordBatches) > 0 || p.ErrorCode != 0 || p.DivergingEpoch.EndOffset >= 0 {
				return false
			}
		}
	}
	return true
}

// sendAlters puts the leader's AlterPartition requests on the way to the controller.
func (s *sim) sendAlters(n *simNode) {
	for _, c := range n.outbox {
		a := simAlter{from: n.id, c: c, at: s.now.Add(time.Duration(1+s.rng.IntN(30)) * time.Millisecond)}
		if s.rng.Float64() < s.drop {
			a.lost, a.at = true, s.now.Add(simReqTimeout)
		}
		s.alters = append(s.alters, a)
	}
	n.outbox = nil
}

// controller handles what arrived: fencing of crashed brokers and AlterPartition.
func (s *sim) controller() {
	var later []simAlter
	for _, a := range s.alters {
		if s.now.Before(a.at) {
			later = append(later, a)
			continue
		}
		if a.from < 0 {
			s.fence(-a.from)
			continue
		}
		s.alter(a)
	}
	s.alters = later
}

func (s *sim) fence(id int32) {
	s.fenced[id] = true
	s.isr = slices.DeleteFunc(s.isr, func(x int32) bool { return x == id })
	s.elr = slices.DeleteFunc(s.elr, func(x int32) bool { return x == id })
	if s.leader == id {
		s.leader = -1
	}
	s.partitionEpoch++
	s.elect()
}

// alter answers an AlterPartition as the controller does (KIP-497, KIP-841).
func (s *sim) alter(a simAlter) {
	n := s.node(a.from)
	if !n.up {
		return
	}
	if a.lost {
		// The sender's AlterPartition manager gives up on it and resends.
		n.p.ISRFailed(a.c.Seq, partition.AlterRetry)
		s.stats.retried++
		return
	}
	switch {
	case a.c.LeaderEpoch != s.leaderEpoch || s.leader != a.from:
		n.p.ISRFailed(a.c.Seq, partition.AlterAwaitMetadata) // FENCED_LEADER_EPOCH
		return
	case a.c.PartitionEpoch != s.partitionEpoch:
		n.p.ISRFailed(a.c.Seq, partition.AlterAwaitMetadata) // INVALID_UPDATE_VERSION
		return
	}
	var isr []int32
	for _, m := range a.c.ISR {
		b, ok := s.brokers(m.BrokerID)
		if !slices.Contains(s.isr, m.BrokerID) && (!ok || b.Fenced || (m.BrokerEpoch != -1 && m.BrokerEpoch != b.Epoch)) {
			n.p.ISRFailed(a.c.Seq, partition.AlterRefused) // INELIGIBLE_REPLICA
			s.stats.refused++
			return
		}
		isr = append(isr, m.BrokerID)
	}
	s.setISR(isr)
	s.stats.committedISR++
	s.partitionEpoch++
	n.p.ISRCommitted(a.c.Seq, s.leaderEpoch, s.partitionEpoch, isr)
	s.publishAll()
}

// setISR changes the ISR, keeping the eligible leader replicas (KIP-966): members that
// leave while the ISR is below min.insync.replicas may still lead, having everything
// committed (the high watermark does not move below min ISR).
func (s *sim) setISR(isr []int32) {
	for _, id := range s.isr {
		if !slices.Contains(isr, id) && len(isr) < simMinISR && !slices.Contains(s.elr, id) {
			s.elr = append(s.elr, id)
		}
	}
	s.elr = slices.DeleteFunc(s.elr, func(x int32) bool { return slices.Contains(isr, x) })
	if len(isr) >= simMinISR {
		s.elr = nil
	}
	s.isr = isr
}

// elect picks a leader if there is none: from the ISR, else from the ELR.
func (s *sim) elect() {
	if s.leader < 0 {
		for _, pool := range [][]int32{s.isr, s.elr} {
			for _, id := range pool {
				if b, ok := s.brokers(id); ok && !b.Fenced {
					s.leader = id
					break
				}
			}
			if s.leader >= 0 {
				break
			}
		}
		if s.leader >= 0 {
			if !slices.Contains(s.isr, s.leader) {
				s.isr = []int32{s.leader}
				s.elr = slices.DeleteFunc(s.elr, func(x int32) bool { return x == s.leader })
			}
			s.leaderEpoch++
			s.partitionEpoch++
			s.stats.elections++
		}
	}
	s.publishAll()
}

func (s *sim) state() partition.LeaderAndISR {
	return partition.LeaderAndISR{Leader: s.leader, LeaderEpoch: s.leaderEpoch, PartitionEpoch: s.partitionEpoch,
		Replicas: []int32{1, 2, 3}, ISR: slices.Clone(s.isr)}
}

func (s *sim) publishAll() {
	for _, n := range s.nodes {
		if n.up {
			s.publish(n)
		}
	}
}

// publish gives node n the partition's state, as a metadata delta would.
func (s *sim) publish(n *simNode) {
	s.t.Helper()
	st := s.state()
	if st.Leader == n.id {
		wasLeader := n.p.Role() == partition.RoleLeader
		if _, err := n.p.BecomeLeader(st); err != nil {
			s.fatalf("node %d: become leader: %v", n.id, err)
		}
		n.fetcher, n.flight = nil, nil
		if !wasLeader {
			// A new leader holds everything any earlier leader's high watermark covered.
			if got := logBytes(s.t, n.p, s.committedEnd); n.p.LogEndOffset() < s.committedEnd || !bytes.Equal(got, s.committed) {
				s.fatalf("new leader %d (epoch %d) lacks committed data: log end %d, committed end %d", n.id, st.LeaderEpoch, n.p.LogEndOffset(), s.committedEnd)
			}
		}
		return
	}
	ok, newEpoch, err := n.p.BecomeFollower(st)
	if err != nil {
		s.fatalf("node %d: become follower: %v", n.id, err)
	}
	if st.Leader < 0 {
		n.fetcher, n.flight = nil, nil
		return
	}
	if ok && (newEpoch || n.fetcher == nil || n.fetcher.Source() != st.Leader) {
		n.fetcher = NewFetcher(Config{LocalID: n.id, BrokerEpoch: n.brokerEpoch, Backoff: 50 * time.Millisecond, Logger: discard}, st.Leader)
		n.fetcher.Add(tkey, topicID, n.p, st.LeaderEpoch)
		n.flight = nil
	}
}

// checkCommitted extends what consumers could read by the leader's high watermark and
// checks that a leader's high watermark never goes back.
func (s *sim) checkCommitted() {
	if s.leader < 0 {
		return
	}
	n := s.node(s.leader)
	if !n.up || n.p.Role() != partition.RoleLeader {
		return
	}
	hw := n.p.HighWatermark()
	key := [2]int32{n.id, s.leaderEpoch}
	if prev, ok := s.hwOf[key]; ok && hw < prev {
		s.fatalf("leader %d's high watermark went back in epoch %d: %d -> %d", n.id, s.leaderEpoch, prev, hw)
	}
	s.hwOf[key] = hw
	if hw <= s.committedEnd {
		return
	}
	rs, err := n.p.Log().Read(s.committedEnd, hw, 1<<30, true)
	if err != nil {
		s.fatalf("read the leader: %v", err)
	}
	buf := make([]byte, log.RangesLen(rs))
	if err := log.ReadRanges(buf, rs); err != nil {
		s.fatalf("read the leader: %v", err)
	}
	if b, _, err := batch.Next(buf, len(buf)); err != nil || b.BaseOffset() != s.committedEnd {
		s.fatalf("the leader's batch at the committed end %d does not start there", s.committedEnd)
	}
	s.committed = append(s.committed, buf...)
	s.committedEnd = hw
}

// produce runs the producer.
func (s *sim) produce() {
	pending := s.inflight[:0]
	for _, pw := range s.inflight {
		select {
		case <-pw.w.Done():
		default:
			pending = append(pending, pw)
			continue
		}
		res, err := pw.w.Result()
		if err != nil {
			s.resend = true
			continue
		}
		if pw.w.End() > s.committedEnd {
			s.fatalf("acknowledged offset %d is past what a consumer could read (%d)", res.BaseOffset, s.committedEnd)
		}
		if off, ok := s.ackedSeq[pw.seq]; ok {
			if off != res.BaseOffset {
				s.fatalf("sequence %d acknowledged at offset %d, then at %d: a duplicate in the log", pw.seq, off, res.BaseOffset)
			}
			continue
		}
		if v, dup := s.acked[res.BaseOffset]; dup {
			s.fatalf("offset %d acknowledged for %q and for %q", res.BaseOffset, v, value(pw.seq))
		}
		s.acked[res.BaseOffset], s.ackedSeq[pw.seq] = value(pw.seq), res.BaseOffset
	}
	s.inflight = pending
	if s.resend {
		if len(s.inflight) > 0 {
			return
		}
		// Resend from the first sequence not acknowledged.
		for seq := int32(0); seq < s.next; seq++ {
			if _, ok := s.ackedSeq[seq]; !ok {
				s.next = seq
				break
			}
		}
		s.resend, s.retryAt = false, s.now.Add(20*time.Millisecond)
	}
	for len(s.inflight) < 5 && !s.stopped && !s.now.Before(s.retryAt) && s.leader >= 0 && s.node(s.leader).up {
		if _, ok := s.ackedSeq[s.next]; ok {
			s.next++
			continue
		}
		b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: s.pid, BaseSequence: s.next},
			[]batch.Record{{Timestamp: s.now.UnixMilli(), Value: []byte(value(s.next))}})
		if err != nil {
			s.fatalf("build: %v", err)
		}
		w, err := s.node(s.leader).p.AppendAcksAll(b, s.now.Add(simAckTimeout))
		switch {
		case err == nil:
			s.inflight = append(s.inflight, simPending{s.next, w})
			s.next++
		case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrNotEnoughReplicas):
			s.resend = true
			return
		default:
			// A sequence error here means the leader's producer state did not follow
			// its log.
			s.fatalf("produce sequence %d to %d: %v", s.next, s.leader, err)
		}
	}
}

func value(seq int32) string { return fmt.Sprintf("v%d", seq) }

// heal stops the faults, lets every broker come back and catch up, and checks the end
// state.
func (s *sim) heal() {
	s.drop, s.stopped = 0, true
	for i := 0; ; i++ {
		if i > 20000 {
			var st []string
			for _, n := range s.nodes {
				st = append(st, fmt.Sprintf("%d: up %v end %d hw %d", n.id, n.up, n.p.LogEndOffset(), n.p.HighWatermark()))
			}
			s.fatalf("the cluster did not heal: leader %d ISR %v ELR %v; %v", s.leader, s.isr, s.elr, st)
		}
		for _, n := range s.nodes {
			if !n.up && !s.now.Before(n.restartAt) && s.fenced[n.id] {
				s.open(n)
				s.elect()
			}
		}
		s.steps++
		s.step()
		if s.healed() {
			break
		}
	}
	l := s.node(s.leader).p
	want := logBytes(s.t, l, l.LogEndOffset())
	if !bytes.Equal(want[:len(s.committed)], s.committed) {
		s.fatalf("the leader's log differs from what consumers could read")
	}
	for _, n := range s.nodes {
		if got := logBytes(s.t, n.p, l.LogEndOffset()); !bytes.Equal(got, want) {
			s.fatalf("replica %d is not byte-identical to leader %d", n.id, s.leader)
		}
	}
	values := map[int64]string{}
	for rest := want; len(rest) > 0; {
		b, r, err := batch.Next(rest, len(rest))
		if err != nil {
			s.fatalf("decode the leader's log: %v", err)
		}
		recs, err := batch.Records(b, 1<<20)
		if err != nil {
			s.fatalf("decode the leader's log: %v", err)
		}
		for _, rec := range recs {
			values[rec.Offset] = string(rec.Value)
		}
		rest = r
	}
	for off, v := range s.acked {
		if values[off] != v {
			s.fatalf("acknowledged record %q at offset %d is %q in the log", v, off, values[off])
		}
	}
	if len(s.acked) < 20 {
		s.fatalf("only %d records acknowledged: the simulation did not get far", len(s.acked))
	}
	s.t.Logf("%d records acknowledged, log end %d, leader epoch %d, %+v", len(s.acked), l.LogEndOffset(), s.leaderEpoch, s.stats)
}

func (s *sim) healed() bool {
	if s.leader < 0 || len(s.isr) != 3 || len(s.inflight) > 0 {
		return false
	}
	l := s.node(s.leader).p
	for _, n := range s.nodes {
		if !n.up || n.p.LogEndOffset() != l.LogEndOffset() || n.p.HighWatermark() != l.LogEndOffset() {
			return false
		}
	}
	return true
}
