package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// testImage builds an image step by step for the pure-function tests.
type testImage struct {
	t  *testing.T
	im *metadata.Image
}

func newTestImage(t *testing.T) *testImage {
	ti := &testImage{t: t, im: metadata.Empty()}
	ti.apply(&metadata.ClusterIDRecord{ID: "test-cluster"})
	return ti
}

func (ti *testImage) apply(rs ...metadata.Record) {
	ti.t.Helper()
	off := ti.im.Offset()
	im, _, err := ti.im.Apply(metadata.Offset{Index: off.Index + 1, Term: max(off.Term, 1)}, rs)
	if err != nil {
		ti.t.Fatal(err)
	}
	ti.im = im
}

// broker registers broker id; state is "active", "fenced" or "shutdown".
func (ti *testImage) broker(id int32, rack, state string) {
	ti.t.Helper()
	ti.apply(&metadata.RegisterBrokerRecord{BrokerID: id, IncarnationID: uuid.New(), BrokerEpoch: int64(ti.im.Offset().Index + 1),
		Rack: rack, Fenced: state == "fenced", InControlledShutdown: state == "shutdown",
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "h", Port: 9092}}})
}

// topic creates a topic; each partition is given as replicas, isr and leader.
func (ti *testImage) topic(name string, parts ...partSpec) uuid.UUID {
	ti.t.Helper()
	id := uuid.NewSHA1(uuid.Nil, []byte(name))
	rs := []metadata.Record{&metadata.TopicRecord{Name: name, ID: id}}
	for i, p := range parts {
		rs = append(rs, &metadata.PartitionRecord{TopicID: id, Partition: int32(i), Replicas: p.replicas, ISR: p.isr,
			Leader: p.leader, ELR: p.elr, LastKnownELR: p.lastKnown})
	}
	ti.apply(rs...)
	return id
}

type partSpec struct {
	replicas, isr  []int32
	leader         int32
	elr, lastKnown []int32
}

func ids(v ...int32) []int32 { return v }

// partitionAfter applies a change record to a partition and describes the result.
func describePartition(p *metadata.Partition) string {
	s := fmt.Sprintf("leader %d isr %v", p.Leader, p.ISR())
	if len(p.ELR()) > 0 || len(p.LastKnownELR()) > 0 {
		s += fmt.Sprintf(" elr %v lastKnown %v", p.ELR(), p.LastKnownELR())
	}
	return s
}

// Step-driven: each case is a partition, the broker event, and the partition after.
func TestPartitionChanges(t *testing.T) {
	type step struct {
		name    string
		part    partSpec
		states  map[int32]string // broker states ("active" when not named)
		ev      brokerEvent
		unclean bool
		elr     bool
		minISR  int
		want    string // the partition after, or "" for no change
	}
	none := metadata.NoLeader
	steps := []step{
		{name: "a follower is fenced: it leaves the ISR, the leader stays",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2, 3), leader: 1}, states: map[int32]string{2: "fenced"},
			ev: brokerEvent{remove: 2, add: none}, want: "leader 1 isr [1 3]"},
		{name: "the leader is fenced: the next ISR member in replica order leads",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(3, 2, 1), leader: 1}, states: map[int32]string{1: "fenced"},
			ev: brokerEvent{remove: 1, add: none}, want: "leader 2 isr [3 2]"},
		{name: "the leader is fenced; the other ISR member is shutting down: no leader, the ISR keeps them",
			part: partSpec{replicas: ids(1, 2), isr: ids(1, 2), leader: 1}, states: map[int32]string{1: "fenced", 2: "shutdown"},
			ev: brokerEvent{remove: 1, add: none}, want: "leader -1 isr [2]"},
		{name: "the last ISR member is fenced: no leader, but it stays in the ISR (KIP-841)",
			part: partSpec{replicas: ids(1, 2), isr: ids(1), leader: 1}, states: map[int32]string{1: "fenced"},
			ev: brokerEvent{remove: 1, add: none}, want: "leader -1 isr [1]"},
		{name: "a broker not in the ISR is fenced: nothing changes",
			part: partSpec{replicas: ids(1, 2), isr: ids(1), leader: 1}, states: map[int32]string{2: "fenced"},
			ev: brokerEvent{remove: 2, add: none}, want: ""},
		{name: "the last ISR member is unfenced: it leads again",
			part: partSpec{replicas: ids(1, 2), isr: ids(1), leader: none}, states: map[int32]string{1: "fenced", 2: "fenced"},
			ev: brokerEvent{remove: none, add: 1}, want: "leader 1 isr [1]"},
		{name: "a broker out of the ISR is unfenced: it may not lead",
			part: partSpec{replicas: ids(1, 2), isr: ids(1), leader: none}, states: map[int32]string{1: "fenced", 2: "fenced"},
			ev: brokerEvent{remove: none, add: 2}, want: ""},
		{name: "unclean election: a live replica out of the ISR leads, the ISR is it alone",
			part: partSpec{replicas: ids(1, 2), isr: ids(1), leader: 1}, states: map[int32]string{1: "fenced"},
			ev: brokerEvent{remove: 1, add: none}, unclean: true, want: "leader 2 isr [2]"},
		{name: "unclean election is a last resort: an ISR member goes first",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1, 3), leader: 1}, states: map[int32]string{1: "fenced"},
			ev: brokerEvent{remove: 1, add: none}, unclean: true, want: "leader 3 isr [3]"},
		{name: "without ELR, an ELR a partition carries is cleared",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2), leader: 1, elr: ids(3)}, states: map[int32]string{2: "fenced"},
			ev: brokerEvent{remove: 2, add: none}, want: "leader 1 isr [1]"},
		{name: "ELR: the ISR drops below min.insync.replicas, the leavers become eligible",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2), leader: 1}, states: map[int32]string{2: "fenced"},
			ev: brokerEvent{remove: 2, add: none}, elr: true, minISR: 2, want: "leader 1 isr [1] elr [2] lastKnown []"},
		{name: "ELR: the last ISR member is fenced, the ISR becomes empty and remembers the leader",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1), leader: 1, elr: ids(2)}, states: map[int32]string{1: "fenced", 2: "fenced"},
			ev: brokerEvent{remove: 1, add: none}, elr: true, minISR: 2, want: "leader -1 isr [] elr [1 2] lastKnown [1]"},
		{name: "ELR: with the ISR empty, an eligible replica that comes back leads and is the ISR",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(), leader: none, elr: ids(1, 2), lastKnown: ids(1)}, states: map[int32]string{1: "fenced", 2: "fenced"},
			ev: brokerEvent{remove: none, add: 2}, elr: true, minISR: 2, want: "leader 2 isr [2] elr [1] lastKnown []"},
		{name: "ELR: the ISR back at min.insync.replicas clears the ELR",
			part: partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2, 3), leader: 1, elr: ids()}, states: map[int32]string{3: "fenced"},
			ev: brokerEvent{remove: 3, add: none}, elr: true, minISR: 2, want: "leader 1 isr [1 2]"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ti := newTestImage(t)
			for id := int32(1); id <= 3; id++ {
				state := s.states[id]
				if state == "" {
					state = "active"
				}
				ti.broker(id, "", state)
			}
			topicID := ti.topic("t", s.part)
			b := config.Default()
			if s.unclean {
				b = b.WithDynamicDefaults(map[string]string{"unclean.leader.election.enable": "true"})
			}
			if s.minISR > 0 {
				b = b.WithDynamicDefaults(map[string]string{"min.insync.replicas": fmt.Sprint(s.minISR)})
			}
			rs := generateUpdates(ti.im, s.ev, electionSettings{broker: b, elr: s.elr})
			if s.want == "" {
				if len(rs) != 0 {
					t.Fatalf("want no change, got %+v", rs[0])
				}
				return
			}
			if len(rs) != 1 {
				t.Fatalf("want one change, got %d", len(rs))
			}
			ti.apply(rs...)
			p := ti.im.TopicByID(topicID).Partition(0)
			if got := describePartition(p); got != s.want {
				t.Fatalf("after the change: %s, want %s", got, s.want)
			}
			// Invariants: the leader is in the ISR and acceptable, the ISR is non-empty
			// without ELR.
			if p.Leader != metadata.NoLeader && (!slices.Contains(p.ISR(), p.Leader) || p.Leader == s.ev.remove) {
				t.Fatalf("leader %d: not an ISR member or the broker leaving", p.Leader)
			}
			if !s.elr && len(p.ISR()) == 0 {
				t.Fatal("the ISR became empty")
			}
		})
	}
}

// The leader epoch moves exactly when the leader is set; the partition epoch on every
// change, and a change decided on an old partition epoch does not apply.
func TestPartitionChangeEpochs(t *testing.T) {
	ti := newTestImage(t)
	for id := int32(1); id <= 3; id++ {
		ti.broker(id, "", "active")
	}
	id := ti.topic("t", partSpec{replicas: ids(1, 2, 3), isr: ids(1, 2, 3), leader: 1})
	es := electionSettings{broker: config.Default()}
	follower := generateUpdates(ti.im, brokerEvent{remove: 3, add: metadata.NoLeader}, es)
	leader := generateUpdates(ti.im, brokerEvent{remove: 1, add: metadata.NoLeader}, es)
	ti.apply(follower...)
	p := ti.im.TopicByID(id).Partition(0)
	if p.LeaderEpoch != 0 || p.PartitionEpoch != 1 {
		t.Fatalf("after an ISR shrink: leader epoch %d partition epoch %d, want 0 and 1", p.LeaderEpoch, p.PartitionEpoch)
	}
	if _, _, err := ti.im.Apply(metadata.Offset{Index: ti.im.Offset().Index + 1, Term: 1}, leader); err == nil {
		t.Fatal("a change decided at partition epoch 0 applied at partition epoch 1")
	}
	ti.apply(generateUpdates(ti.im, brokerEvent{remove: 1, add: metadata.NoLeader}, es)...)
	p = ti.im.TopicByID(id).Partition(0)
	if p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 2 {
		t.Fatalf("after the leader left: leader %d, epochs %d/%d, want 2, 1/2", p.Leader, p.LeaderEpoch, p.PartitionEpoch)
	}
}
