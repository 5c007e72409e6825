package quorum

// The simulation's invariants and its healing phase.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.etcd.io/raft/v3"
)

// check runs after every step: no two leaders in one term; every entry a member applied
// is the entry every other member applied at that index; every acknowledged proposal is
// the entry applied at its index.
func (s *sim) check() {
	for _, n := range s.nodes {
		if !n.up() {
			continue
		}
		if n.c.state == raft.StateLeader {
			term := n.c.leader.Term
			if l, ok := s.leaders[term]; ok && l != n.id {
				s.fatalf("two leaders in term %d: nodes %d and %d", term, l, n.id)
			} else if !ok {
				s.leaders[term] = n.id
				s.tracef("node %d leads term %d (log %d, commit %d)", n.id, term, n.c.lastIndex, n.c.st.hs.GetCommit())
			}
		}
		s.checkApplied(n)
	}
	for _, a := range s.acked[s.ackSeen:] {
		if d := s.global[a.index]; d != a.data {
			s.fatalf("proposal %q succeeded at index %d, but %q was applied there", a.data, a.index, d)
		}
	}
	s.ackSeen = len(s.acked)
	if s.step%simCheckEvery == 0 {
		s.checkPrefixes()
	}
}

// checkApplied adds what a member applied since the last check to the one sequence,
// failing if it differs from what another member applied at the same index.
func (s *sim) checkApplied(n *simNode) {
	if n.sm.restores != n.seenRestores {
		n.checked, n.seenRestores = 0, n.sm.restores
	}
	for _, e := range n.sm.entries[n.checked:] {
		if d, ok := s.global[e.index]; !ok {
			s.global[e.index] = e.data
		} else if d != e.data {
			s.fatalf("node %d applied %q at index %d where another member applied %q", n.id, e.data, e.index, d)
		}
	}
	n.checked = len(n.sm.entries)
}

// checkPrefixes checks every member's applied entries are a prefix of the one sequence
// (none skipped).
func (s *sim) checkPrefixes() {
	idx := slices.Sorted(maps.Keys(s.global))
	for _, n := range s.nodes {
		if !n.up() {
			continue
		}
		for i, e := range n.sm.entries {
			if i >= len(idx) || idx[i] != e.index {
				want := "nothing"
				if i < len(idx) {
					want = fmt.Sprint(idx[i])
				}
				s.fatalf("node %d applied index %d as its entry #%d; the sequence has %s there", n.id, e.index, i, want)
			}
		}
	}
}

// heal stops the faults, restarts every member, lets proposals run a little longer and
// then waits until every member of the final configuration has applied what the leader
// committed.
func (s *sim) heal() {
	s.faults = false
	s.group = nil
	for _, n := range s.nodes {
		if !n.up() && !n.gone {
			n.downUntil = s.step + 1
		}
	}
	s.healStart = s.step
	s.tracef("faults stop")
	for range simHealSteps {
		s.runStep()
		if s.t.Failed() {
			return
		}
		if s.step > s.healStart+simProposeAfterHeal && s.converged() {
			s.finalChecks()
			for _, n := range s.nodes {
				if n.up() {
					s.collect(n)
				}
			}
			return
		}
	}
	var b strings.Builder
	for _, n := range s.nodes {
		if n.up() {
			st := n.c.status()
			fmt.Fprintf(&b, "\n  node %d: %v term %d leader %d commit %d applied %d last %d voters %v observers %v",
				n.id, st.Role, st.Term, st.LeaderID, st.CommitIndex, st.AppliedIndex, st.LastIndex, n.c.conf.GetVoters(), n.c.conf.GetLearners())
		}
	}
	s.fatalf("no convergence %d steps after the faults stopped:%s", simHealSteps, b.String())
}

// converged: a leader whose log is all applied, and every member of its configuration
// has applied the same.
func (s *sim) converged() bool {
	l := s.leader()
	if l == nil || l.c.rn.BasicStatus().GetCommit() != l.c.applied {
		return false
	}
	voters, observers := members(l.c.conf)
	for _, id := range append(voters, observers...) {
		n := s.byID[id]
		if !n.up() || n.c.applied != l.c.applied {
			return false
		}
	}
	return true
}

// finalChecks: every member of the final configuration holds the leader's entries, and
// every proposal that succeeded is among them.
func (s *sim) finalChecks() {
	s.checkPrefixes()
	l := s.leader()
	want := l.sm.entries
	voters, observers := members(l.c.conf)
	for _, id := range append(voters, observers...) {
		n := s.byID[id]
		if !slices.Equal(n.sm.entries, want) {
			s.fatalf("node %d applied %d entries, the leader %d applied %d, and they differ", id, len(n.sm.entries), l.id, len(want))
		}
	}
	at := make(map[uint64]string, len(want))
	for _, e := range want {
		at[e.index] = e.data
	}
	for _, a := range s.acked {
		if at[a.index] != a.data {
			s.fatalf("proposal %q succeeded at index %d but is not in the final log (%q there)", a.data, a.index, at[a.index])
		}
	}
	s.tracef("converged: %d entries applied, %d proposals acknowledged, voters %v observers %v", len(want), len(s.acked), voters, observers)
}
