package group

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSimpleConsumerCommitAndFetch(t *testing.T) {
	e := newEnv(t, testConfig())
	// Unknown group: no error, offset -1 (not GROUP_ID_NOT_FOUND).
	off, err := e.fetched("simple", "t", 0)
	if err != nil || off != -1 {
		t.Fatalf("fetch unknown group: %d %v", off, err)
	}
	wantErr(t, "simple commit", e.commit("simple", "", -1, "t", 0, 42), nil)
	off, err = e.fetched("simple", "t", 0)
	if err != nil || off != 42 {
		t.Fatalf("fetch after commit: %d %v", off, err)
	}
	// The group exists now, empty, with no protocol type.
	lg := e.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5})
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "simple" || lg.Groups[0].GroupState != "Empty" || lg.Groups[0].GroupType != "classic" {
		t.Fatalf("list groups: %+v", lg.Groups)
	}
	// A commit with a generation for a group that does not exist.
	wantErr(t, "v8 commit to unknown group with generation", e.commit("nogroup", "m", 5, "t", 0, 1), kerr.IllegalGeneration)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = "nogroup"
	req.Generation = 5
	req.MemberID = "m"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
	wantErr(t, "v9 commit to unknown group with generation", code(e.c.OffsetCommit(bg, req).Topics[0].Partitions[0].ErrorCode), kerr.GroupIDNotFound)

	// Metadata too large.
	req = kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = "simple"
	big := string(make([]byte, 5000))
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1, Metadata: &big}}}}
	wantErr(t, "large metadata", code(e.c.OffsetCommit(bg, req).Topics[0].Partitions[0].ErrorCode), kerr.OffsetMetadataTooLarge)
}

func TestOffsetFetchVersions(t *testing.T) {
	e := newEnv(t, testConfig())
	e.commit("g1", "", -1, "t", 0, 10)
	e.commit("g1", "", -1, "t", 1, 11)
	e.commit("g2", "", -1, "u", 0, 20)

	// v8: many groups at once, all topics when Topics is null.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.RequireStable = true
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g1"}, {Group: "g2"}, {Group: "g3"}}
	resp := e.c.OffsetFetch(req)
	if len(resp.Groups) != 3 {
		t.Fatalf("groups: %d", len(resp.Groups))
	}
	g1 := resp.Groups[0]
	if len(g1.Topics) != 1 || len(g1.Topics[0].Partitions) != 2 || g1.Topics[0].Partitions[1].Offset != 11 {
		t.Fatalf("g1 all offsets: %+v", g1.Topics)
	}
	if resp.Groups[1].Topics[0].Partitions[0].Offset != 20 {
		t.Fatalf("g2: %+v", resp.Groups[1].Topics)
	}
	if g3 := resp.Groups[2]; g3.ErrorCode != 0 || len(g3.Topics) != 0 {
		t.Fatalf("unknown group g3: %+v", g3)
	}

	// v5: one group, named partitions, leader epoch and metadata back.
	req = kmsg.NewPtrOffsetFetchRequest()
	req.Version = 5
	req.Group = "g1"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 7}}}
	r5 := e.c.OffsetFetch(req)
	ps := r5.Topics[0].Partitions
	if r5.ErrorCode != 0 || ps[0].Offset != 10 || ps[0].LeaderEpoch != 3 || *ps[0].Metadata != "m" || ps[1].Offset != -1 || ps[1].LeaderEpoch != -1 {
		t.Fatalf("v5 fetch: %+v", ps)
	}
}

func TestCommitValidatesGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, gen := e.stableGroup("g", 2)
		wantErr(t, "member commit", e.commit("g", ids[1], gen, "t", 0, 5), nil)
		wantErr(t, "stale generation", e.commit("g", ids[1], gen-1, "t", 0, 6), kerr.IllegalGeneration)
		wantErr(t, "unknown member", e.commit("g", "ghost", gen, "t", 0, 6), kerr.UnknownMemberID)
		wantErr(t, "simple commit to a live group", e.commit("g", "", -1, "t", 0, 6), kerr.UnknownMemberID)
		if off, _ := e.fetched("g", "t", 0); off != 5 {
			t.Fatalf("offset %d, want 5: rejected commits must not apply", off)
		}
		// During a rebalance (PreparingRebalance) commits are still taken,
		// so eager consumers can commit while revoking.
		ch := e.joinAsync(joinReq("g", ids[0], nil))
		synctest.Wait()
		wantErr(t, "commit while preparing", e.commit("g", ids[1], gen, "t", 0, 7), nil)
		e.c.JoinGroup(bg, Client{}, joinReq("g", ids[1], nil))
		<-ch
		wantErr(t, "commit while completing", e.commit("g", ids[1], gen+1, "t", 0, 8), kerr.RebalanceInProgress)
	})
}

func TestCommitFailureIsNotApplied(t *testing.T) {
	e := newEnv(t, testConfig())
	e.store.failAppends = 1
	wantErr(t, "failed append", e.commit("g", "", -1, "t", 0, 5), kerr.CoordinatorNotAvailable)
	if off, _ := e.fetched("g", "t", 0); off != -1 {
		t.Fatalf("offset %d after a failed append", off)
	}
}

func TestCommitChecksTopics(t *testing.T) {
	cfg := testConfig()
	id := [16]byte{1}
	cfg.Topics = func() map[string]TopicInfo { return map[string]TopicInfo{"t": {ID: id, Partitions: 2}} }
	e := newEnv(t, cfg)
	wantErr(t, "existing partition", e.commit("g", "", -1, "t", 1, 5), nil)
	wantErr(t, "partition out of range", e.commit("g", "", -1, "t", 2, 5), kerr.UnknownTopicOrPartition)
	wantErr(t, "unknown topic", e.commit("g", "", -1, "nope", 0, 5), kerr.UnknownTopicOrPartition)

	// v10 names topics by ID.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 10
	req.Group = "g"
	req.Topics = []kmsg.OffsetCommitRequestTopic{
		{TopicID: id, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9}}},
		{TopicID: [16]byte{9}, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9}}},
	}
	resp := e.c.OffsetCommit(bg, req)
	wantErr(t, "v10 known ID", code(resp.Topics[0].Partitions[0].ErrorCode), nil)
	wantErr(t, "v10 unknown ID", code(resp.Topics[1].Partitions[0].ErrorCode), kerr.UnknownTopicID)
	fr := kmsg.NewPtrOffsetFetchRequest()
	fr.Version = 10
	fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: id, Partitions: []int32{0, 1}}}}}
	ps := e.c.OffsetFetch(fr).Groups[0].Topics[0].Partitions
	if ps[0].Offset != 9 || ps[1].Offset != 5 {
		t.Fatalf("v10 fetch: %+v", ps)
	}
}

func TestRestartReplaysOffsetsAndGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, gen := e.stableGroup("live", 2)
		wantErr(t, "commit", e.commit("live", ids[0], gen, "t", 0, 100), nil)
		wantErr(t, "commit", e.commit("live", ids[1], gen, "t", 1, 200), nil)
		wantErr(t, "recommit", e.commit("live", ids[1], gen, "t", 1, 201), nil)
		wantErr(t, "simple", e.commit("simple", "", -1, "u", 3, 7), nil)
		before := e.describe("live")

		e.start() // a new coordinator over the same log

		for _, tc := range []struct {
			group, topic string
			p            int32
			want         int64
		}{{"live", "t", 0, 100}, {"live", "t", 1, 201}, {"simple", "u", 3, 7}} {
			if off, err := e.fetched(tc.group, tc.topic, tc.p); err != nil || off != tc.want {
				t.Fatalf("after restart %s %s/%d: %d %v, want %d", tc.group, tc.topic, tc.p, off, err, tc.want)
			}
		}
		after := e.describe("live")
		if after.State != "Stable" || len(after.Members) != 2 || after.Protocol != before.Protocol {
			t.Fatalf("group after restart: %+v", after)
		}
		for i := range before.Members {
			if before.Members[i].MemberID != after.Members[i].MemberID || string(before.Members[i].MemberAssignment) != string(after.Members[i].MemberAssignment) {
				t.Fatalf("member %d: before %+v after %+v", i, before.Members[i], after.Members[i])
			}
		}
		// Members carry on with their generation; one that never comes
		// back expires.
		for range 8 {
			time.Sleep(time.Second)
			if err := e.heartbeat("live", ids[0], gen); err != nil {
				wantErr(t, "heartbeat after restart", err, kerr.RebalanceInProgress)
				return
			}
		}
		t.Fatal("the member that stopped heartbeating was never expired after the restart")
	})
}

func TestDeleteGroupsAndOffsetDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		ids, gen := e.stableGroup("live", 1)
		// The member's metadata is a real consumer subscription to "t".
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"t"}
		req := joinReq("live", ids[0], nil)
		req.Protocols[0].Metadata = meta.AppendTo(nil)
		r := e.c.JoinGroup(bg, Client{}, req)
		gen = r.Generation
		e.sync("live", ids[0], gen, map[string]string{ids[0]: "x"})
		e.commit("live", ids[0], gen, "t", 0, 1)
		e.commit("live", ids[0], gen, "other", 0, 1)
		e.commit("empty", "", -1, "t", 0, 1)

		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group = "live"
		od.Topics = []kmsg.OffsetDeleteRequestTopic{
			{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
			{Topic: "other", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		}
		odr := e.c.OffsetDelete(bg, od)
		wantErr(t, "offset delete top level", code(odr.ErrorCode), nil)
		wantErr(t, "offset delete subscribed", code(odr.Topics[0].Partitions[0].ErrorCode), kerr.GroupSubscribedToTopic)
		wantErr(t, "offset delete unsubscribed", code(odr.Topics[1].Partitions[0].ErrorCode), nil)
		if off, _ := e.fetched("live", "other", 0); off != -1 {
			t.Fatalf("deleted offset still there: %d", off)
		}
		od.Group = "nope"
		wantErr(t, "offset delete unknown group", code(e.c.OffsetDelete(bg, od).ErrorCode), kerr.GroupIDNotFound)

		dg := kmsg.NewPtrDeleteGroupsRequest()
		dg.Groups = []string{"live", "empty", "nope"}
		dr := e.c.DeleteGroups(bg, dg)
		wantErr(t, "delete live", code(dr.Groups[0].ErrorCode), kerr.NonEmptyGroup)
		wantErr(t, "delete empty", code(dr.Groups[1].ErrorCode), nil)
		wantErr(t, "delete unknown", code(dr.Groups[2].ErrorCode), kerr.GroupIDNotFound)
		if d := e.describe("empty"); d.State != "Dead" {
			t.Fatalf("deleted group state %s", d.State)
		}
		// The deletion survives a restart.
		e.start()
		if off, _ := e.fetched("empty", "t", 0); off != -1 {
			t.Fatalf("deleted group's offset back after restart: %d", off)
		}
		lg := e.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5})
		if len(lg.Groups) != 1 || lg.Groups[0].Group != "live" {
			t.Fatalf("groups after restart: %+v", lg.Groups)
		}
	})
}

func TestListGroupsFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		e.stableGroup("stable", 1)
		e.commit("simple", "", -1, "t", 0, 1)
		list := func(states, types []string) []string {
			resp := e.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5, StatesFilter: states, TypesFilter: types})
			var names []string
			for _, g := range resp.Groups {
				names = append(names, g.Group)
			}
			return names
		}
		if got := list([]string{"stable"}, nil); len(got) != 1 || got[0] != "stable" {
			t.Fatalf("state filter: %v", got)
		}
		if got := list([]string{"Empty"}, []string{"CLASSIC"}); len(got) != 1 || got[0] != "simple" {
			t.Fatalf("state and type filter: %v", got)
		}
		if got := list(nil, []string{"consumer"}); len(got) != 0 {
			t.Fatalf("type filter consumer: %v", got)
		}
		if got := list(nil, nil); len(got) != 2 {
			t.Fatalf("no filter: %v", got)
		}
	})
}

func TestDescribeUnknownGroup(t *testing.T) {
	e := newEnv(t, testConfig())
	d := e.describe("nope")
	if d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("v5 unknown group: %+v", d)
	}
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 6
	req.Groups = []string{"nope"}
	d = e.c.DescribeGroups(req).Groups[0]
	if d.State != "Dead" || code(d.ErrorCode) != kerr.GroupIDNotFound {
		t.Fatalf("v6 unknown group: %+v", d)
	}
}

func TestOffsetRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.OffsetsRetention = time.Hour
		cfg.OffsetsRetentionCheckInterval = time.Minute
		e := newEnv(t, cfg)
		ids, gen := e.stableGroup("live", 1)
		e.commit("live", ids[0], gen, "t", 0, 1)
		e.commit("live", ids[0], gen, "x", 0, 1)
		e.commit("simple", "", -1, "t", 0, 1)
		// The live member heartbeats throughout.
		keepAlive := func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				time.Sleep(2 * time.Second)
				wantErr(t, "live heartbeat", e.heartbeat("live", ids[0], gen), nil)
			}
		}
		keepAlive(30 * time.Minute)
		e.commit("simple", "", -1, "t", 1, 2)
		keepAlive(40 * time.Minute)
		if off, _ := e.fetched("simple", "t", 0); off != -1 {
			t.Fatalf("simple consumer's 70 minute old offset not expired: %d", off)
		}
		if off, _ := e.fetched("simple", "t", 1); off != 2 {
			t.Fatalf("simple consumer's 40 minute old offset expired: %d", off)
		}
		// A stable consumer group keeps the offsets of topics it
		// subscribes to; the others expire by commit time.
		if off, _ := e.fetched("live", "t", 0); off != 1 {
			t.Fatalf("stable group's subscribed offset expired: %d", off)
		}
		if off, _ := e.fetched("live", "x", 0); off != -1 {
			t.Fatalf("stable group's unsubscribed offset not expired: %d", off)
		}
		// Once all offsets of the simple group expire, the group goes.
		time.Sleep(time.Hour)
		lg := e.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5})
		for _, g := range lg.Groups {
			if g.Group == "simple" {
				t.Fatalf("simple group still listed after all its offsets expired")
			}
		}
	})
}

func TestTxnOffsetCommitVisibleAfterCommit(t *testing.T) {
	e := newEnv(t, testConfig())
	txn := func(offset int64) error {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 3
		req.TransactionalID = "tx"
		req.Group = "g"
		req.ProducerID = 7
		req.Generation = -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset}}}}
		return code(e.c.TxnOffsetCommit(req).Topics[0].Partitions[0].ErrorCode)
	}
	stable := func() (int64, error) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.RequireStable = true
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
		p := e.c.OffsetFetch(req).Groups[0].Topics[0].Partitions[0]
		return p.Offset, code(p.ErrorCode)
	}
	wantErr(t, "stage", txn(5), nil)
	if off, _ := e.fetched("g", "t", 0); off != -1 {
		t.Fatalf("staged offset visible before commit: %d", off)
	}
	if _, err := stable(); err != kerr.UnstableOffsetCommit {
		t.Fatalf("require_stable with a staged offset: %v", err)
	}
	if err := e.c.CompleteTxn(bg, 7, false); err != nil {
		t.Fatal(err)
	}
	if off, err := stable(); err != nil || off != -1 {
		t.Fatalf("after abort: %d %v", off, err)
	}
	wantErr(t, "stage again", txn(6), nil)
	if err := e.c.CompleteTxn(bg, 7, true); err != nil {
		t.Fatal(err)
	}
	if off, err := stable(); err != nil || off != 6 {
		t.Fatalf("after commit: %d %v", off, err)
	}
	e.start()
	if off, _ := e.fetched("g", "t", 0); off != 6 {
		t.Fatalf("committed transactional offset after restart: %d", off)
	}
}
