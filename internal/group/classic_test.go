package group

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionForMatchesJavaHashCode(t *testing.T) {
	// Expected values computed with Java's String.hashCode semantics
	// (UTF-16 code units, 32-bit overflow) and Utils.abs.
	for _, tc := range []struct {
		group string
		want  int32
	}{
		{"", 0},
		{"my-group", 12},
		{"test-group", 12},
		{"console-consumer-12345", 6},
		{"grüppe-😀", 14},          // non-ASCII and a surrogate pair
		{"polygenelubricants", 0}, // hashCode is MinInt32
	} {
		if got := partitionFor(tc.group, 50); got != tc.want {
			t.Errorf("partitionFor(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

func TestLoadInProgressAndInvalidGroup(t *testing.T) {
	c := New(testConfig(), newMemStore())
	defer c.Close()
	resp := c.JoinGroup(bg, Client{}, joinReq("g", "", nil))
	wantErr(t, "join before load", code(resp.ErrorCode), kerr.NotCoordinator)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g"
	wantErr(t, "heartbeat before load", code(c.Heartbeat(hb).ErrorCode), kerr.NotCoordinator)
	if err := c.Load(bg); err != nil {
		t.Fatal(err)
	}
	resp = c.JoinGroup(bg, Client{}, joinReq("", "", nil))
	wantErr(t, "join empty group id", code(resp.ErrorCode), kerr.InvalidGroupID)
	req := joinReq("g", "", nil)
	req.SessionTimeoutMillis = 500
	wantErr(t, "join short session", code(c.JoinGroup(bg, Client{}, req).ErrorCode), kerr.InvalidSessionTimeout)
	req = joinReq("g", "", nil)
	req.Protocols = nil
	wantErr(t, "join no protocols", code(c.JoinGroup(bg, Client{}, req).ErrorCode), kerr.InconsistentGroupProtocol)
	wantErr(t, "join unknown member", code(c.JoinGroup(bg, Client{}, joinReq("g", "nobody", nil)).ErrorCode), kerr.UnknownMemberID)
}

func TestJoinSyncHeartbeatLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		a := e.memberID("g")
		ja := e.c.JoinGroup(bg, Client{ID: "client"}, joinReq("g", a, nil))
		wantErr(t, "join a", code(ja.ErrorCode), nil)
		if ja.Generation != 1 || ja.LeaderID != a || len(ja.Members) != 1 || *ja.Protocol != "range" {
			t.Fatalf("join a: gen %d leader %q members %d", ja.Generation, ja.LeaderID, len(ja.Members))
		}
		sa := e.sync("g", a, 1, map[string]string{a: "all"})
		if err := code(sa.ErrorCode); err != nil || string(sa.MemberAssignment) != "all" {
			t.Fatalf("sync a: %v %q", err, sa.MemberAssignment)
		}
		wantErr(t, "heartbeat a", e.heartbeat("g", a, 1), nil)
		wantErr(t, "heartbeat old generation", e.heartbeat("g", a, 0), kerr.IllegalGeneration)
		wantErr(t, "heartbeat unknown", e.heartbeat("g", "x", 1), kerr.UnknownMemberID)

		// b joins: the group rebalances, a learns it from its heartbeat.
		b := e.memberID("g")
		jbCh := e.joinAsync(joinReq("g", b, nil))
		synctest.Wait()
		if d := e.describe("g"); d.State != "PreparingRebalance" {
			t.Fatalf("state after b joins: %s", d.State)
		}
		wantErr(t, "heartbeat a during rebalance", e.heartbeat("g", a, 1), kerr.RebalanceInProgress)
		wantErr(t, "sync a during rebalance", code(e.sync("g", a, 1, nil).ErrorCode), kerr.RebalanceInProgress)
		ja = e.c.JoinGroup(bg, Client{ID: "client"}, joinReq("g", a, nil))
		jb := <-jbCh
		if ja.Generation != 2 || jb.Generation != 2 || ja.LeaderID != a || jb.LeaderID != a {
			t.Fatalf("second generation: a %d b %d leader %q/%q", ja.Generation, jb.Generation, ja.LeaderID, jb.LeaderID)
		}
		if len(ja.Members) != 2 || len(jb.Members) != 0 {
			t.Fatalf("leader sees %d members, follower %d", len(ja.Members), len(jb.Members))
		}

		// The follower's sync waits for the leader's.
		sbCh := e.syncAsync("g", b, 2, nil)
		synctest.Wait()
		select {
		case <-sbCh:
			t.Fatal("follower sync answered before the leader's")
		default:
		}
		sa = e.sync("g", a, 2, map[string]string{a: "p0", b: "p1"})
		sb := <-sbCh
		if string(sa.MemberAssignment) != "p0" || string(sb.MemberAssignment) != "p1" {
			t.Fatalf("assignments: a %q b %q", sa.MemberAssignment, sb.MemberAssignment)
		}
		if d := e.describe("g"); d.State != "Stable" || len(d.Members) != 2 || d.Protocol != "range" {
			t.Fatalf("describe stable: %+v", d)
		}

		// b leaves: a rebalances alone.
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Version = 3
		leave.Group = "g"
		leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: b}, {MemberID: "ghost"}}
		lr := e.c.LeaveGroup(leave)
		wantErr(t, "leave b", code(lr.Members[0].ErrorCode), nil)
		wantErr(t, "leave ghost", code(lr.Members[1].ErrorCode), kerr.UnknownMemberID)
		wantErr(t, "heartbeat a after leave", e.heartbeat("g", a, 2), kerr.RebalanceInProgress)
		ja = e.c.JoinGroup(bg, Client{ID: "client"}, joinReq("g", a, nil))
		if ja.Generation != 3 || len(ja.Members) != 1 {
			t.Fatalf("third generation: %d with %d members", ja.Generation, len(ja.Members))
		}

		// The last member leaving empties the group.
		leave = kmsg.NewPtrLeaveGroupRequest()
		leave.Version = 1
		leave.Group = "g"
		leave.MemberID = a
		wantErr(t, "leave a", code(e.c.LeaveGroup(leave).ErrorCode), nil)
		if d := e.describe("g"); d.State != "Empty" {
			t.Fatalf("state after all left: %s", d.State)
		}
	})
}

func TestProtocolSelectionAndInconsistentProtocol(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		// a forms generation 1 alone; b's join rebalances the group.
		a := e.memberID("g")
		e.c.JoinGroup(bg, Client{}, joinReq("g", a, nil, "roundrobin", "range"))
		b := e.memberID("g")
		jbCh := e.joinAsync(joinReq("g", b, nil, "range", "sticky"))
		synctest.Wait()
		ja := e.c.JoinGroup(bg, Client{}, joinReq("g", a, nil, "roundrobin", "range"))
		jb := <-jbCh
		if ja.Generation != 2 || jb.Generation != 2 {
			t.Fatalf("generations %d %d (%v %v)", ja.Generation, jb.Generation, code(ja.ErrorCode), code(jb.ErrorCode))
		}
		if *ja.Protocol != "range" || *jb.Protocol != "range" {
			t.Fatalf("selected %q, want the only common protocol range", *ja.Protocol)
		}
		c := e.memberID("g")
		resp := e.c.JoinGroup(bg, Client{}, joinReq("g", c, nil, "sticky"))
		wantErr(t, "join with no common protocol", code(resp.ErrorCode), kerr.InconsistentGroupProtocol)
	})
}

func TestManyMembersJoinAtOnceReachOneGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.InitialRebalanceDelay = 3 * time.Second
		e := newEnv(t, cfg)
		const n = 20
		ids := make([]string, n)
		chans := make([]<-chan *kmsg.JoinGroupResponse, n)
		for i := range n {
			ids[i] = e.memberID("big")
			chans[i] = e.joinAsync(joinReq("big", ids[i], nil))
		}
		gens := map[int32]int{}
		var leader *kmsg.JoinGroupResponse
		for _, ch := range chans {
			r := <-ch
			wantErr(t, "join", code(r.ErrorCode), nil)
			gens[r.Generation]++
			if r.LeaderID == r.MemberID {
				leader = r
			}
		}
		if len(gens) != 1 || gens[1] != n {
			t.Fatalf("generations: %v, want all %d in generation 1", gens, n)
		}
		if leader == nil || len(leader.Members) != n {
			t.Fatalf("leader missing or sees the wrong members")
		}
		// Everyone syncs; the group is stable with every member assigned.
		assign := map[string]string{}
		for i, id := range ids {
			assign[id] = fmt.Sprintf("p%d", i)
		}
		var syncs []<-chan *kmsg.SyncGroupResponse
		for _, id := range ids {
			if id != leader.MemberID {
				syncs = append(syncs, e.syncAsync("big", id, 1, nil))
			}
		}
		e.sync("big", leader.MemberID, 1, assign)
		for _, ch := range syncs {
			if r := <-ch; code(r.ErrorCode) != nil || len(r.MemberAssignment) == 0 {
				t.Fatalf("sync: %v %q", code(r.ErrorCode), r.MemberAssignment)
			}
		}
		if d := e.describe("big"); d.State != "Stable" || len(d.Members) != n {
			t.Fatalf("describe: %s with %d members", d.State, len(d.Members))
		}
	})
}

// stableGroup forms a stable group of n dynamic members and returns their
// IDs (the first is the leader) and the generation.
func (e *testEnv) stableGroup(group string, n int) ([]string, int32) {
	e.t.Helper()
	ids := make([]string, n)
	chans := make(map[string]<-chan *kmsg.JoinGroupResponse, n)
	for i := range n {
		ids[i] = e.memberID(group)
		chans[ids[i]] = e.joinAsync(joinReq(group, ids[i], nil))
	}
	// Members answered with a generation that is then rebalanced away
	// rejoin, as clients do, until all are in one generation.
	got := make(map[string]*kmsg.JoinGroupResponse, n)
	var gen int32
	var leader string
	for {
		synctest.Wait()
		for id, ch := range chans {
			select {
			case r := <-ch:
				if code(r.ErrorCode) != nil {
					e.t.Fatalf("join %s: %v", id, code(r.ErrorCode))
				}
				got[id] = r
				delete(chans, id)
			default:
			}
		}
		d := e.describe(group)
		if d.State == "CompletingRebalance" && len(chans) == 0 {
			gen, leader = got[ids[0]].Generation, got[ids[0]].LeaderID
			break
		}
		if d.State == "PreparingRebalance" {
			for id := range got {
				chans[id] = e.joinAsync(joinReq(group, id, nil))
				delete(got, id)
			}
		}
	}
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "a-" + id
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, id := range ids {
		if id != leader {
			syncs = append(syncs, e.syncAsync(group, id, gen, nil))
		}
	}
	if r := e.sync(group, leader, gen, assign); code(r.ErrorCode) != nil {
		e.t.Fatalf("leader sync: %v", code(r.ErrorCode))
	}
	for _, ch := range syncs {
		<-ch
	}
	i := slices.Index(ids, leader)
	ids[0], ids[i] = ids[i], ids[0]
	return ids, gen
}

func TestSessionExpiryRemovesMemberAndRebalances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, gen := e.stableGroup("g", 2)
		alive, dead := ids[0], ids[1]
		// Only alive heartbeats; dead's 6s session runs out.
		var err error
		for range 10 {
			time.Sleep(time.Second)
			if err = e.heartbeat("g", alive, gen); err != nil {
				break
			}
		}
		wantErr(t, "heartbeat after the other member expired", err, kerr.RebalanceInProgress)
		wantErr(t, "heartbeat of the expired member", e.heartbeat("g", dead, gen), kerr.UnknownMemberID)
		r := e.c.JoinGroup(bg, Client{}, joinReq("g", alive, nil))
		if r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != alive {
			t.Fatalf("rejoin: generation %d members %v", r.Generation, r.Members)
		}
	})
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, gen := e.stableGroup("g", 3)
		// ids[0] forces a rebalance; ids[1] rejoins; ids[2] keeps
		// heartbeating but never rejoins, so the rebalance timeout (10s)
		// ends the join phase without it.
		ch0 := e.joinAsync(joinReq("g", ids[0], nil))
		synctest.Wait()
		ch1 := e.joinAsync(joinReq("g", ids[1], nil))
		start := time.Now()
		for range 15 {
			time.Sleep(time.Second)
			e.heartbeat("g", ids[2], gen)
		}
		r0, r1 := <-ch0, <-ch1
		if r0.Generation != gen+1 || r1.Generation != gen+1 || len(r0.Members)+len(r1.Members) != 2 {
			t.Fatalf("generation %d/%d", r0.Generation, r1.Generation)
		}
		if elapsed := time.Since(start); elapsed < 10*time.Second {
			t.Fatalf("join phase ended after %v, before the rebalance timeout", elapsed)
		}
		wantErr(t, "heartbeat of the member that did not rejoin", e.heartbeat("g", ids[2], gen), kerr.UnknownMemberID)
	})
}

func TestStaticMemberRejoinKeepsGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ia, ib := "instance-a", "instance-b"
		// Static members join without MEMBER_ID_REQUIRED.
		chA := e.joinAsync(joinReq("g", "", &ia))
		synctest.Wait()
		chB := e.joinAsync(joinReq("g", "", &ib))
		synctest.Wait()
		ja := <-chA
		if ja.Generation == 1 {
			ja = <-e.joinAsync(joinReq("g", ja.MemberID, &ia))
		}
		jb := <-chB
		if ja.Generation != jb.Generation {
			t.Fatalf("generations %d %d (%v %v)", ja.Generation, jb.Generation, code(ja.ErrorCode), code(jb.ErrorCode))
		}
		gen := ja.Generation
		leader, follower := ja, jb
		if jb.LeaderID == jb.MemberID {
			leader, follower = jb, ja
		}
		fch := e.syncAsync("g", follower.MemberID, gen, nil)
		e.sync("g", leader.MemberID, gen, map[string]string{leader.MemberID: "L", follower.MemberID: "F"})
		<-fch

		// The follower's process restarts: same instance ID, no member ID.
		finst := follower.MemberID[:len("instance-a")]
		r := e.c.JoinGroup(bg, Client{ID: "client"}, joinReq("g", "", &finst))
		wantErr(t, "static rejoin", code(r.ErrorCode), nil)
		if r.Generation != gen || r.MemberID == follower.MemberID {
			t.Fatalf("static rejoin: generation %d (want %d), member %q", r.Generation, gen, r.MemberID)
		}
		if s := e.sync("g", r.MemberID, gen, nil); string(s.MemberAssignment) != "F" {
			t.Fatalf("static member's assignment after rejoin: %q", s.MemberAssignment)
		}
		wantErr(t, "leader heartbeat: no rebalance", e.heartbeat("g", leader.MemberID, gen), nil)

		// The old incarnation is fenced.
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version = 4
		hb.Group = "g"
		hb.MemberID = follower.MemberID
		hb.InstanceID = &finst
		hb.Generation = gen
		wantErr(t, "old incarnation heartbeat", code(e.c.Heartbeat(hb).ErrorCode), kerr.FencedInstanceID)

		// A static leave by instance ID rebalances.
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Version = 4
		leave.Group = "g"
		leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &finst, MemberID: "wrong"}}
		wantErr(t, "leave with wrong member", code(e.c.LeaveGroup(leave).Members[0].ErrorCode), kerr.FencedInstanceID)
		leave.Members[0].MemberID = ""
		wantErr(t, "leave by instance", code(e.c.LeaveGroup(leave).Members[0].ErrorCode), nil)
		wantErr(t, "leader after leave", e.heartbeat("g", leader.MemberID, gen), kerr.RebalanceInProgress)
	})
}

func TestGroupMaxSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxGroupSize = 1
		e := newEnv(t, cfg)
		e.stableGroup("g", 1)
		r := e.c.JoinGroup(bg, Client{}, joinReq("g", "", nil))
		wantErr(t, "join a full group", code(r.ErrorCode), kerr.GroupMaxSizeReached)
	})
}

func TestJoinWaitCancelledByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, _ := e.stableGroup("g", 2)
		ctx, cancel := context.WithCancel(bg)
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		go func() { ch <- e.c.JoinGroup(ctx, Client{}, joinReq("g", ids[0], nil)) }()
		synctest.Wait()
		cancel()
		wantErr(t, "cancelled join", code((<-ch).ErrorCode), kerr.CoordinatorNotAvailable)
	})
}

func TestJoinV3NeedsNoMemberID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		req := joinReq("g", "", nil)
		req.Version = 3
		r := e.c.JoinGroup(bg, Client{ID: "old-client"}, req)
		if code(r.ErrorCode) != nil || r.Generation != 1 || r.MemberID == "" || r.LeaderID != r.MemberID {
			t.Fatalf("v3 join: %v generation %d member %q", code(r.ErrorCode), r.Generation, r.MemberID)
		}
	})
}

func TestSyncStoreFailureRebalances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		a := e.memberID("g")
		r := e.c.JoinGroup(bg, Client{}, joinReq("g", a, nil))
		e.store.failAppends = 1
		s := e.sync("g", a, r.Generation, map[string]string{a: "x"})
		wantErr(t, "sync when the store fails", code(s.ErrorCode), kerr.CoordinatorNotAvailable)
		// The client rejoins; the next generation stores fine.
		r = e.c.JoinGroup(bg, Client{}, joinReq("g", a, nil))
		if s := e.sync("g", a, r.Generation, map[string]string{a: "y"}); code(s.ErrorCode) != nil || string(s.MemberAssignment) != "y" {
			t.Fatalf("sync after the failure: %v %q", code(s.ErrorCode), s.MemberAssignment)
		}
	})
}

func TestCloseAnswersWaitingJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, _ := e.stableGroup("g", 2)
		ch := e.joinAsync(joinReq("g", ids[0], nil))
		synctest.Wait()
		e.c.Close()
		wantErr(t, "join waiting at close", code((<-ch).ErrorCode), kerr.CoordinatorNotAvailable)
	})
}
