package quorum

import (
	"errors"
	"fmt"
	"time"
)

// StateMachine is what the replicated log drives: the metadata image. Its methods are
// called from the member's loop goroutine, one at a time.
type StateMachine interface {
	// Apply applies the committed entry at index, in log order, exactly once per process
	// lifetime after the last Restore. Entries raft writes for itself (a new leader's
	// empty entry, membership changes) are not passed. An error stops the member, as a
	// storage failure does: a committed entry cannot be skipped.
	Apply(index, term uint64, data []byte) error
	// Snapshot returns the state's bytes as of the last index applied (or restored),
	// and that index.
	Snapshot() (data []byte, index uint64, err error)
	// Restore replaces the state with a snapshot's bytes as of index: at Open from the
	// newest local snapshot (empty data for the empty state of a new log), and when the
	// leader sends one.
	Restore(data []byte, index uint64) error
}

// Clock is where a member's loop takes time from: ticks for raft's logical clock and the
// time of contacts reported by Status.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the real clock (fake time inside a testing/synctest bubble).
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                   { return time.Now() }
func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// Errors. The Kafka error code each maps to (in the handler's one table) is noted.
var (
	// ErrNotLeader: this member does not lead the quorum (NOT_CONTROLLER when forwarding,
	// NOT_LEADER_OR_FOLLOWER in the raft APIs). Errors carrying it are *NotLeaderError.
	ErrNotLeader = errors.New("not the quorum leader")
	// ErrClosed: the member was closed.
	ErrClosed = errors.New("quorum member closed")
	// ErrProposalDropped: the leader refused the proposal for now (a leadership transfer
	// is under way, or vltava.quorum.max.uncommitted.bytes is reached), or its entry was
	// replaced by a new leader's; retry (REQUEST_TIMED_OUT).
	ErrProposalDropped = errors.New("proposal dropped")
	// ErrEntryTooLarge: a proposal over vltava.quorum.max.entry.bytes, or empty
	// (INVALID_REQUEST).
	ErrEntryTooLarge = errors.New("proposal larger than vltava.quorum.max.entry.bytes")
	// ErrConfChangeInProgress: another membership change is not applied yet, or the
	// leader has not committed an entry of its term (REQUEST_TIMED_OUT, as KIP-853).
	ErrConfChangeInProgress = errors.New("another membership change is in progress")
	// ErrDuplicateVoter: the node is a voter already (DUPLICATE_VOTER).
	ErrDuplicateVoter = errors.New("node is already a voter")
	// ErrAlreadyMember: AddObserver for a node that is already a member (DUPLICATE_VOTER
	// for a voter, INVALID_REQUEST otherwise).
	ErrAlreadyMember = errors.New("node is already a member of the quorum")
	// ErrVoterNotFound: the node to remove is not a member, or to promote not an
	// observer (VOTER_NOT_FOUND).
	ErrVoterNotFound = errors.New("node not found among the quorum's members")
	// ErrLastVoter: removing the only voter (VOTER_NOT_FOUND, as Kafka refuses it).
	ErrLastVoter = errors.New("cannot remove the last voter")
	// ErrNotCaughtUp: the observer to promote has not caught up with the leader's log
	// recently (REQUEST_TIMED_OUT, as KIP-853).
	ErrNotCaughtUp = errors.New("observer has not caught up with the leader")
	// ErrInconsistentClusterID: the voters refuse this node's frames because its data
	// dir belongs to another cluster (Kafka's INCONSISTENT_CLUSTER_ID); the node stops.
	ErrInconsistentClusterID = errors.New("the quorum's voters belong to another cluster (INCONSISTENT_CLUSTER_ID)")
)

// NotLeaderError is ErrNotLeader with the leader this member knows (0 if none).
type NotLeaderError struct {
	LeaderID uint64
	// Lost is true when this member was the leader when the proposal was made and lost
	// leadership before it committed: the entry may still commit under the new leader.
	Lost bool
}

func (e *NotLeaderError) Error() string {
	switch {
	case e.Lost:
		return fmt.Sprintf("lost quorum leadership before the entry committed (it may still commit; leader now %d)", e.LeaderID)
	case e.LeaderID == 0:
		return "not the quorum leader (leader unknown)"
	}
	return fmt.Sprintf("not the quorum leader (leader is %d)", e.LeaderID)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// LeaderInfo is the leader as a member knows it: its id (0 while there is none) and the
// term (Kafka's leader epoch).
type LeaderInfo struct {
	LeaderID uint64
	Term     uint64
	// On the leader's own LeaderInfo only: Predecessor is the last other member it
	// knew as leader (0: none), and PredecessorSilence how long it had heard nothing
	// from that member when it won the election. A node that lost the quorum's
	// leadership because it died fell silent about then; the controller backdates the
	// session of the broker in that process accordingly (controller/sessions.go).
	Predecessor        uint64
	PredecessorSilence time.Duration
}
