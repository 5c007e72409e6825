package quorum

// The raft glue tested in etcd raft's conventions: messages are stepped into a member by
// hand, each Ready is handled (process), and what the member wrote, sent and applied is
// checked. No sockets, no goroutines, no sleeps; time is the ticks given.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

type testMember struct {
	c   *core
	sm  *listSM
	tr  *recTransport
	fs  vfs.FS
	mem *vfs.MemFS
}

func openMember(t *testing.T, cfg Config, mem *vfs.MemFS, fsys vfs.FS) *testMember {
	t.Helper()
	if fsys == nil {
		fsys = mem
	}
	m := &testMember{sm: &listSM{}, tr: &recTransport{}, fs: fsys, mem: mem}
	c, err := newCore(cfg, fsys, "/data", m.sm, m.tr, epoch, newTestLogger(t, nil))
	if err != nil {
		t.Fatalf("open member %d: %v", cfg.NodeID, err)
	}
	m.c = c
	return m
}

// electAlone ticks a single-voter member until it leads.
func (m *testMember) electAlone(t *testing.T) {
	t.Helper()
	for i := 0; i < 100 && m.c.state != raft.StateLeader; i++ {
		m.c.tick()
		m.c.process()
	}
	if m.c.state != raft.StateLeader {
		t.Fatalf("member %d did not become leader", m.c.id)
	}
}

type outcome struct {
	index uint64
	err   error
	done  bool
}

func (m *testMember) propose(data string) *outcome {
	o := &outcome{}
	m.c.propose(&proposal{data: []byte(data), done: func(i uint64, err error) { o.index, o.err, o.done = i, err, true }})
	return o
}

func (m *testMember) proposeConf(op confChangeOp) *outcome {
	o := &outcome{}
	m.c.propose(&proposal{cc: &op, done: func(i uint64, err error) { o.index, o.err, o.done = i, err, true }})
	return o
}

func TestSingleVoterProposeCommitsAndApplies(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1)), vfs.NewMem(), nil)
	m.electAlone(t)
	a, b := m.propose("a"), m.propose("b")
	if a.done || b.done {
		t.Fatalf("proposals finished before their Ready was handled: %+v %+v", a, b)
	}
	m.c.process()
	if !a.done || a.err != nil || !b.done || b.err != nil || b.index != a.index+1 {
		t.Fatalf("outcomes %+v %+v", a, b)
	}
	got := m.sm.snapshotEntries()
	if len(got) != 2 || got[0] != (smEntry{a.index, "a"}) || got[1] != (smEntry{b.index, "b"}) {
		t.Fatalf("applied %v", got)
	}
	// Reopened from what a crash keeps, the member applies the same entries again.
	// The commit index moved by a Ready that needs no fsync may be lost, so the member
	// commits them again once it leads.
	m2 := openMember(t, testConfig(1, voters(1)), m.mem.Crash(), nil)
	m2.electAlone(t)
	if got2 := m2.sm.snapshotEntries(); fmt.Sprint(got2) != fmt.Sprint(got) {
		t.Fatalf("after restart applied %v, want %v", got2, got)
	}
}

func TestProposeOnFollowerIsNotLeader(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	m.c.step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2))})
	m.c.process()
	o := m.propose("x")
	var nl *NotLeaderError
	if !errors.As(o.err, &nl) || nl.LeaderID != 2 || !errors.Is(o.err, ErrNotLeader) {
		t.Fatalf("propose on a follower: %v", o.err)
	}
}

// becomeLeader makes member 1 leader by stepping the votes of member 2 (a majority of
// {1,2} or {1,2,3}).
func becomeLeader(t *testing.T, m *testMember) {
	t.Helper()
	for i := 0; i < 100 && len(m.tr.sent) == 0; i++ {
		m.c.tick()
		m.c.process()
	}
	pre := m.tr.takeType(raftpb.MsgPreVote)
	if len(pre) == 0 {
		t.Fatalf("no pre-vote sent: %v", m.tr.sent)
	}
	m.c.step(&raftpb.Message{Type: raftpb.MsgPreVoteResp.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(pre[0].GetTerm())})
	m.c.process()
	vote := m.tr.takeType(raftpb.MsgVote)
	if len(vote) == 0 {
		t.Fatalf("no vote requested: %v", m.tr.sent)
	}
	m.c.step(&raftpb.Message{Type: raftpb.MsgVoteResp.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(vote[0].GetTerm())})
	m.c.process()
	if m.c.state != raft.StateLeader {
		t.Fatalf("not leader after a majority of votes")
	}
	m.tr.sent = m.tr.takeType(raftpb.MsgApp) // the new leader's empty entry
}

// ackAppends answers every MsgApp sent so far as follower id would once it persisted them.
func ackAppends(m *testMember, id uint64) {
	for _, msg := range m.tr.takeType(raftpb.MsgApp) {
		if msg.GetTo() != id {
			continue
		}
		last := msg.GetIndex() + uint64(len(msg.GetEntries()))
		m.c.step(&raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: new(id), To: new(uint64(1)), Term: new(msg.GetTerm()), Index: new(last)})
	}
	m.c.process()
}

func TestLeaderCommitsOnlyWithAMajority(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	becomeLeader(t, m)
	ackAppends(m, 2) // the new leader's empty entry
	o := m.propose("x")
	m.c.process()
	if o.done {
		t.Fatalf("proposal finished before any follower acknowledged it: %+v", o)
	}
	ackAppends(m, 2)
	if !o.done || o.err != nil {
		t.Fatalf("proposal after a majority acknowledged it: %+v", o)
	}
}

func TestLeaderStepsDownFailsWaitingProposals(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	becomeLeader(t, m)
	o := m.propose("x")
	m.c.process()
	term := m.c.leader.Term
	// A leader of a later term appears.
	m.c.step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(3)), To: new(uint64(1)), Term: new(term + 1)})
	m.c.process()
	var nl *NotLeaderError
	if !o.done || !errors.As(o.err, &nl) || !nl.Lost || nl.LeaderID != 3 {
		t.Fatalf("waiting proposal after losing leadership: %+v", o)
	}
}

// TestEntriesDurableBeforeMessagesSent checks the order of a follower's Ready: the
// appended entries are written and fsynced before the acknowledgement is sent.
func TestEntriesDurableBeforeMessagesSent(t *testing.T) {
	var events []string
	mem := vfs.NewMem()
	efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
		if op.Kind == vfs.OpWrite || op.Kind == vfs.OpSync {
			events = append(events, op.Kind.String()+" "+op.Path[strings.LastIndex(op.Path, "/")+1:])
		}
		return nil
	}))
	m := openMember(t, testConfig(1, voters(1, 2, 3)), mem, efs)
	m.tr.events = &events
	events = nil
	m.c.step(&raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2)),
		Index: new(uint64(1)), LogTerm: new(uint64(1)), Commit: new(uint64(1)),
		Entries: []*raftpb.Entry{{Index: new(uint64(2)), Term: new(uint64(2)), Data: []byte("e2")}}})
	m.c.process()
	want := []string{"write 00000000000000000001.wal", "sync 00000000000000000001.wal", "send MsgAppResp to 2"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
}

// TestFailedSyncStopsTheMember: the first failed fsync poisons the storage; nothing is
// acknowledged, waiting proposals get the error, and the member stops stepping raft.
func TestFailedSyncStopsTheMember(t *testing.T) {
	mem := vfs.NewMem()
	failing := false
	efs := vfs.WithErrors(mem, vfs.InjectorFunc(func(op vfs.Op) error {
		if failing && op.Kind == vfs.OpSync {
			return vfs.ErrInjected
		}
		return nil
	}))
	m := openMember(t, testConfig(1, voters(1, 2, 3)), mem, efs)
	becomeLeader(t, m)
	ackAppends(m, 2)
	m.tr.take()
	failing = true
	o := m.propose("x")
	m.c.process()
	if !o.done || !errors.Is(o.err, ErrStorage) || !errors.Is(o.err, vfs.ErrInjected) {
		t.Fatalf("proposal when the fsync fails: %+v", o)
	}
	if len(m.tr.takeType(raftpb.MsgApp)) != 0 {
		t.Fatal("entries were sent although their fsync failed")
	}
	failing = false
	if o2 := m.propose("y"); !errors.Is(o2.err, ErrStorage) {
		t.Fatalf("a later proposal is not answered with the storage error: %+v", o2)
	}
	m.c.tick()
	m.c.step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(9))})
	m.c.process()
	if len(m.tr.sent) != 0 || m.c.status().Err == nil {
		t.Fatalf("a failed member still participates: sent %v", m.tr.sent)
	}
}

// TestNewLeaderReportsItsPredecessorsSilence: a member that wins an election tells who
// led before it and how long it had heard nothing from that member; the controller
// starts the session of the broker in the silent process from then.
func TestNewLeaderReportsItsPredecessorsSilence(t *testing.T) {
	m := openMember(t, testConfig(1, voters(1, 2, 3)), vfs.NewMem(), nil)
	var got []LeaderInfo
	m.c.onLeader = func(li LeaderInfo) { got = append(got, li) }
	heartbeat := func(at time.Duration) {
		m.c.now = epoch.Add(at)
		m.c.step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(3)), To: new(uint64(1)), Term: new(uint64(2))})
		m.c.process()
	}
	heartbeat(0)
	heartbeat(time.Second)
	if len(got) != 1 || got[0] != (LeaderInfo{LeaderID: 3, Term: 2}) {
		t.Fatalf("a follower's leader: %+v, want member 3 in term 2 and no predecessor", got)
	}
	m.c.now = epoch.Add(3500 * time.Millisecond)
	m.tr.take() // the heartbeat responses
	becomeLeader(t, m)
	li := got[len(got)-1]
	if li.LeaderID != 1 || li.Predecessor != 3 || li.PredecessorSilence != 2500*time.Millisecond {
		t.Fatalf("the new leader's info: %+v, want leader 1, predecessor 3 silent for 2.5s", li)
	}
}
