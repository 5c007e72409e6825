package quorum

import (
	"time"

	"go.etcd.io/raft/v3"
)

// Role is a member's part in the quorum, in Kafka's terms.
type Role int

const (
	// RoleObserver replicates the log without voting (a raft learner), or is not (yet)
	// a member at all.
	RoleObserver Role = iota
	RoleFollower
	RoleCandidate // includes the pre-vote phase
	RoleLeader
)

func (r Role) String() string {
	return [...]string{"observer", "follower", "candidate", "leader"}[r]
}

// Status is a member's view of the quorum, with what Kafka's DescribeQuorum reports.
// Log positions are raft indexes; Kafka's offsets are one less (the entry at index i has
// offset i-1), so an index is also Kafka's log end offset after that entry.
type Status struct {
	NodeID   uint64
	Role     Role
	LeaderID uint64 // 0 while there is no leader
	Term     uint64 // Kafka's leader epoch
	Vote     uint64
	// CommitIndex is the high watermark; AppliedIndex what the state machine has.
	CommitIndex   uint64
	AppliedIndex  uint64
	LastIndex     uint64 // this member's log end
	SnapshotIndex uint64 // of the newest local snapshot
	// Voters and Observers are the members in the applied configuration. Replication
	// details are known to the leader only; elsewhere they are zero.
	Voters    []Replica
	Observers []Replica
	// Err is the failure that stopped this member (storage, state machine), nil while it
	// participates.
	Err error
}

// Replica is one member as the leader sees it.
type Replica struct {
	ID   uint64
	Addr string
	// MatchIndex is its log end as acknowledged (Kafka's LogEndOffset).
	MatchIndex uint64
	// LastContact is when it last answered the leader (LastFetchTimestamp);
	// LastCaughtUp when its log last reached the leader's end (LastCaughtUpTimestamp,
	// by Kafka's rule: see noteContact).
	LastContact  time.Time
	LastCaughtUp time.Time
}

// status builds this member's Status.
func (c *core) status() Status {
	s := Status{NodeID: c.id, AppliedIndex: c.applied, SnapshotIndex: c.st.snapIndex, Err: c.err}
	s.LastIndex, _ = c.st.ms.LastIndex()
	voters, observers := members(c.conf)
	rs := c.rn.Status()
	s.LeaderID, s.Term, s.Vote, s.CommitIndex = rs.Lead, rs.GetTerm(), rs.GetVote(), rs.GetCommit()
	isVoter := false
	for _, id := range voters {
		isVoter = isVoter || id == c.id
	}
	switch {
	case rs.RaftState == raft.StateLeader:
		s.Role = RoleLeader
	case !isVoter:
		s.Role = RoleObserver
	case rs.RaftState == raft.StateFollower:
		s.Role = RoleFollower
	default:
		s.Role = RoleCandidate
	}
	replica := func(id uint64) Replica {
		r := Replica{ID: id, Addr: c.peers[id]}
		if s.Role != RoleLeader {
			return r
		}
		if id == c.id {
			r.MatchIndex, r.LastContact, r.LastCaughtUp = s.LastIndex, c.now, c.now
			return r
		}
		r.MatchIndex = rs.Progress[id].Match
		if ct := c.contacts[id]; ct != nil {
			r.LastContact, r.LastCaughtUp = ct.last, ct.caughtUp
		}
		return r
	}
	for _, id := range voters {
		s.Voters = append(s.Voters, replica(id))
	}
	for _, id := range observers {
		s.Observers = append(s.Observers, replica(id))
	}
	return s
}
