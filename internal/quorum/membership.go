// Membership changes, in Kafka KRaft's shape: voters (controllers) vote; observers
// (broker-only nodes) are raft learners, which replicate the log but never vote.
// KIP-853's AddRaftVoter is "promote an observer that has caught up"; RemoveRaftVoter
// removes a voter (or an observer). Each is one ConfChangeV2 of a single change, which
// raft applies without a joint configuration; one change at a time, as KIP-853 allows.
//
// The addresses of new members travel in the change's context (an address list, see
// snapformat.go), so every member learns them from the log, and from snapshots after it.
package quorum

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

type confChangeKind int

const (
	addObserver confChangeKind = iota
	promoteToVoter
	removeNode
)

func (k confChangeKind) String() string {
	return [...]string{"add observer", "promote to voter", "remove node"}[k]
}

// confChangeOp is a membership change requested through the API.
type confChangeOp struct {
	kind confChangeKind
	id   uint64
	addr string // addObserver
}

// confChange checks op against the current configuration, as KIP-853 does, and returns
// the change to propose.
func (c *core) confChange(op *confChangeOp) (*raftpb.ConfChangeV2, error) {
	cfg := c.rn.Status().Config
	if len(cfg.Voters[1]) > 0 || c.lastConfIndex > c.applied {
		return nil, ErrConfChangeInProgress
	}
	if c.leaderStart == 0 || c.applied < c.leaderStart {
		return nil, fmt.Errorf("%w: the leader has not committed an entry of its term yet", ErrConfChangeInProgress)
	}
	_, voter := cfg.Voters[0][op.id]
	_, learner := cfg.Learners[op.id]
	var typ raftpb.ConfChangeType
	var ctx []byte
	switch op.kind {
	case addObserver:
		switch {
		case voter:
			return nil, fmt.Errorf("%w: %w: node %d", ErrAlreadyMember, ErrDuplicateVoter, op.id)
		case learner:
			return nil, fmt.Errorf("%w: node %d is an observer", ErrAlreadyMember, op.id)
		case op.id == 0 || op.id == raft.LocalAppendThread || op.id == raft.LocalApplyThread:
			return nil, fmt.Errorf("%w: %d is not a node id", ErrVoterNotFound, op.id)
		}
		peers := map[uint64]string{op.id: op.addr}
		if err := checkPeers(peers); err != nil {
			return nil, err
		}
		typ, ctx = raftpb.ConfChangeAddLearnerNode, encodePeers(peers)
	case promoteToVoter:
		switch {
		case voter:
			return nil, fmt.Errorf("%w: node %d", ErrDuplicateVoter, op.id)
		case !learner:
			return nil, fmt.Errorf("%w: node %d is not an observer (add it first)", ErrVoterNotFound, op.id)
		}
		// KIP-853: only an observer that has caught up is promoted, so it does not hold
		// back commits the moment it counts towards the majority.
		ct := c.contacts[op.id]
		if ct == nil || ct.caughtUp.IsZero() || c.now.Sub(ct.caughtUp) > 2*c.cfg.electionTimeout() {
			return nil, fmt.Errorf("%w: node %d", ErrNotCaughtUp, op.id)
		}
		typ = raftpb.ConfChangeAddNode
	case removeNode:
		switch {
		case !voter && !learner:
			return nil, fmt.Errorf("%w: node %d", ErrVoterNotFound, op.id)
		case voter && len(cfg.Voters[0]) == 1:
			return nil, fmt.Errorf("%w: node %d", ErrLastVoter, op.id)
		case op.id == c.id:
			// A leader that removed itself would stop before the others learn that the
			// removal committed, and raft applies a configuration only once committed:
			// a remaining voter could wait forever for the removed one's vote. So the
			// leader hands over first, and the new leader removes it.
			return nil, c.handOver()
		}
		typ = raftpb.ConfChangeRemoveNode
	}
	return &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(op.id)}},
		Context: ctx,
	}, nil
}

// handOver transfers leadership to the remaining voter whose log is longest and returns
// the NotLeaderError that sends the caller there.
func (c *core) handOver() error {
	st := c.rn.Status()
	var to, match uint64
	for id := range st.Config.Voters.IDs() {
		if pr, ok := st.Progress[id]; ok && id != c.id && (to == 0 || pr.Match > match || pr.Match == match && id < to) {
			to, match = id, pr.Match
		}
	}
	if to == 0 {
		return fmt.Errorf("%w: node %d", ErrLastVoter, c.id)
	}
	if st.LeadTransferee != to {
		c.log.Info("metadata log: handing leadership over before this node leaves the voters", "to", to)
		c.rn.TransferLeader(to)
		c.dirty = true
	}
	return &NotLeaderError{LeaderID: to}
}

// applyConfChange applies a committed membership change to raft and the address book.
func (c *core) applyConfChange(e *raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	if e.GetType() == raftpb.EntryConfChange {
		v1 := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), v1); err != nil {
			return fmt.Errorf("decode membership change at %d: %w", e.GetIndex(), err)
		}
		cc = v1
	} else {
		v2 := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), v2); err != nil {
			return fmt.Errorf("decode membership change at %d: %w", e.GetIndex(), err)
		}
		cc = v2
	}
	v2 := cc.AsV2()
	if len(v2.GetContext()) > 0 {
		peers, err := decodePeers(v2.GetContext())
		if err != nil {
			return fmt.Errorf("membership change at %d: %w", e.GetIndex(), err)
		}
		for id, a := range peers {
			c.setPeer(id, a)
		}
	}
	c.conf = c.rn.ApplyConfChange(cc)
	c.stats.confChanges++
	voters, _ := members(c.conf)
	c.selfVoter = slices.Contains(voters, c.id)
	for _, ch := range v2.GetChanges() {
		id := ch.GetNodeId()
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			c.forceSnap = true
		case raftpb.ConfChangeRemoveNode:
			if _, configured := c.cfg.Voters[id]; !configured && id != c.id {
				delete(c.peers, id)
				c.tr.RemovePeer(id)
			}
			delete(c.contacts, id)
			if id == c.id {
				c.log.Info("metadata log: this node was removed from the quorum", "index", e.GetIndex())
			}
		}
	}
	c.log.Info("metadata log: membership changed", "index", e.GetIndex(), "change", raft.DescribeConfChange(v2),
		"voters", c.conf.GetVoters(), "observers", c.conf.GetLearners())
	return nil
}

// members returns the current voters and observers (learners), each sorted.
func members(cs *raftpb.ConfState) (voters, observers []uint64) {
	voters = append(slices.Clone(cs.GetVoters()), cs.GetVotersOutgoing()...)
	slices.Sort(voters)
	voters = slices.Compact(voters)
	observers = append(slices.Clone(cs.GetLearners()), cs.GetLearnersNext()...)
	slices.Sort(observers)
	return voters, slices.Compact(observers)
}
