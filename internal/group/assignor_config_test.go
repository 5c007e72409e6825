package group

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config.ConsumerAssignors is group.consumer.assignors: the assignors a KIP-848
// member may name in ServerAssignor, the first the group's default.

func newAssignorEnv(t *testing.T, assignors ...string) *testEnv {
	t.Helper()
	tt := &testTopics{topics: map[string]TopicInfo{
		"t": {ID: topicT, Partitions: 4},
		"u": {ID: topicU, Partitions: 2},
	}}
	cfg := testConfig()
	cfg.Topics = tt.get
	cfg.ConsumerAssignors = assignors
	return newEnv(t, cfg)
}

func describeConsumerGroup(t *testing.T, e *testEnv, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	d := e.c.ConsumerGroupDescribe(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{group}}).Groups[0]
	if err := code(d.ErrorCode); err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return d
}

// targetOf returns a member's target partitions of topic name, as described.
func targetOf(d kmsg.ConsumerGroupDescribeResponseGroup, member, topic string) []int32 {
	for _, m := range d.Members {
		if m.MemberID != member {
			continue
		}
		for _, tp := range m.TargetAssignment.TopicPartitions {
			if tp.Topic == topic {
				return tp.Partitions
			}
		}
	}
	return nil
}

func TestConsumerAssignorsDefaultIsFirstConfigured(t *testing.T) {
	for _, tc := range []struct {
		configured []string
		want       string
	}{
		{nil, "uniform"}, // Kafka's default: uniform, range
		{[]string{"uniform", "range"}, "uniform"},
		{[]string{"range", "uniform"}, "range"},
		{[]string{"range"}, "range"},
	} {
		e := newAssignorEnv(t, tc.configured...)
		mustHB(t, "m1 joins", e.cgHeartbeat("g", hb{member: "m1", names: []string{"t", "u"}}))
		mustHB(t, "m2 joins", e.cgHeartbeat("g", hb{member: "m2", names: []string{"t", "u"}}))
		d := describeConsumerGroup(t, e, "g")
		if d.AssignorName != tc.want {
			t.Fatalf("configured %v: group assignor %q, want %q", tc.configured, d.AssignorName, tc.want)
		}
		// Range gives m1, first by id, the first half of t.
		if got := targetOf(d, "m1", "t"); tc.want == "range" && !slices.Equal(got, []int32{0, 1}) {
			t.Fatalf("configured %v: m1's target of t is %v, want range's [0 1]", tc.configured, got)
		}
	}
}

func TestConsumerAssignorUnconfiguredIsUnsupported(t *testing.T) {
	e := newAssignorEnv(t, "uniform")
	for _, name := range []string{"range", "sticky", "org.apache.kafka.coordinator.group.assignor.RangeAssignor"} {
		r := e.cgHeartbeat("g", hb{member: "m1", names: []string{"t"}, assignor: kmsg.StringPtr(name)})
		wantErr(t, "asking for "+name, code(r.ErrorCode), kerr.UnsupportedAssignor)
		if r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, name) || !strings.HasSuffix(*r.ErrorMessage, "Supported assignors: uniform.") {
			t.Fatalf("asking for %s: message %v, want it to name the assignor and the supported ones", name, r.ErrorMessage)
		}
	}
	if kerr.UnsupportedAssignor.Code != 112 {
		t.Fatalf("UNSUPPORTED_ASSIGNOR is code %d, want 112", kerr.UnsupportedAssignor.Code)
	}
	// The refused member did not join: the group does not exist.
	d := e.c.ConsumerGroupDescribe(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}}).Groups[0]
	if d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("group after refused joins: %v, %d members", code(d.ErrorCode), len(d.Members))
	}
	// A later heartbeat of a joined member is checked the same way.
	r := mustHB(t, "m1 joins", e.cgHeartbeat("g", hb{member: "m1", names: []string{"t"}}))
	r = e.cgHeartbeat("g", hb{member: "m1", epoch: r.MemberEpoch, assignor: kmsg.StringPtr("range")})
	wantErr(t, "joined member asking for range", code(r.ErrorCode), kerr.UnsupportedAssignor)
}

func TestConsumerAssignorConfiguredIsUsed(t *testing.T) {
	e := newAssignorEnv(t, "uniform", "range")
	rng := kmsg.StringPtr("range")
	mustHB(t, "m1 joins asking for range", e.cgHeartbeat("g", hb{member: "m1", names: []string{"t", "u"}, assignor: rng}))
	mustHB(t, "m2 joins asking for range", e.cgHeartbeat("g", hb{member: "m2", names: []string{"t", "u"}, assignor: rng}))
	d := describeConsumerGroup(t, e, "g")
	if d.AssignorName != "range" {
		t.Fatalf("group assignor %q, want range", d.AssignorName)
	}
	for _, want := range []struct {
		member, topic string
		parts         []int32
	}{
		{"m1", "t", []int32{0, 1}}, {"m2", "t", []int32{2, 3}},
		{"m1", "u", []int32{0}}, {"m2", "u", []int32{1}},
	} {
		got := targetOf(d, want.member, want.topic)
		if !slices.Equal(got, want.parts) {
			t.Fatalf("%s's target of %s is %v, want %v (range)", want.member, want.topic, got, want.parts)
		}
	}

	// The same choice survives a restart: the assignor is in the group's records.
	e.start()
	if d := describeConsumerGroup(t, e, "g"); d.AssignorName != "range" {
		t.Fatalf("after restart: group assignor %q, want range", d.AssignorName)
	}
}
