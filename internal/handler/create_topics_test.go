package handler

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A replica assignment may list its partitions in any order, as Kafka takes it: sarama
// builds the list from a Go map (TopicDetail.ReplicaAssignment), so its order is random.
// The partitions must still be 0..n-1, each once.
func TestTopicSpecReplicaAssignmentOrder(t *testing.T) {
	req := func(parts ...int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", -1, -1
		for _, p := range parts {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, []int32{p + 10, p + 20}
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		return rt
	}
	h := &Handler{}
	spec, err := h.topicSpec(req(2, 0, 1), 1)
	if err != nil {
		t.Fatalf("partitions 2, 0, 1: %v", err)
	}
	if want := [][]int32{{10, 20}, {11, 21}, {12, 22}}; !reflect.DeepEqual(spec.Assignment, want) {
		t.Fatalf("assignment %v, want %v (by partition)", spec.Assignment, want)
	}
	for _, tc := range []struct {
		name  string
		parts []int32
		msg   string
	}{
		{"gap", []int32{0, 2}, "consecutive 0-based"},
		{"not from 0", []int32{1, 2}, "consecutive 0-based"},
		{"negative", []int32{-1, 0}, "consecutive 0-based"},
		{"twice", []int32{1, 0, 1}, "multiple manual partition assignments for partition 1"},
	} {
		_, err := h.topicSpec(req(tc.parts...), 1)
		if !errors.Is(err, kerr.InvalidReplicaAssignment) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %v: %v, want INVALID_REPLICA_ASSIGNMENT with %q", tc.name, tc.parts, err, tc.msg)
		}
	}
}
