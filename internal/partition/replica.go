package partition

// The replica state machine: one replica's role (leader or follower in a leader epoch
// the controller assigned) and, as leader, its followers' progress, the ISR and the high
// watermark, by the rules of Kafka's Partition and Replica (Partition.scala,
// Replica.scala). It is pure, in the style of etcd raft's progress tracker: no locks, no
// goroutines, no I/O, time an input. The partition feeds it (Partition's replication
// methods, replicated.go) and carries out what it returns: the high watermark, and the
// AlterPartition request to send.
//
// The rules:
//
//   - The high watermark is the smallest log end offset among the leader and the
//     followers in the maximal ISR, and the followers that are caught up and may join
//     the ISR (they are waited for so that they can catch up to it); it never goes back
//     on a leader, and does not move at all while the ISR is smaller than the effective
//     min.insync.replicas (the smaller of the topic's value and the replica count: KIP-966's
//     strict min ISR, Kafka 3.7+).
//   - A follower is caught up when its fetch offset reached the leader's log end offset
//     at some time within replica.lag.time.max.ms (lastCaughtUp, advanced as Kafka's
//     Replica.updateFetchStateOrThrow does, so a follower behind a steady stream of small
//     appends still counts as caught up if each fetch reaches where the leader was at the
//     previous one).
//   - The ISR shrinks (Tick) by the followers not caught up; it expands (on a fetch) by a
//     follower whose log end offset is at least the high watermark and the leader
//     epoch's start offset (KIP-101/279: it holds everything the leader may have
//     committed), that is registered, unfenced and not in controlled shutdown, and whose
//     fetch carried the broker epoch the metadata has for it (KIP-841, KIP-903).
//   - A change is an AlterPartition to the controller with the partition epoch, at most
//     one in flight. While an expansion is pending the high watermark already waits for
//     the new member (the maximal ISR, KIP-497); a shrink counts only once committed.
//     A refused change (OPERATION_NOT_ATTEMPTED, INELIGIBLE_REPLICA) returns to the
//     committed ISR; a stale one (the epochs moved) waits for the metadata, which brings
//     the committed state; other errors resend.
//   - acks=all completes once the high watermark passes the batch, with
//     NOT_ENOUGH_REPLICAS_AFTER_APPEND if by then the maximal ISR is smaller than the
//     effective min.insync.replicas.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors of the replication paths; the handler maps them to Kafka codes.
var (
	ErrNotLeader          = errors.New("not the leader of this partition")
	ErrFencedLeaderEpoch  = errors.New("leader epoch in the request is older than this replica's")
	ErrUnknownLeaderEpoch = errors.New("leader epoch in the request is newer than this replica's")
	// ErrUnknownReplica: a follower fetch from a broker not among the replicas (yet).
	ErrUnknownReplica = errors.New("replica is not assigned to this partition")
	// ErrStaleBrokerEpoch: a follower fetch with an older broker epoch than the metadata's
	// (a fetch from before the broker restarted).
	ErrStaleBrokerEpoch             = errors.New("fetch from a stale broker epoch")
	ErrNotEnoughReplicas            = errors.New("in-sync replicas fewer than min.insync.replicas")
	ErrNotEnoughReplicasAfterAppend = errors.New("in-sync replicas fell below min.insync.replicas after the append")
	ErrAckTimeout                   = errors.New("in-sync replicas did not fetch the batch within request.timeout.ms")
)

// Role is a replica's role in its current leader epoch.
type Role int8

const (
	RoleNone     Role = iota // opened, not told its role yet: serves nothing
	RoleLeader               // takes appends, serves fetches
	RoleFollower             // fetches from the leader
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	}
	return "none"
}

// BrokerState is what the metadata says of a broker, for ISR eligibility.
type BrokerState struct {
	Epoch                int64 // the broker epoch of its current registration
	Fenced               bool
	InControlledShutdown bool
}

// Brokers looks a broker up in the metadata image: ok is false for one not registered.
type Brokers func(id int32) (BrokerState, bool)

// ReplicaConfig is what a replica state machine is built with.
type ReplicaConfig struct {
	LocalID    int32         // this broker
	LagTimeMax time.Duration // replica.lag.time.max.ms
	// Brokers says which brokers may join the ISR; nil lets every broker join, with no
	// broker epoch check (tests, and a single node).
	Brokers Brokers
}

// LeaderAndISR is the partition state the controller decided, as a metadata delta
// brings it.
type LeaderAndISR struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
}

// ISRMember is one broker of a proposed ISR with the broker epoch it fetched with (-1
// if unknown), as AlterPartition v3 carries it.
type ISRMember struct {
	BrokerID    int32
	BrokerEpoch int64
}

// ISRChange is an AlterPartition for the controller. Seq identifies it in the answer.
type ISRChange struct {
	Seq            uint64
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []ISRMember
}

// AlterOutcome is what a failed AlterPartition asks the leader to do.
type AlterOutcome int8

const (
	// AlterRefused: the controller did not apply it (OPERATION_NOT_ATTEMPTED,
	// INELIGIBLE_REPLICA): return to the committed ISR, propose again when due.
	AlterRefused AlterOutcome = iota
	// AlterAwaitMetadata: the leader's view is stale (FENCED_LEADER_EPOCH,
	// INVALID_UPDATE_VERSION, UNKNOWN_TOPIC_OR_PARTITION, NEW_LEADER_ELECTED, ...): stay
	// pending until the metadata brings the partition's state.
	AlterAwaitMetadata
	// AlterRetry: a transient failure: send it again.
	AlterRetry
)

// AlterOutcomeOf classifies an AlterPartition error code as Kafka's
// Partition.handleAlterPartitionError does.
func AlterOutcomeOf(code int16) AlterOutcome {
	switch code {
	case kerr.OperationNotAttempted.Code, kerr.IneligibleReplica.Code:
		return AlterRefused
	case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.FencedLeaderEpoch.Code,
		kerr.InvalidUpdateVersion.Code, kerr.InvalidRequest.Code, kerr.NewLeaderElected.Code:
		return AlterAwaitMetadata
	}
	return AlterRetry
}

// FollowerFetch is what a follower's fetch tells the leader.
type FollowerFetch struct {
	ReplicaID      int32
	FetchOffset    int64 // the follower's log end offset
	LogStartOffset int64 // the follower's log start offset
	BrokerEpoch    int64 // -1 if the request carries none
	// LeaderEndOffset is the leader's log end offset before the fetch read (Kafka uses
	// the one before, so that appends during the read do not keep a follower out).
	LeaderEndOffset int64
}

// Effects is what an input changed: the high watermark after it, whether acks=all
// waiters must be checked again (the high watermark or the maximal ISR moved), and an
// AlterPartition to send, if one is due.
type Effects struct {
	HighWatermark int64
	CheckAcks     bool
	Send          *ISRChange
	// Shrunk and Expanded say the controller committed this leader's ISR change in this
	// step, by the kind of change it was (Kafka's AlterPartitionListener: the leader's
	// IsrShrinksPerSec and IsrExpandsPerSec count committed changes only).
	Shrunk, Expanded bool
}

// progress is the leader's view of one follower (Kafka's ReplicaState).
type progress struct {
	leo                int64 // -1 unknown
	logStart           int64
	lastFetchLeaderLEO int64
	lastFetch          time.Time
	lastCaughtUp       time.Time
	brokerEpoch        int64
	hasBrokerEpoch     bool
}

func (p *progress) caughtUp(leaderEnd int64, now time.Time, lagMax time.Duration) bool {
	return p.leo == leaderEnd || now.Sub(p.lastCaughtUp) <= lagMax
}

// pendingChange is the ISR change in flight.
type pendingChange struct {
	sent   ISRChange
	expand int32 // the follower joining; -1 for a shrink
}

// Replica is the state machine. Not safe for concurrent use: the partition guards it.
type Replica struct {
	cfg    ReplicaConfig
	minISR int32 // min.insync.replicas as configured

	role           Role
	leader         int32
	leaderEpoch    int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32 // committed
	pending        *pendingChange
	followers      map[int32]*progress
	epochStart     int64 // the leader epoch's start offset (leader only)
	seq            uint64

	leo int64 // local log end offset (as leader: what acknowledged appends reached)
	hw  int64
}

// NewReplica returns a replica with no role yet, whose log ends at leo and whose high
// watermark is hw (from the checkpoint), clamped to the log.
func NewReplica(cfg ReplicaConfig, minISR int32, leo, hw int64) *Replica {
	return &Replica{cfg: cfg, minISR: minISR, leader: -1, leaderEpoch: -1, partitionEpoch: -1,
		leo: leo, hw: min(max(hw, 0), leo), followers: map[int32]*progress{}}
}

func (r *Replica) Role() Role              { return r.role }
func (r *Replica) Leader() int32           { return r.leader }
func (r *Replica) LeaderEpoch() int32      { return r.leaderEpoch }
func (r *Replica) PartitionEpoch() int32   { return r.partitionEpoch }
func (r *Replica) HighWatermark() int64    { return r.hw }
func (r *Replica) LogEndOffset() int64     { return r.leo }
func (r *Replica) Replicas() []int32       { return slices.Clone(r.replicas) }
func (r *Replica) ISR() []int32            { return slices.Clone(r.isr) }
func (r *Replica) EpochStartOffset() int64 { return r.epochStart }

// Pending returns the ISR change in flight, nil if none.
func (r *Replica) Pending() *ISRChange {
	if r.pending == nil {
		return nil
	}
	c := r.pending.sent
	c.ISR = slices.Clone(c.ISR)
	return &c
}

// MaximalISR is the ISR the high watermark waits for: the committed one plus a follower
// whose expansion is pending.
func (r *Replica) MaximalISR() []int32 {
	m := slices.Clone(r.isr)
	if r.pending != nil && r.pending.expand >= 0 {
		m = append(m, r.pending.expand)
	}
	return m
}

// effectiveMinISR is min.insync.replicas bounded by the replica count, as Kafka 3.7+.
func (r *Replica) effectiveMinISR() int {
	return max(1, min(int(r.minISR), len(r.replicas)))
}

// SetMinInsyncReplicas applies a changed min.insync.replicas.
func (r *Replica) SetMinInsyncReplicas(n int32, now time.Time) Effects {
	r.minISR = n
	return r.effects(r.maybeAdvanceHW(now), true)
}

// CheckAppendAcksAll says whether an acks=all append may go ahead: the replica leads and
// its ISR is at least the effective min.insync.replicas (else NOT_ENOUGH_REPLICAS, and
// nothing is appended).
func (r *Replica) CheckAppendAcksAll() error {
	if r.role != RoleLeader {
		return ErrNotLeader
	}
	if n, m := len(r.isr), r.effectiveMinISR(); n < m {
		return fmt.Errorf("%w: ISR %v has %d, min.insync.replicas %d", ErrNotEnoughReplicas, r.isr, n, m)
	}
	return nil
}

// AckState is what acks=all waiters complete by: a waiter for offsets below end is done
// once hw >= end, with NOT_ENOUGH_REPLICAS_AFTER_APPEND unless enough; leading is false
// once the replica no longer leads (they fail with NOT_LEADER_OR_FOLLOWER).
func (r *Replica) AckState() (hw int64, enough, leading bool) {
	return r.hw, len(r.MaximalISR()) >= r.effectiveMinISR(), r.role == RoleLeader
}

// BecomeLeader makes the replica the leader of st (a metadata delta), its log ending at
// leo. A state older than the one known (a smaller partition epoch) is ignored:
// accepted is false. newEpoch says the leader epoch changed; the caller then records
// the epoch's start offset (leo) in the leader-epoch cache.
func (r *Replica) BecomeLeader(st LeaderAndISR, leo int64, now time.Time) (e Effects, accepted, newEpoch bool) {
	if st.PartitionEpoch < r.partitionEpoch {
		return r.effects(false, false), false, false
	}
	isNewLeader := r.role != RoleLeader
	newEpoch = st.LeaderEpoch > r.leaderEpoch || isNewLeader
	// The metadata may bring the committed change before the AlterPartition answer
	// does (which is then ignored): it is committed all the same.
	committed := r.pending != nil && !newEpoch && st.PartitionEpoch > r.partitionEpoch && sameMembers(st.ISR, r.pending.sent.ISR)
	expanded := committed && r.pending.expand >= 0
	r.role, r.leader = RoleLeader, r.cfg.LocalID
	r.replicas, r.isr, r.pending = slices.Clone(st.Replicas), slices.Clone(st.ISR), nil
	r.partitionEpoch = st.PartitionEpoch
	r.leo = max(r.leo, leo)
	for id := range r.followers {
		if id == r.cfg.LocalID || !slices.Contains(r.replicas, id) {
			delete(r.followers, id)
		}
	}
	for _, id := range r.replicas {
		if id != r.cfg.LocalID && r.followers[id] == nil {
			r.followers[id] = &progress{leo: -1, logStart: -1}
		}
	}
	if newEpoch {
		r.leaderEpoch, r.epochStart = st.LeaderEpoch, leo
		for id, p := range r.followers {
			inSync := slices.Contains(r.isr, id)
			var caught time.Time
			if inSync {
				caught = now
			}
			if isNewLeader {
				*p = progress{leo: -1, logStart: -1, lastFetchLeaderLEO: -1, lastCaughtUp: caught}
			} else {
				p.lastFetchLeaderLEO, p.lastFetch, p.lastCaughtUp = leo, caught, caught
			}
		}
	}
	e = r.effects(r.maybeAdvanceHW(now), true)
	e.Expanded, e.Shrunk = expanded, committed && !expanded
	return e, true, newEpoch
}

// sameMembers reports whether isr names exactly the members of proposed, in any order.
func sameMembers(isr []int32, proposed []ISRMember) bool {
	if len(isr) != len(proposed) {
		return false
	}
	for _, m := range proposed {
		if !slices.Contains(isr, m.BrokerID) {
			return false
		}
	}
	return true
}

// BecomeFollower makes the replica a follower of st.Leader in st.LeaderEpoch. A state
// older than the one known is ignored (accepted false); newEpoch says the leader epoch
// changed, so the fetcher must start over (and truncate if needed).
func (r *Replica) BecomeFollower(st LeaderAndISR) (accepted, newEpoch bool) {
	if st.PartitionEpoch < r.partitionEpoch {
		return false, false
	}
	newEpoch = st.LeaderEpoch > r.leaderEpoch || r.role != RoleFollower
	r.role, r.leader, r.leaderEpoch, r.partitionEpoch = RoleFollower, st.Leader, st.LeaderEpoch, st.PartitionEpoch
	r.replicas, r.isr, r.pending = slices.Clone(st.Replicas), nil, nil
	clear(r.followers)
	return true, newEpoch
}

// Stop leaves any role (the partition is closing, or its log dir failed).
func (r *Replica) Stop() {
	r.role, r.pending = RoleNone, nil
	clear(r.followers)
}

// FollowerFetch records a follower's fetch (already validated against the leader epoch
// and, for divergence, against the log) and may propose adding it to the ISR.
func (r *Replica) FollowerFetch(f FollowerFetch, now time.Time) (Effects, error) {
	if r.role != RoleLeader {
		return r.effects(false, false), ErrNotLeader
	}
	p := r.followers[f.ReplicaID]
	if p == nil {
		return r.effects(false, false), fmt.Errorf("%w: broker %d, replicas %v", ErrUnknownReplica, f.ReplicaID, r.replicas)
	}
	if f.BrokerEpoch != -1 && r.cfg.Brokers != nil {
		if b, ok := r.cfg.Brokers(f.ReplicaID); ok && b.Epoch > f.BrokerEpoch {
			return r.effects(false, false), fmt.Errorf("%w: broker %d fetched with epoch %d, the metadata has %d", ErrStaleBrokerEpoch, f.ReplicaID, f.BrokerEpoch, b.Epoch)
		}
	}
	switch {
	case f.FetchOffset >= f.LeaderEndOffset:
		p.lastCaughtUp = later(p.lastCaughtUp, now)
	case f.FetchOffset >= p.lastFetchLeaderLEO:
		p.lastCaughtUp = later(p.lastCaughtUp, p.lastFetch)
	}
	moved := p.leo != f.FetchOffset
	p.leo, p.logStart = f.FetchOffset, f.LogStartOffset
	p.lastFetchLeaderLEO = max(p.lastFetchLeaderLEO, f.LeaderEndOffset)
	p.lastFetch = now
	p.brokerEpoch, p.hasBrokerEpoch = f.BrokerEpoch, true

	send := r.maybeExpand(f.ReplicaID)
	advanced := moved && r.maybeAdvanceHW(now)
	e := r.effects(advanced, send != nil)
	e.Send = send
	return e, nil
}

// LocalAppend records the leader's own log end offset after an append (the end of what
// the flush policy has made acknowledgeable).
func (r *Replica) LocalAppend(leo int64, now time.Time) Effects {
	if leo <= r.leo {
		return r.effects(false, false)
	}
	r.leo = leo
	if r.role != RoleLeader {
		return r.effects(false, false)
	}
	return r.effects(r.maybeAdvanceHW(now), false)
}

// Tick lets time pass: followers not caught up for replica.lag.time.max.ms are proposed
// for removal, and the high watermark may move (a caught-up follower outside the ISR
// stops holding it back once it is no longer caught up).
func (r *Replica) Tick(now time.Time) Effects {
	if r.role != RoleLeader {
		return r.effects(false, false)
	}
	send := r.maybeShrink(now)
	e := r.effects(r.maybeAdvanceHW(now), send != nil)
	e.Send = send
	return e
}

// ISRCommitted applies the controller's answer to the change seq: the committed ISR and
// partition epoch. An answer to another change, or for another leader epoch, or older
// than the partition epoch known, is ignored (the metadata will say).
func (r *Replica) ISRCommitted(seq uint64, leaderEpoch, partitionEpoch int32, isr []int32, now time.Time) Effects {
	if r.role != RoleLeader || r.pending == nil || r.pending.sent.Seq != seq ||
		leaderEpoch != r.leaderEpoch || partitionEpoch < r.partitionEpoch {
		return r.effects(false, false)
	}
	expanded := r.pending.expand >= 0
	r.isr, r.partitionEpoch, r.pending = slices.Clone(isr), partitionEpoch, nil
	e := r.effects(r.maybeAdvanceHW(now), true)
	e.Expanded, e.Shrunk = expanded, !expanded
	return e
}

// ISRFailed applies a failed answer to the change seq (see AlterOutcome).
func (r *Replica) ISRFailed(seq uint64, outcome AlterOutcome) Effects {
	if r.role != RoleLeader || r.pending == nil || r.pending.sent.Seq != seq {
		return r.effects(false, false)
	}
	switch outcome {
	case AlterRefused:
		wasExpand := r.pending.expand >= 0
		r.pending = nil
		return r.effects(false, wasExpand)
	case AlterRetry:
		e := r.effects(false, false)
		e.Send = r.Pending()
		return e
	}
	return r.effects(false, false)
}

// FollowerProgress records, on a follower, its own log after a fetch or truncation and
// the high watermark the leader sent (Kafka's follower: min(leader's, log end), at least
// the log start). A follower's high watermark may go back: it follows the leader's.
func (r *Replica) FollowerProgress(leo, logStart, leaderHW int64) Effects {
	r.leo = leo
	hw := min(max(leaderHW, logStart), leo)
	moved := hw != r.hw
	r.hw = hw
	return r.effects(moved, false)
}

// Truncated records that the log was cut to end at leo.
func (r *Replica) Truncated(leo, logStart int64) Effects {
	r.leo = leo
	moved := r.hw > leo || r.hw < logStart
	r.hw = min(max(r.hw, logStart), leo)
	return r.effects(moved, false)
}

// maybeExpand proposes adding the follower id to the ISR if it qualifies.
func (r *Replica) maybeExpand(id int32) *ISRChange {
	p := r.followers[id]
	if r.pending != nil || slices.Contains(r.isr, id) || !r.eligible(id) ||
		p.leo < r.hw || p.leo < r.epochStart {
		return nil
	}
	return r.propose(append(slices.Clone(r.isr), id), id)
}

// maybeShrink proposes removing the ISR followers not caught up.
func (r *Replica) maybeShrink(now time.Time) *ISRChange {
	if r.pending != nil {
		return nil
	}
	var keep []int32
	for _, id := range r.isr {
		p := r.followers[id]
		if id == r.cfg.LocalID || (p != nil && p.caughtUp(r.leo, now, r.cfg.LagTimeMax)) {
			keep = append(keep, id)
		}
	}
	if len(keep) == len(r.isr) {
		return nil
	}
	return r.propose(keep, -1)
}

func (r *Replica) propose(isr []int32, expand int32) *ISRChange {
	r.seq++
	c := ISRChange{Seq: r.seq, LeaderEpoch: r.leaderEpoch, PartitionEpoch: r.partitionEpoch}
	for _, id := range isr {
		epoch := int64(-1)
		if p := r.followers[id]; p != nil && p.hasBrokerEpoch {
			epoch = p.brokerEpoch
		} else if id == r.cfg.LocalID && r.cfg.Brokers != nil {
			if b, ok := r.cfg.Brokers(id); ok {
				epoch = b.Epoch
			}
		}
		c.ISR = append(c.ISR, ISRMember{BrokerID: id, BrokerEpoch: epoch})
	}
	r.pending = &pendingChange{sent: c, expand: expand}
	return r.Pending()
}

// eligible says whether a follower may join the ISR, or be waited for by the high
// watermark before it has: registered, unfenced, not shutting down, and fetching with
// the broker epoch of its current registration (or none).
func (r *Replica) eligible(id int32) bool {
	if r.cfg.Brokers == nil {
		return true
	}
	b, ok := r.cfg.Brokers(id)
	p := r.followers[id]
	if !ok || b.Fenced || b.InControlledShutdown || p == nil || !p.hasBrokerEpoch {
		return false
	}
	return p.brokerEpoch == -1 || p.brokerEpoch == b.Epoch
}

// maybeAdvanceHW moves the leader's high watermark up to what the rules allow and
// reports whether it moved.
func (r *Replica) maybeAdvanceHW(now time.Time) bool {
	if r.role != RoleLeader || len(r.isr) < r.effectiveMinISR() {
		return false
	}
	hw := r.leo
	maximal := r.MaximalISR()
	for id, p := range r.followers {
		if p.leo < hw && (slices.Contains(maximal, id) || (p.caughtUp(r.leo, now, r.cfg.LagTimeMax) && r.eligible(id))) {
			hw = p.leo
		}
	}
	if hw <= r.hw {
		return false
	}
	r.hw = hw
	return true
}

func (r *Replica) effects(hwMoved, isrMoved bool) Effects {
	return Effects{HighWatermark: r.hw, CheckAcks: hwMoved || isrMoved}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
