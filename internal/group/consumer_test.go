package group

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	topicT = [16]byte{1}
	topicU = [16]byte{2}
)

// testTopics is a Config.Topics whose topics a test can change.
type testTopics struct {
	mu     sync.Mutex
	topics map[string]TopicInfo
}

func (tt *testTopics) get() map[string]TopicInfo {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.topics
}

func (tt *testTopics) set(name string, info TopicInfo) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	next := make(map[string]TopicInfo, len(tt.topics)+1)
	for k, v := range tt.topics {
		next[k] = v
	}
	next[name] = info
	tt.topics = next
}

func newConsumerEnv(t *testing.T) (*testEnv, *testTopics) {
	tt := &testTopics{topics: map[string]TopicInfo{
		"t":                  {ID: topicT, Partitions: 4},
		"u":                  {ID: topicU, Partitions: 2},
		"__consumer_offsets": {ID: [16]byte{3}, Partitions: 4},
	}}
	cfg := testConfig()
	cfg.Topics = tt.get
	return newEnv(t, cfg), tt
}

type hb struct {
	member   string
	epoch    int32
	instance *string
	names    []string
	regex    *string
	assignor *string
	owned    assignment // nil: not sent
}

func (e *testEnv) cgHeartbeat(group string, h hb) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = group
	req.MemberID = h.member
	req.MemberEpoch = h.epoch
	req.InstanceID = h.instance
	req.SubscribedTopicNames = h.names
	req.SubscribedTopicRegex = h.regex
	req.ServerAssignor = h.assignor
	if h.epoch == 0 {
		req.RebalanceTimeoutMillis = 10000
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	if h.owned != nil {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, t := range h.owned.topicIDs() {
			req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t, Partitions: h.owned[t]})
		}
	}
	return e.c.ConsumerGroupHeartbeat(bg, Client{ID: "cid", Host: "/10.0.0.1"}, req)
}

func assignmentOf(r *kmsg.ConsumerGroupHeartbeatResponse) assignment {
	if r.Assignment == nil {
		return nil
	}
	a := make(assignment)
	for _, t := range r.Assignment.Topics {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

func mustHB(t *testing.T, what string, r *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	if err := code(r.ErrorCode); err != nil {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		t.Fatalf("%s: %v %s", what, err, msg)
	}
	return r
}

func TestConsumerGroupReconciliation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newConsumerEnv(t)
		r := mustHB(t, "m1 joins", e.cgHeartbeat("g", hb{member: "m1", names: []string{"t"}}))
		if r.MemberEpoch != 1 || assignmentOf(r).size() != 4 || r.HeartbeatIntervalMillis != 5000 {
			t.Fatalf("m1 join: epoch %d assignment %v", r.MemberEpoch, assignmentOf(r))
		}
		m1 := assignmentOf(r)

		// m2 joins: the target splits t, but m1 still owns everything, so
		// m2 takes the new epoch with nothing yet.
		r = mustHB(t, "m2 joins", e.cgHeartbeat("g", hb{member: "m2", names: []string{"t"}}))
		if r.MemberEpoch != 2 || assignmentOf(r).size() != 0 {
			t.Fatalf("m2 join: epoch %d assignment %v", r.MemberEpoch, assignmentOf(r))
		}

		// m1 must first revoke half: it keeps epoch 1 until it has.
		r = mustHB(t, "m1 heartbeat", e.cgHeartbeat("g", hb{member: "m1", epoch: 1, owned: m1}))
		kept := assignmentOf(r)
		if r.MemberEpoch != 1 || kept.size() != 2 {
			t.Fatalf("m1 revocation: epoch %d assignment %v", r.MemberEpoch, kept)
		}
		r = mustHB(t, "m2 while m1 revokes", e.cgHeartbeat("g", hb{member: "m2", epoch: 2}))
		if r.Assignment != nil {
			t.Fatalf("m2 got %v while the partitions are not released", assignmentOf(r))
		}
		r = mustHB(t, "m1 revoked", e.cgHeartbeat("g", hb{member: "m1", epoch: 1, owned: kept}))
		if r.MemberEpoch != 2 {
			t.Fatalf("m1 after revoking: epoch %d", r.MemberEpoch)
		}
		r = mustHB(t, "m2 after release", e.cgHeartbeat("g", hb{member: "m2", epoch: 2}))
		got := assignmentOf(r)
		if got.size() != 2 {
			t.Fatalf("m2 after release: %v", got)
		}
		for _, p := range got[topicT] {
			if kept.has(topicT, p) {
				t.Fatalf("partition %d assigned to both members", p)
			}
		}

		d := e.c.ConsumerGroupDescribe(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}}).Groups[0]
		if d.State != "Stable" || d.Epoch != 2 || d.AssignmentEpoch != 2 || len(d.Members) != 2 || d.AssignorName != "uniform" {
			t.Fatalf("describe: state %s epoch %d/%d members %d assignor %s", d.State, d.Epoch, d.AssignmentEpoch, len(d.Members), d.AssignorName)
		}
		if d.Members[0].ClientHost != "/10.0.0.1" || len(d.Members[0].Assignment.TopicPartitions) != 1 || d.Members[0].Assignment.TopicPartitions[0].Topic != "t" {
			t.Fatalf("describe member: %+v", d.Members[0])
		}

		wantErr(t, "epoch from the future", code(e.cgHeartbeat("g", hb{member: "m1", epoch: 7}).ErrorCode), kerr.FencedMemberEpoch)
		wantErr(t, "unknown member", code(e.cgHeartbeat("g", hb{member: "zz", epoch: 1}).ErrorCode), kerr.UnknownMemberID)
		wantErr(t, "unknown group", code(e.cgHeartbeat("nope", hb{member: "zz", epoch: 1}).ErrorCode), kerr.UnknownMemberID)

		// Commits are checked against the member epoch.
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 9
		req.Group = "g"
		req.MemberID = "m1"
		req.Generation = 2
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 3}}}}
		wantErr(t, "commit at member epoch", code(e.c.OffsetCommit(bg, req).Topics[0].Partitions[0].ErrorCode), nil)
		req.Generation = 1
		wantErr(t, "commit at stale epoch", code(e.c.OffsetCommit(bg, req).Topics[0].Partitions[0].ErrorCode), kerr.StaleMemberEpoch)
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version = 9
		fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", MemberID: kmsg.StringPtr("m1"), MemberEpoch: 1}}
		wantErr(t, "fetch at stale epoch", code(e.c.OffsetFetch(fr).Groups[0].ErrorCode), kerr.StaleMemberEpoch)

		// m2 leaves: m1 gets everything at the next epoch.
		r = e.cgHeartbeat("g", hb{member: "m2", epoch: -1})
		if code(r.ErrorCode) != nil || r.MemberEpoch != -1 {
			t.Fatalf("leave: %v epoch %d", code(r.ErrorCode), r.MemberEpoch)
		}
		r = mustHB(t, "m1 after m2 left", e.cgHeartbeat("g", hb{member: "m1", epoch: 2}))
		if r.MemberEpoch != 3 || assignmentOf(r).size() != 4 {
			t.Fatalf("m1 alone: epoch %d assignment %v", r.MemberEpoch, assignmentOf(r))
		}

		// The group survives a restart: same epochs, same assignment.
		e.start()
		r = mustHB(t, "m1 after restart", e.cgHeartbeat("g", hb{member: "m1", epoch: 3}))
		if r.MemberEpoch < 3 {
			t.Fatalf("epoch went back after restart: %d", r.MemberEpoch)
		}
		d = e.c.ConsumerGroupDescribe(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}}).Groups[0]
		if len(d.Members) != 1 || len(d.Members[0].Assignment.TopicPartitions[0].Partitions) != 4 {
			t.Fatalf("after restart: %+v", d.Members)
		}
		if off, _ := e.fetched("g", "t", 0); off != 3 {
			t.Fatalf("offset after restart: %d", off)
		}

		// Without heartbeats the member is fenced after the session
		// timeout (45s) and the group is empty.
		time.Sleep(46 * time.Second)
		lg := e.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5, TypesFilter: []string{"consumer"}})
		if len(lg.Groups) != 1 || lg.Groups[0].GroupState != "Empty" || lg.Groups[0].ProtocolType != "consumer" {
			t.Fatalf("list after expiry: %+v", lg.Groups)
		}
		wantErr(t, "heartbeat of the expired member", code(e.cgHeartbeat("g", hb{member: "m1", epoch: r.MemberEpoch}).ErrorCode), kerr.UnknownMemberID)
	})
}

func TestConsumerGroupRegexAndTopicChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, tt := newConsumerEnv(t)
		re := ".*"
		r := mustHB(t, "join by regex", e.cgHeartbeat("g", hb{member: "m", regex: &re}))
		a := assignmentOf(r)
		if a.size() != 10 || len(a[[16]byte{3}]) != 4 {
			t.Fatalf("regex .* assignment: %v (internal topics match too, as in Kafka 4)", a)
		}
		// A new matching topic bumps the epoch and is assigned.
		tt.set("v", TopicInfo{ID: [16]byte{4}, Partitions: 1})
		r = mustHB(t, "after topic creation", e.cgHeartbeat("g", hb{member: "m", epoch: r.MemberEpoch}))
		if r.MemberEpoch != 2 || assignmentOf(r).size() != 11 {
			t.Fatalf("after new topic: epoch %d %v", r.MemberEpoch, assignmentOf(r))
		}
		// Partitions added to a subscribed topic too.
		tt.set("u", TopicInfo{ID: topicU, Partitions: 3})
		r = mustHB(t, "after partitions added", e.cgHeartbeat("g", hb{member: "m", epoch: r.MemberEpoch}))
		if assignmentOf(r).size() != 12 {
			t.Fatalf("after partitions added: %v", assignmentOf(r))
		}
		// Narrowing the regex revokes.
		narrow := "u"
		r = mustHB(t, "narrow regex", e.cgHeartbeat("g", hb{member: "m", epoch: r.MemberEpoch, regex: &narrow}))
		if a := assignmentOf(r); a.size() != 3 || len(a[topicU]) != 3 {
			t.Fatalf("after narrowing: %v", a)
		}
	})
}

func TestConsumerGroupValidation(t *testing.T) {
	e, _ := newConsumerEnv(t)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = "g"
	req.MemberID = "m"
	req.SubscribedTopicNames = []string{"t"}
	req.RebalanceTimeoutMillis = 1000
	wantErr(t, "join without owned partitions", code(e.c.ConsumerGroupHeartbeat(bg, Client{}, req).ErrorCode), kerr.InvalidRequest)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	req.ServerAssignor = kmsg.StringPtr("sticky")
	wantErr(t, "unknown assignor", code(e.c.ConsumerGroupHeartbeat(bg, Client{}, req).ErrorCode), kerr.UnsupportedAssignor)
	req.ServerAssignor = nil
	req.SubscribedTopicRegex = kmsg.StringPtr("(")
	wantErr(t, "bad regex", code(e.c.ConsumerGroupHeartbeat(bg, Client{}, req).ErrorCode), kerr.InvalidRegularExpression)
	req.SubscribedTopicRegex = nil
	req.Group = ""
	wantErr(t, "empty group", code(e.c.ConsumerGroupHeartbeat(bg, Client{}, req).ErrorCode), kerr.InvalidGroupID)

	// A classic group with members is not taken over.
	synctest.Test(t, func(t *testing.T) {
		e, _ := newConsumerEnv(t)
		e.stableGroup("classic", 1)
		r := e.cgHeartbeat("classic", hb{member: "m", names: []string{"t"}})
		wantErr(t, "heartbeat to classic group", code(r.ErrorCode), kerr.GroupIDNotFound)
		// An empty classic group (offsets only) is.
		e.commit("offsets-only", "", -1, "t", 0, 5)
		mustHB(t, "heartbeat to empty classic group", e.cgHeartbeat("offsets-only", hb{member: "m", names: []string{"t"}}))
		if off, _ := e.fetched("offsets-only", "t", 0); off != 5 {
			t.Fatalf("offsets lost converting the group: %d", off)
		}
		jr := e.c.JoinGroup(bg, Client{}, joinReq("offsets-only", "", nil))
		wantErr(t, "classic join to live consumer group", code(jr.ErrorCode), kerr.InconsistentGroupProtocol)
	})
}

func TestConsumerGroupStaticMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newConsumerEnv(t)
		inst := "i1"
		r := mustHB(t, "static join", e.cgHeartbeat("g", hb{member: "a", instance: &inst, names: []string{"t", "u"}}))
		mustHB(t, "other join", e.cgHeartbeat("g", hb{member: "b", names: []string{"t", "u"}}))
		r = mustHB(t, "a reconciles", e.cgHeartbeat("g", hb{member: "a", instance: &inst, epoch: r.MemberEpoch, owned: assignmentOf(r)}))
		r = mustHB(t, "a revoked", e.cgHeartbeat("g", hb{member: "a", instance: &inst, epoch: r.MemberEpoch, owned: assignmentOf(r)}))
		aHas := e.c.ConsumerGroupDescribe(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}}).Groups[0].Members[0].Assignment

		wantErr(t, "second instance while the first is active",
			code(e.cgHeartbeat("g", hb{member: "a2", instance: &inst, names: []string{"t", "u"}}).ErrorCode), kerr.UnreleasedInstanceID)
		r = e.cgHeartbeat("g", hb{member: "a", instance: &inst, epoch: -2})
		if code(r.ErrorCode) != nil || r.MemberEpoch != -2 {
			t.Fatalf("static leave: %v %d", code(r.ErrorCode), r.MemberEpoch)
		}
		// The restarted instance takes over a's partitions.
		r = mustHB(t, "instance back", e.cgHeartbeat("g", hb{member: "a2", instance: &inst, names: []string{"t", "u"}}))
		got := assignmentOf(r)
		want := make(assignment)
		for _, tp := range aHas.TopicPartitions {
			for _, p := range tp.Partitions {
				want.add(tp.TopicID, p)
			}
		}
		if !got.equal(want) {
			t.Fatalf("returning static member got %v, had %v", got, want)
		}
	})
}

func TestAssignors(t *testing.T) {
	members := func(subs map[string][][16]byte) []assignMember {
		var ms []assignMember
		for id, ts := range subs {
			m := assignMember{id: id, topics: map[[16]byte]bool{}}
			for _, t := range ts {
				m.topics[t] = true
			}
			ms = append(ms, m)
		}
		slices.SortFunc(ms, func(a, b assignMember) int {
			if a.id < b.id {
				return -1
			}
			return 1
		})
		return ms
	}
	spec := assignSpec{
		members: members(map[string][][16]byte{"a": {topicT, topicU}, "b": {topicT, topicU}, "c": {topicT}}),
		topics:  map[[16]byte]int32{topicT: 7, topicU: 2},
	}
	r := assignRange(spec)
	// t: 7 over a,b,c -> 3,2,2 contiguous; u: 2 over a,b -> 1,1.
	if !slices.Equal(r["a"][topicT], []int32{0, 1, 2}) || !slices.Equal(r["c"][topicT], []int32{5, 6}) || !slices.Equal(r["b"][topicU], []int32{1}) {
		t.Fatalf("range: %v", r)
	}
	u := assignUniform(spec)
	total := 0
	for id, a := range u {
		total += a.size()
		if a.size() != 3 {
			t.Fatalf("uniform gives %s %d partitions, want 3 each: %v", id, a.size(), u)
		}
		if id == "c" && len(a[topicU]) > 0 {
			t.Fatalf("c got a topic it does not subscribe to")
		}
	}
	if total != 9 {
		t.Fatalf("uniform assigned %d of 9", total)
	}
	// Sticky: a fourth member takes partitions without moving the rest
	// more than needed.
	spec.prev = u
	spec.members = append(spec.members, members(map[string][][16]byte{"d": {topicT, topicU}})...)
	u2 := assignUniform(spec)
	moved := 0
	for id, a := range u {
		for t, ps := range a {
			for _, p := range ps {
				if !u2[id].has(t, p) {
					moved++
				}
			}
		}
	}
	if u2["d"].size() < 2 || moved != u2["d"].size() {
		t.Fatalf("uniform sticky: d got %d, %d moved: %v", u2["d"].size(), moved, u2)
	}
}

func TestConsumerGroupSessionExpiryReassigns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newConsumerEnv(t)
		r1 := mustHB(t, "m1 joins", e.cgHeartbeat("g", hb{member: "m1", names: []string{"t"}}))
		mustHB(t, "m2 joins", e.cgHeartbeat("g", hb{member: "m2", names: []string{"t"}}))
		// m1 revokes half to m2; then m2 goes silent.
		r1 = mustHB(t, "m1 revokes", e.cgHeartbeat("g", hb{member: "m1", epoch: r1.MemberEpoch, owned: assignmentOf(r1)}))
		r1 = mustHB(t, "m1 revoked", e.cgHeartbeat("g", hb{member: "m1", epoch: r1.MemberEpoch, owned: assignmentOf(r1)}))
		mustHB(t, "m2 takes its half", e.cgHeartbeat("g", hb{member: "m2", epoch: 2}))
		epoch, owned := r1.MemberEpoch, assignmentOf(r1)
		if owned == nil {
			owned = make(assignment)
		}
		for range 25 {
			time.Sleep(2 * time.Second)
			r := mustHB(t, "m1 heartbeat", e.cgHeartbeat("g", hb{member: "m1", epoch: epoch, owned: owned}))
			epoch = r.MemberEpoch
			if a := assignmentOf(r); a != nil {
				owned = a
			}
		}
		if owned.size() != 4 || epoch <= 2 {
			t.Fatalf("after m2 expired m1 has %v at epoch %d, want all 4 partitions", owned, epoch)
		}
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version = 9
		fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", MemberEpoch: -1}}
		wantErr(t, "admin fetch of a live consumer group", code(e.c.OffsetFetch(fr).Groups[0].ErrorCode), nil)
	})
}
