package controller

// A fake of the quorum's replicated log shared by several nodes, as harsh as raft is to
// its leader: only the leader's proposals are taken; entries commit in order, on every
// node's state machine, at once or when the test says; a leadership change fails the old
// leader's uncommitted proposals (NotLeaderError, Lost) and drops them, as a new leader
// truncates what it never had; a proposal can be made to fail.

import (
	"context"
	"sync"
	"testing"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

type fakeProposal struct {
	from, term uint64
	data       []byte
	done       chan fakeResult
}

type fakeResult struct {
	index uint64
	err   error
}

type sharedLog struct {
	t       *testing.T
	mu      sync.Mutex
	leader  quorum.LeaderInfo
	changed chan struct{}
	index   uint64
	sms     map[uint64]*metadata.StateMachine
	manual  bool
	pending []*fakeProposal
	fail    error // the next proposal fails with it
	// Membership and status, for the raft APIs.
	status  quorum.Status
	calls   []string
	confErr map[string][]error // errors to return, in order, per call name
	// stale holds nodes whose view of the leadership lags: their Leader() keeps
	// answering what it was when they went stale.
	stale map[uint64]staleView
}

type staleView struct {
	leader  quorum.LeaderInfo
	changed chan struct{}
}

// freezeView makes node id's view of the leadership stop following the log's.
func (s *sharedLog) freezeView(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale[id] = staleView{leader: s.leader, changed: make(chan struct{})}
}

func newSharedLog(t *testing.T, nodes ...uint64) *sharedLog {
	s := &sharedLog{t: t, changed: make(chan struct{}), sms: map[uint64]*metadata.StateMachine{}, confErr: map[string][]error{},
		stale: map[uint64]staleView{}}
	for _, n := range nodes {
		s.sms[n] = metadata.NewStateMachine(nil, testLogger(t))
	}
	return s
}

// node returns node id's view of the log.
func (s *sharedLog) node(id uint64) *nodeLog { return &nodeLog{s: s, id: id} }

func (s *sharedLog) setLeader(id, term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pending {
		p.done <- fakeResult{err: &quorum.NotLeaderError{LeaderID: id, Lost: true}}
	}
	s.pending = nil
	s.leader = quorum.LeaderInfo{LeaderID: id, Term: term}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *sharedLog) setManual(m bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manual = m
}

// appendLocked commits data on every node.
func (s *sharedLog) appendLocked(term uint64, data []byte) uint64 {
	s.index++
	for _, sm := range s.sms {
		if err := sm.Apply(s.index, term, data); err != nil {
			s.t.Errorf("apply entry %d: %v", s.index, err)
		}
	}
	return s.index
}

// commit commits the first n pending proposals.
func (s *sharedLog) commit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pending[:n] {
		p.done <- fakeResult{index: s.appendLocked(p.term, p.data)}
	}
	s.pending = s.pending[n:]
}

func (s *sharedLog) numPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *sharedLog) refused() int64 {
	var n int64
	for _, sm := range s.sms {
		n += sm.Refused()
	}
	return n
}

type nodeLog struct {
	s  *sharedLog
	id uint64
}

func (n *nodeLog) Propose(ctx context.Context, data []byte) (uint64, error) {
	s := n.s
	s.mu.Lock()
	if s.leader.LeaderID != n.id {
		defer s.mu.Unlock()
		return 0, &quorum.NotLeaderError{LeaderID: s.leader.LeaderID}
	}
	if err := s.fail; err != nil {
		s.fail = nil
		s.mu.Unlock()
		return 0, err
	}
	if !s.manual {
		defer s.mu.Unlock()
		return s.appendLocked(s.leader.Term, data), nil
	}
	p := &fakeProposal{from: n.id, term: s.leader.Term, data: data, done: make(chan fakeResult, 1)}
	s.pending = append(s.pending, p)
	s.mu.Unlock()
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (n *nodeLog) Leader() (quorum.LeaderInfo, <-chan struct{}) {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	if v, ok := n.s.stale[n.id]; ok {
		return v.leader, v.changed
	}
	return n.s.leader, n.s.changed
}

func (n *nodeLog) Status(context.Context) (quorum.Status, error) {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	st := n.s.status
	st.NodeID = n.id
	if n.s.leader.LeaderID == n.id {
		st.Role = quorum.RoleLeader
	}
	st.LeaderID, st.Term = n.s.leader.LeaderID, n.s.leader.Term
	return st, nil
}

func (n *nodeLog) conf(name string) error {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	n.s.calls = append(n.s.calls, name)
	if errs := n.s.confErr[name]; len(errs) > 0 {
		n.s.confErr[name] = errs[1:]
		return errs[0]
	}
	return nil
}

func (n *nodeLog) AddObserver(_ context.Context, id uint64, addr string) error {
	return n.conf("add " + addr)
}
func (n *nodeLog) PromoteToVoter(_ context.Context, id uint64) error { return n.conf("promote") }
func (n *nodeLog) RemoveNode(_ context.Context, id uint64) error     { return n.conf("remove") }
