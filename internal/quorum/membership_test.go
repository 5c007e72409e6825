package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// ackFrom answers the leader as follower id that has everything the leader has.
func ackFrom(m *testMember, id uint64) {
	m.c.step(&raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: new(id), To: new(uint64(1)),
		Term: new(m.c.leader.Term), Index: new(m.c.lastIndex)})
	m.c.process()
}

func TestMembershipChangesFollowKIP853(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1)), vfs.NewMem(), nil)
	m.electAlone(t)
	m.c.process()

	check := func(what string, o *outcome, want error) {
		t.Helper()
		m.c.process()
		if !o.done || !errors.Is(o.err, want) {
			t.Fatalf("%s: %+v, want %v", what, o, want)
		}
	}
	check("remove the only voter", m.proposeConf(confChangeOp{kind: removeNode, id: 1}), ErrLastVoter)
	check("remove an unknown node", m.proposeConf(confChangeOp{kind: removeNode, id: 9}), ErrVoterNotFound)
	check("promote a node that is no observer", m.proposeConf(confChangeOp{kind: promoteToVoter, id: 2}), ErrVoterNotFound)
	check("add a voter as an observer", m.proposeConf(confChangeOp{kind: addObserver, id: 1, addr: "x:1"}), ErrDuplicateVoter)

	add := m.proposeConf(confChangeOp{kind: addObserver, id: 2, addr: "node2:9093"})
	m.c.process()
	if !add.done || add.err != nil {
		t.Fatalf("add observer 2: %+v", add)
	}
	if _, obs := members(m.c.conf); !slices.Equal(obs, []uint64{2}) || m.tr.peers[2] != "node2:9093" {
		t.Fatalf("observers %v, transport peers %v", obs, m.tr.peers)
	}
	// Raft refuses a snapshot whose ConfState lacks its receiver: adding a member takes one.
	if m.c.st.snapIndex != m.c.applied {
		t.Fatalf("no snapshot after adding a member: snapshot %d, applied %d", m.c.st.snapIndex, m.c.applied)
	}
	check("add it again", m.proposeConf(confChangeOp{kind: addObserver, id: 2, addr: "node2:9093"}), ErrAlreadyMember)
	check("promote before it caught up", m.proposeConf(confChangeOp{kind: promoteToVoter, id: 2}), ErrNotCaughtUp)

	ackFrom(m, 2)
	promote := m.proposeConf(confChangeOp{kind: promoteToVoter, id: 2})
	if inProgress := m.proposeConf(confChangeOp{kind: addObserver, id: 3, addr: "node3:9093"}); !errors.Is(inProgress.err, ErrConfChangeInProgress) {
		t.Fatalf("a change while another is in progress: %+v", inProgress)
	}
	m.c.process()
	if !promote.done || promote.err != nil {
		t.Fatalf("promote 2: %+v", promote)
	}
	if vs, _ := members(m.c.conf); !slices.Equal(vs, []uint64{1, 2}) {
		t.Fatalf("voters %v after promoting 2", vs)
	}
	// With two voters, a change commits only once 2 acknowledges it.
	rm := m.proposeConf(confChangeOp{kind: removeNode, id: 2})
	m.c.process()
	if rm.done {
		t.Fatalf("removal committed without the second voter: %+v", rm)
	}
	ackFrom(m, 2)
	if !rm.done || rm.err != nil {
		t.Fatalf("remove 2: %+v", rm)
	}
	if vs, obs := members(m.c.conf); !slices.Equal(vs, []uint64{1}) || len(obs) != 0 || !slices.Contains(m.tr.removed, 2) {
		t.Fatalf("voters %v observers %v removed %v", vs, obs, m.tr.removed)
	}
	// The log holds the changes: a restart ends with the same configuration and addresses.
	m2 := openMember(t, testConfig(1, voters(1)), m.mem.Crash(), nil)
	m2.electAlone(t)
	if vs, obs := members(m2.c.conf); !slices.Equal(vs, []uint64{1}) || len(obs) != 0 {
		t.Fatalf("after restart voters %v observers %v", vs, obs)
	}
}

func TestNewLeaderRefusesChangesUntilItsTermCommits(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	becomeLeader(t, m)
	o := m.proposeConf(confChangeOp{kind: addObserver, id: 4, addr: "node4:9093"})
	if !errors.Is(o.err, ErrConfChangeInProgress) {
		t.Fatalf("change before the leader's first entry committed: %+v", o)
	}
	ackAppends(m, 2)
	o = m.proposeConf(confChangeOp{kind: addObserver, id: 4, addr: "node4:9093"})
	m.c.process()
	if o.done {
		t.Fatalf("change finished before a majority had it: %+v", o)
	}
	ackAppends(m, 2)
	if !o.done || o.err != nil {
		t.Fatalf("change after the leader's term committed: %+v", o)
	}
}

// TestObserverCatchesUpFromASnapshot: a node that starts empty gets the leader's snapshot
// (MsgSnap), makes it durable before acknowledging it, restores its state machine from
// it, and after a crash opens from it.
func TestObserverCatchesUpFromASnapshot(t *testing.T) {
	leaderSM := &listSM{}
	for i := uint64(2); i <= 9; i++ {
		leaderSM.Apply(i, 2, fmt.Appendf(nil, "v%d", i))
	}
	state, _, _ := leaderSM.Snapshot()
	peers := voters(1, 2, 3)
	peers[4] = "node4:9093"
	snap := &raftpb.Snapshot{Data: encodeSnapshotData(peers, state), Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(10)), Term: new(uint64(2)),
		ConfState: raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}})}}

	cfg := testConfig(4, voters(1, 2, 3))
	cfg.Observer = true
	mem := vfs.NewMem()
	m := openMember(t, cfg, mem, nil)
	if st := m.c.status(); st.Role != RoleObserver || len(st.Voters) != 0 {
		t.Fatalf("a new observer's status: %+v", st)
	}
	m.c.step(&raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(uint64(1)), To: new(uint64(4)), Term: new(uint64(2)), Snapshot: snap})
	m.c.process()
	resp := m.tr.takeType(raftpb.MsgAppResp)
	if len(resp) != 1 || resp[0].GetIndex() != 10 || resp[0].GetReject() {
		t.Fatalf("acknowledgement of the snapshot: %v", resp)
	}
	if got := m.sm.snapshotEntries(); len(got) != 8 || got[7] != (smEntry{9, "v9"}) || m.sm.last != 10 {
		t.Fatalf("restored state %v (last %d)", got, m.sm.last)
	}
	// It was durable before it was acknowledged: a crash now keeps it.
	m2 := openMember(t, cfg, mem.Crash(), nil)
	if got := m2.sm.snapshotEntries(); len(got) != 8 || m2.c.applied != 10 {
		t.Fatalf("after a crash: %v applied %d", got, m2.c.applied)
	}
	if st := m2.c.status(); st.Role != RoleObserver || len(st.Voters) != 3 || len(st.Observers) != 1 || st.Observers[0].Addr != "node4:9093" {
		t.Fatalf("status after restart: %+v", st)
	}
}

// TestStatusReportsReplication: the leader reports each member's match index and the
// times of its last contact and last catching up, as DescribeQuorum needs.
func TestStatusReportsReplication(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	becomeLeader(t, m)
	m.c.now = epoch.Add(time.Minute)
	ackAppends(m, 2)
	st := m.c.status()
	if st.Role != RoleLeader || st.LeaderID != 1 || st.CommitIndex != st.LastIndex || len(st.Voters) != 3 {
		t.Fatalf("status %+v", st)
	}
	byID := map[uint64]Replica{}
	for _, r := range st.Voters {
		byID[r.ID] = r
	}
	if r := byID[2]; r.MatchIndex != st.LastIndex || !r.LastContact.Equal(m.c.now) || !r.LastCaughtUp.Equal(m.c.now) || r.Addr != "node2:9093" {
		t.Fatalf("follower 2: %+v", r)
	}
	if r := byID[3]; r.MatchIndex != 0 || !r.LastContact.IsZero() {
		t.Fatalf("silent follower 3: %+v", r)
	}
}

// TestLeaderLeavesOnlyAfterHandingOver: raft applies a configuration once committed, so
// a leader that left the voters at once could leave the others waiting for its vote
// (they may not have learnt the removal committed). Asked to remove itself, the leader
// hands over and sends the caller to the new leader; removed by an entry that commits
// under it, it keeps leading until it has handed over.
func TestLeaderLeavesOnlyAfterHandingOver(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2)), vfs.NewMem(), nil)
	becomeLeader(t, m)
	ackFrom(m, 2)
	m.tr.take()

	o := m.proposeConf(confChangeOp{kind: removeNode, id: 1})
	var nl *NotLeaderError
	if !errors.As(o.err, &nl) || nl.LeaderID != 2 {
		t.Fatalf("leader asked to remove itself: %+v", o)
	}
	m.c.process()
	if tn := m.tr.takeType(raftpb.MsgTimeoutNow); len(tn) != 1 || tn[0].GetTo() != 2 {
		t.Fatalf("no hand-over to 2: %v", m.tr.sent)
	}

	// Now the removal arrives as an entry proposed by an earlier leader, committing here.
	m2 := openMember(t, testConfig(1, voters(1, 2)), vfs.NewMem(), nil)
	becomeLeader(t, m2)
	ackFrom(m2, 2)
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(1))}}}
	if err := m2.c.rn.ProposeConfChange(cc); err != nil {
		t.Fatal(err)
	}
	m2.c.process()
	ackFrom(m2, 2)
	if vs, _ := members(m2.c.conf); !slices.Equal(vs, []uint64{2}) {
		t.Fatalf("voters %v after the removal applied", vs)
	}
	if m2.c.state != raft.StateLeader {
		t.Fatal("the removed leader stepped down before handing over")
	}
	m2.tr.take()
	m2.c.tick()
	m2.c.process()
	if tn := m2.tr.takeType(raftpb.MsgTimeoutNow); len(tn) != 1 || tn[0].GetTo() != 2 {
		t.Fatalf("the removed leader does not hand over to 2: %v", m2.tr.sent)
	}
	if p := m2.propose("x"); !p.done || p.err == nil {
		t.Fatalf("a removed leader accepted a proposal: %+v", p)
	}
}

// TestLoneVoterCampaignsOnlyWithItsCurrentConfiguration: a member that crashed after a
// promotion committed but before the snapshot that follows it reopens with the snapshot's
// configuration (itself alone); the promotion is applied again from the WAL. It must not
// take the shortcut of a lone voter (leading at once) on the stale configuration (raft
// also refuses to campaign while committed changes are unapplied).
func TestLoneVoterCampaignsOnlyWithItsCurrentConfiguration(t *testing.T) {
	mem := vfs.NewMem()
	failSnap := false
	efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
		if failSnap && op.Kind == vfs.OpRename && strings.HasSuffix(op.Path, snapSuffix+tmpSuffix) {
			return vfs.ErrInjected
		}
		return nil
	}))
	m := openMember(t, testConfig(1, voters(1)), mem, efs)
	m.electAlone(t)
	o := m.proposeConf(confChangeOp{kind: addObserver, id: 2, addr: "node2:9093"})
	m.c.process()
	if !o.done || o.err != nil {
		t.Fatalf("add observer: %+v", o)
	}
	ackFrom(m, 2)
	failSnap = true // the snapshot after the promotion fails: the member stops there
	m.proposeConf(confChangeOp{kind: promoteToVoter, id: 2})
	m.c.process()
	if !errors.Is(m.c.err, ErrStorage) {
		t.Fatalf("the snapshot after the promotion did not fail: %v", m.c.err)
	}
	m2 := openMember(t, testConfig(1, voters(1)), mem.Crash(), nil)
	m2.c.process()
	if vs, _ := members(m2.c.conf); !slices.Equal(vs, []uint64{1, 2}) {
		t.Fatalf("voters after reopening %v, want [1 2]", vs)
	}
	if m2.c.state == raft.StateLeader || m2.c.state == raft.StateCandidate {
		t.Fatalf("reopened as %v without node 2's vote", m2.c.state)
	}
}
