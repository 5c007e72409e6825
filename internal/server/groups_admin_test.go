package server_test

// The group admin APIs through kadm, as an operator's tool sees them: ListGroups
// with state and type filters, DescribeGroups with members and assignments,
// DeleteGroups refusing a group with members, OffsetDelete, and OffsetFetch of a
// group that does not exist (answered like Kafka: no error, offset -1).

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func groupNames(ls kadm.ListedGroups) []string {
	var out []string
	for g := range ls {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func TestGroupAdmin(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	const topic, parts = "admin", 3
	n.createTopic(t, topic, parts, nil)
	records := produceN(t, n.producerClient(), topic, parts, "r", 30)
	adm := n.admin()
	ctx := ctxT(t)

	// "active": a classic group with one member consuming.
	led := newLedger()
	active := startFranzMember(t, n, led, "active-1", "active", topic, kgo.Balancers(kgo.RangeBalancer()))
	d := waitStableGroup(t, adm, "active", topic, parts, "active-1")
	led.waitAll(t, values(records), 30*time.Second) // and committed: 10 per partition
	// "idle": offsets committed by a simple consumer (generation -1), no members.
	idleOffsets := kadm.Offsets{}
	idleOffsets.AddOffset(topic, 0, 5, -1)
	idleOffsets.AddOffset(topic, 1, 7, -1)
	idleOffsets.AddOffset(topic, 2, 9, -1)
	for _, g := range []string{"idle", "idle2"} {
		if resp, err := adm.CommitOffsets(ctx, g, idleOffsets); err != nil || resp.Error() != nil {
			t.Fatalf("commit %s: %v %v", g, err, resp.Error())
		}
	}
	// "nextgen": a KIP-848 group with one member.
	ng := newCGMember(t, n, "nextgen", topicID(t, n, topic))
	if err := ng.heartbeat(topic); err != nil {
		t.Fatalf("nextgen join: %v", err)
	}

	// ListGroups, unfiltered and by state and type.
	all, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(groupNames(all)); got != "[active idle idle2 nextgen]" {
		t.Errorf("groups %s", got)
	}
	if g := all["active"]; g.State != "Stable" || g.ProtocolType != "consumer" || g.GroupType != "classic" {
		t.Errorf("active listed as %+v", g)
	}
	if g := all["nextgen"]; g.GroupType != "consumer" {
		t.Errorf("nextgen listed as %+v", g)
	}
	for _, tc := range []struct {
		states, types []string
		want          string
	}{
		{states: []string{"Empty"}, want: "[idle idle2]"},
		{states: []string{"Stable"}, want: "[active nextgen]"},
		{states: []string{"PreparingRebalance"}, want: "[]"},
		{types: []string{"classic"}, want: "[active idle idle2]"},
		{types: []string{"consumer"}, want: "[nextgen]"},
		{states: []string{"Stable"}, types: []string{"classic"}, want: "[active]"},
	} {
		ls, err := adm.ListGroupsByType(ctx, tc.types, tc.states...)
		if err != nil {
			t.Fatalf("list %v %v: %v", tc.states, tc.types, err)
		}
		if got := fmt.Sprint(groupNames(ls)); got != tc.want {
			t.Errorf("list states %v types %v: %s, want %s", tc.states, tc.types, got, tc.want)
		}
	}

	// DescribeGroups: the member, its client, host and assignment.
	if len(d.Members) != 1 || d.Protocol != "range" || d.ProtocolType != "consumer" {
		t.Fatalf("described active: %+v", d)
	}
	m := d.Members[0]
	c, _ := m.Assigned.AsConsumer()
	if m.ClientID != "active-1" || m.ClientHost != "/127.0.0.1" || len(c.Topics) != 1 || fmt.Sprint(c.Topics[0].Partitions) != "[0 1 2]" {
		t.Errorf("member: client %q host %q assignment %+v", m.ClientID, m.ClientHost, c.Topics)
	}
	idle, err := adm.DescribeGroups(ctx, "idle", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if g := idle["idle"]; g.Err != nil || g.State != "Empty" || len(g.Members) != 0 {
		t.Errorf("described idle: state %q members %d err %v", g.State, len(g.Members), g.Err)
	}
	if g := idle["never-was"]; g.Err != nil || g.State != "Dead" {
		t.Errorf("described unknown group: state %q err %v, want Dead and no error", g.State, g.Err)
	}

	// DeleteGroups: refused while the group has members, done when it has none.
	del, err := adm.DeleteGroups(ctx, "active", "idle", "nextgen", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]error{"active": kerr.NonEmptyGroup, "nextgen": kerr.NonEmptyGroup, "idle": nil, "never-was": kerr.GroupIDNotFound} {
		if got := del[g].Err; got != want {
			t.Errorf("delete %s: %v, want %v", g, got, want)
		}
	}
	if offs, err := adm.FetchOffsets(ctx, "idle"); err != nil || len(offs) != 0 {
		t.Errorf("offsets of the deleted group: %v %v, want none", offs, err)
	}

	// OffsetDelete: a group with no members loses the one partition asked for; a
	// group consuming the topic refuses.
	od, err := adm.DeleteOffsets(ctx, "idle2", kadm.TopicsSet{topic: {1: {}}})
	if err != nil || od.Error() != nil {
		t.Fatalf("offset delete: %v %v", err, od.Error())
	}
	offs, err := adm.FetchOffsets(ctx, "idle2")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	offs.Each(func(o kadm.OffsetResponse) { left = append(left, fmt.Sprintf("%d:%d", o.Partition, o.At)) })
	slices.Sort(left)
	if fmt.Sprint(left) != "[0:5 2:9]" {
		t.Errorf("offsets after deleting partition 1: %v, want [0:5 2:9]", left)
	}
	// A simple consumer's commit (generation -1, no member ID) into a group with
	// members is refused, as Kafka refuses it: the offsets stay the member's.
	cr, err := adm.CommitOffsets(ctx, "active", idleOffsets)
	if err != nil {
		t.Fatal(err)
	}
	if e := cr.Error(); e != kerr.UnknownMemberID {
		t.Errorf("simple commit into a group with members: %v, want UNKNOWN_MEMBER_ID", e)
	}
	od, err = adm.DeleteOffsets(ctx, "active", kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := od.Lookup(topic, 0); e != kerr.GroupSubscribedToTopic {
		t.Errorf("offset delete in a group consuming the topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", e)
	}

	// OffsetFetch of a group that never existed: every partition asked for is
	// answered with offset -1 and no error, in the old and the multi-group form.
	for _, v := range []int16{7, 8} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 1, 2}
		if v < 8 {
			req.Group, req.Topics = "nobody", []kmsg.OffsetFetchRequestTopic{rt}
		} else {
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "nobody"
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = topic, rt.Partitions
			g.Topics = append(g.Topics, gt)
			req.Groups = append(req.Groups, g)
		}
		resp, err := req.RequestWith(ctx, n.client())
		if err != nil {
			t.Fatalf("offset fetch v%d: %v", v, err)
		}
		var got []string
		code := resp.ErrorCode
		if v < 8 {
			for _, rt := range resp.Topics {
				for _, p := range rt.Partitions {
					got = append(got, fmt.Sprintf("%d:%d:%d", p.Partition, p.Offset, p.ErrorCode))
				}
			}
		} else {
			code = resp.Groups[0].ErrorCode
			for _, rt := range resp.Groups[0].Topics {
				for _, p := range rt.Partitions {
					got = append(got, fmt.Sprintf("%d:%d:%d", p.Partition, p.Offset, p.ErrorCode))
				}
			}
		}
		if code != 0 || fmt.Sprint(got) != "[0:-1:0 1:-1:0 2:-1:0]" {
			t.Errorf("offset fetch v%d of an unknown group: error %v partitions %v, want no error and -1 each", v, kerr.ErrorForCode(code), got)
		}
	}
	// One v8 request for several groups: each answered on its own.
	multi := kmsg.NewPtrOffsetFetchRequest()
	multi.Version = 8
	for _, name := range []string{"idle2", "nobody", "active"} {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = name
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = topic, []int32{0, 1, 2}
		g.Topics = append(g.Topics, gt)
		multi.Groups = append(multi.Groups, g)
	}
	mresp, err := multi.RequestWith(ctx, n.client())
	if err != nil {
		t.Fatalf("multi-group offset fetch: %v", err)
	}
	gotGroups := map[string]string{}
	for _, g := range mresp.Groups {
		var ps []string
		for _, rt := range g.Topics {
			for _, p := range rt.Partitions {
				ps = append(ps, fmt.Sprintf("%d:%d", p.Partition, p.Offset))
			}
		}
		slices.Sort(ps)
		gotGroups[g.Group] = fmt.Sprint(kerr.ErrorForCode(g.ErrorCode), ps)
	}
	for g, want := range map[string]string{
		"idle2":  "<nil> [0:5 1:-1 2:9]",
		"nobody": "<nil> [0:-1 1:-1 2:-1]",
		"active": "<nil> [0:10 1:10 2:10]", // what its member consumed and committed
	} {
		if gotGroups[g] != want {
			t.Errorf("multi-group offset fetch, group %s: %q, want %q", g, gotGroups[g], want)
		}
	}

	kfo, err := adm.FetchOffsetsForTopics(ctx, "nobody", topic)
	if err != nil || kfo.Error() != nil {
		t.Fatalf("kadm fetch offsets of an unknown group: %v %v", err, kfo.Error())
	}
	kfo.Each(func(o kadm.OffsetResponse) {
		if o.At != -1 {
			t.Errorf("unknown group partition %d at %d, want -1", o.Partition, o.At)
		}
	})

	active.stop()
	if err := ng.leave(); err != nil {
		t.Fatalf("nextgen leave: %v", err)
	}
	// Now both are empty and can go.
	del, err = adm.DeleteGroups(ctx, "active", "nextgen")
	if err != nil || del.Error() != nil {
		t.Fatalf("delete emptied groups: %v %v", err, del.Error())
	}
	left2, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(groupNames(left2)); got != "[idle2]" {
		t.Errorf("groups after deletes: %s, want [idle2]", got)
	}
}
