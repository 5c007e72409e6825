package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func assignment(parts ...[]int32) []kmsg.CreateTopicsRequestTopicReplicaAssignment {
	var out []kmsg.CreateTopicsRequestTopicReplicaAssignment
	for i, p := range parts {
		out = append(out, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: p})
	}
	return out
}

func TestCreateTopicsErrors(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	h.createOK("exists", 1, 1)
	h.createOK("a.b", 1, 1)
	h.register(4, "") // registered, fenced
	for _, c := range []struct {
		name string
		mod  func(*kmsg.CreateTopicsRequestTopic)
		want *kerr.Error
	}{
		{"exists", func(t *kmsg.CreateTopicsRequestTopic) { t.Topic = "exists" }, kerr.TopicAlreadyExists},
		{"illegal name", func(t *kmsg.CreateTopicsRequestTopic) { t.Topic = "a/b" }, kerr.InvalidTopicException},
		{"empty name", func(t *kmsg.CreateTopicsRequestTopic) { t.Topic = "" }, kerr.InvalidTopicException},
		{"name too long", func(t *kmsg.CreateTopicsRequestTopic) { t.Topic = strings.Repeat("x", 250) }, kerr.InvalidTopicException},
		{"collides with a.b", func(t *kmsg.CreateTopicsRequestTopic) { t.Topic = "a_b" }, kerr.InvalidTopicException},
		{"zero partitions", func(t *kmsg.CreateTopicsRequestTopic) { t.NumPartitions = 0 }, kerr.InvalidPartitions},
		{"partitions -2", func(t *kmsg.CreateTopicsRequestTopic) { t.NumPartitions = -2 }, kerr.InvalidPartitions},
		{"zero replication factor", func(t *kmsg.CreateTopicsRequestTopic) { t.ReplicationFactor = 0 }, kerr.InvalidReplicationFactor},
		{"more replicas than unfenced brokers", func(t *kmsg.CreateTopicsRequestTopic) { t.ReplicationFactor = 4 }, kerr.InvalidReplicationFactor},
		{"unknown config", func(t *kmsg.CreateTopicsRequestTopic) {
			t.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "no.such.config", Value: new("1")}}
		}, kerr.InvalidConfig},
		{"bad config value", func(t *kmsg.CreateTopicsRequestTopic) {
			t.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: new("sometimes")}}
		}, kerr.InvalidConfig},
		{"null config value", func(t *kmsg.CreateTopicsRequestTopic) {
			t.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}
		}, kerr.InvalidConfig},
		{"assignment with a replication factor", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = -1, 2, assignment(ids(1, 2))
		}, kerr.InvalidRequest},
		{"assignment with partitions", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = 1, -1, assignment(ids(1, 2))
		}, kerr.InvalidRequest},
		{"assignment to an unknown broker", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = -1, -1, assignment(ids(1, 9))
		}, kerr.InvalidReplicaAssignment},
		{"assignment with a broker twice", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = -1, -1, assignment(ids(1, 1))
		}, kerr.InvalidReplicaAssignment},
		{"assignment of uneven sizes", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = -1, -1, assignment(ids(1, 2), ids(3))
		}, kerr.InvalidReplicaAssignment},
		{"assignment with a gap", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor = -1, -1
			t.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: ids(1)}, {Partition: 2, Replicas: ids(2)}}
		}, kerr.InvalidReplicaAssignment},
		{"assignment to fenced brokers only", func(t *kmsg.CreateTopicsRequestTopic) {
			t.NumPartitions, t.ReplicationFactor, t.ReplicaAssignment = -1, -1, assignment(ids(4))
		}, kerr.InvalidReplicaAssignment},
		{"more than 10,000 partitions", func(t *kmsg.CreateTopicsRequestTopic) { t.NumPartitions = 10001 }, kerr.PolicyViolation},
	} {
		req := createTopic("new", 3, 2)
		c.mod(&req.Topics[0])
		st := h.do(req).(*kmsg.CreateTopicsResponse).Topics[0]
		if st.ErrorCode != c.want.Code || st.ErrorMessage == nil || st.NumPartitions != -1 {
			t.Errorf("%s: %s %q (partitions %d), want %s", c.name, codeName(st.ErrorCode), str(st.ErrorMessage), st.NumPartitions, c.want.Message)
		}
	}
	if h.image().Topic("new") != nil || h.image().NumTopics() != 2 {
		t.Fatal("a refused topic was created")
	}
}

// One request is one change: the good topics are created together, each bad one is
// refused alone, a name twice is refused, and validate_only changes nothing.
func TestCreateTopicsWholeRequest(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3, "r1", "r2")
	req := createTopic("good1", 2, 3, "retention.ms", "1000")
	req.Topics = append(req.Topics, createTopic("bad", 1, 9).Topics[0], createTopic("dup", 1, 1).Topics[0],
		createTopic("dup", 1, 1).Topics[0], createTopic("good2", -1, -1).Topics[0])
	before := h.image().Offset().Index
	resp := h.do(req).(*kmsg.CreateTopicsResponse)
	want := []int16{0, kerr.InvalidReplicationFactor.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0}
	for i, st := range resp.Topics {
		if st.ErrorCode != want[i] {
			t.Fatalf("topic %d (%s): %s, want %s", i, st.Topic, codeName(st.ErrorCode), codeName(want[i]))
		}
	}
	if got := h.image().Offset().Index; got != before+1 {
		t.Fatalf("the request took %d entries, want 1", got-before)
	}
	im := h.image()
	g1 := im.Topic("good1")
	if g1 == nil || im.Topic("good2") == nil || im.Topic("dup") != nil || im.Topic("bad") != nil {
		t.Fatalf("topics after the request: %v", im.TopicNames())
	}
	if g1.Configs["retention.ms"] != "1000" || resp.Topics[0].TopicID != g1.ID || resp.Topics[0].NumPartitions != 2 || resp.Topics[0].ReplicationFactor != 3 {
		t.Fatalf("good1: %+v, response %+v", g1, resp.Topics[0])
	}
	var retention *kmsg.CreateTopicsResponseTopicConfig
	for i, c := range resp.Topics[0].Configs {
		if c.Name == "retention.ms" {
			retention = &resp.Topics[0].Configs[i]
		}
	}
	if retention == nil || str(retention.Value) != "1000" || retention.Source != 1 {
		t.Fatalf("retention.ms in the v5+ answer: %+v", retention)
	}
	// good2 took the broker defaults: num.partitions and default.replication.factor (1).
	if g2 := im.Topic("good2"); g2.NumPartitions() != 1 || g2.ReplicationFactor() != 1 {
		t.Fatalf("good2: %d partitions, rf %d", g2.NumPartitions(), g2.ReplicationFactor())
	}
	for i, p := range g1.Partitions {
		if !slices.Equal(p.ISR(), p.Replicas()) || p.Leader != p.Replicas()[0] || p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
			t.Fatalf("good1-%d: replicas %v isr %v leader %d", i, p.Replicas(), p.ISR(), p.Leader)
		}
	}

	// validate_only: the same answer, nothing written.
	v := createTopic("validated", 3, 2)
	v.ValidateOnly = true
	before = h.image().Offset().Index
	if st := h.do(v).(*kmsg.CreateTopicsResponse).Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 3 {
		t.Fatalf("validate_only: %+v", st)
	}
	if h.image().Topic("validated") != nil || h.image().Offset().Index != before {
		t.Fatal("validate_only created the topic")
	}
}

// Explicit assignments: the ISR is the active replicas, the leader the first of them.
func TestCreateTopicsWithAssignment(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	h.register(4, "") // fenced
	req := createTopic("assigned", -1, -1)
	req.Topics[0].ReplicaAssignment = assignment(ids(4, 2), ids(3, 1))
	if st := h.do(req).(*kmsg.CreateTopicsResponse).Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 2 || st.ReplicationFactor != 2 {
		t.Fatalf("create with an assignment: %s %s", codeName(st.ErrorCode), str(st.ErrorMessage))
	}
	ps := h.image().Topic("assigned").Partitions
	if !slices.Equal(ps[0].Replicas(), ids(4, 2)) || !slices.Equal(ps[0].ISR(), ids(2)) || ps[0].Leader != 2 {
		t.Fatalf("partition 0: replicas %v isr %v leader %d", ps[0].Replicas(), ps[0].ISR(), ps[0].Leader)
	}
	if !slices.Equal(ps[1].ISR(), ids(3, 1)) || ps[1].Leader != 3 {
		t.Fatalf("partition 1: isr %v leader %d", ps[1].ISR(), ps[1].Leader)
	}
}

// Kafka's limit of 10,000 records per change refuses the request whole.
func TestCreateTopicsRecordLimit(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(1)
	req := kmsg.NewPtrCreateTopicsRequest()
	for i := range 3 {
		req.Topics = append(req.Topics, createTopic(fmt.Sprintf("t%d", i), 3500, 1).Topics[0])
	}
	resp := h.do(req).(*kmsg.CreateTopicsResponse)
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.PolicyViolation.Code {
			t.Fatalf("%s: %s, want POLICY_VIOLATION", st.Topic, codeName(st.ErrorCode))
		}
	}
	if h.image().NumTopics() != 0 {
		t.Fatal("topics of a refused request were created")
	}
}

func deleteByName(version int16, names ...string) *kmsg.DeleteTopicsRequest {
	r := kmsg.NewPtrDeleteTopicsRequest()
	r.Version = version
	if version >= 6 {
		for _, n := range names {
			r.Topics = append(r.Topics, kmsg.DeleteTopicsRequestTopic{Topic: new(n)})
		}
	} else {
		r.TopicNames = names
	}
	return r
}

func TestDeleteTopics(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(1)
	a, b := h.createOK("a", 1, 1), h.createOK("b", 2, 1)
	h.createOK("__consumer_offsets", 1, 1)
	h.createOK("c", 1, 1)

	req := deleteByName(6, "a", "missing", "__consumer_offsets", "c", "c")
	req.Topics = append(req.Topics, kmsg.DeleteTopicsRequestTopic{TopicID: b.ID}, kmsg.DeleteTopicsRequestTopic{TopicID: uuid.New()},
		kmsg.DeleteTopicsRequestTopic{Topic: new("a"), TopicID: a.ID}, kmsg.DeleteTopicsRequestTopic{})
	resp := h.do(req).(*kmsg.DeleteTopicsResponse)
	want := []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code,
		kerr.InvalidRequest.Code, 0, kerr.UnknownTopicID.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	if len(resp.Topics) != len(want) {
		t.Fatalf("%d answers for %d topics", len(resp.Topics), len(want))
	}
	for i, st := range resp.Topics {
		if st.ErrorCode != want[i] {
			t.Errorf("topic %d (%s %v): %s, want %s", i, str(st.Topic), uuid.UUID(st.TopicID), codeName(st.ErrorCode), codeName(want[i]))
		}
	}
	if st := resp.Topics[5]; str(st.Topic) != "b" || st.TopicID != b.ID {
		t.Fatalf("deletion by ID answers name %s and ID %v", str(st.Topic), uuid.UUID(st.TopicID))
	}
	im := h.image()
	if im.Topic("a") != nil || im.Topic("b") != nil || im.Topic("c") == nil || im.Topic("__consumer_offsets") == nil {
		t.Fatalf("topics left: %v", im.TopicNames())
	}
	// delete.topic.enable=false refuses the request.
	h2 := newHarness(t, func(c *Config) { c.Broker.DeleteTopicEnable = false })
	h2.unfencedBrokers(1)
	h2.createOK("x", 1, 1)
	for v, code := range map[int16]int16{2: kerr.InvalidRequest.Code, 5: kerr.TopicDeletionDisabled.Code} {
		if st := h2.do(deleteByName(v, "x")).(*kmsg.DeleteTopicsResponse).Topics[0]; st.ErrorCode != code {
			t.Fatalf("deletion disabled, v%d: %s", v, codeName(st.ErrorCode))
		}
	}
}

func createPartitionsReq(topic string, count int32, assign ...[]int32) *kmsg.CreatePartitionsRequest {
	r := kmsg.NewPtrCreatePartitionsRequest()
	t := kmsg.CreatePartitionsRequestTopic{Topic: topic, Count: count}
	for _, a := range assign {
		t.Assignment = append(t.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: a})
	}
	r.Topics = append(r.Topics, t)
	return r
}

func TestCreatePartitions(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	h.createOK("t", 2, 2)
	for _, c := range []struct {
		name string
		req  *kmsg.CreatePartitionsRequest
		want *kerr.Error
	}{
		{"unknown topic", createPartitionsReq("nope", 3), kerr.UnknownTopicOrPartition},
		{"same count", createPartitionsReq("t", 2), kerr.InvalidPartitions},
		{"fewer", createPartitionsReq("t", 1), kerr.InvalidPartitions},
		{"assignments for fewer partitions", createPartitionsReq("t", 4, ids(1, 2)), kerr.InvalidReplicaAssignment},
		{"assignment of another size", createPartitionsReq("t", 3, ids(1, 2, 3)), kerr.InvalidReplicaAssignment},
		{"assignment to an unknown broker", createPartitionsReq("t", 3, ids(1, 8)), kerr.InvalidReplicaAssignment},
		{"more than 10,000", createPartitionsReq("t", 10003), kerr.PolicyViolation},
	} {
		if st := h.do(c.req).(*kmsg.CreatePartitionsResponse).Topics[0]; st.ErrorCode != c.want.Code {
			t.Errorf("%s: %s %s, want %s", c.name, codeName(st.ErrorCode), str(st.ErrorMessage), c.want.Message)
		}
	}
	twice := createPartitionsReq("t", 3)
	twice.Topics = append(twice.Topics, twice.Topics[0])
	for _, st := range h.do(twice).(*kmsg.CreatePartitionsResponse).Topics {
		if st.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("a topic twice: %s", codeName(st.ErrorCode))
		}
	}
	if n := h.image().Topic("t").NumPartitions(); n != 2 {
		t.Fatalf("refused requests changed the partition count to %d", n)
	}
	v := createPartitionsReq("t", 5)
	v.ValidateOnly = true
	if st := h.do(v).(*kmsg.CreatePartitionsResponse).Topics[0]; st.ErrorCode != 0 || h.image().Topic("t").NumPartitions() != 2 {
		t.Fatalf("validate_only: %s, %d partitions", codeName(st.ErrorCode), h.image().Topic("t").NumPartitions())
	}
	if st := h.do(createPartitionsReq("t", 4, ids(3, 1), ids(2, 3))).(*kmsg.CreatePartitionsResponse).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("with an assignment: %s", codeName(st.ErrorCode))
	}
	if st := h.do(createPartitionsReq("t", 6)).(*kmsg.CreatePartitionsResponse).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("placed: %s", codeName(st.ErrorCode))
	}
	tp := h.image().Topic("t")
	if tp.NumPartitions() != 6 || !slices.Equal(tp.Partitions[2].Replicas(), ids(3, 1)) || tp.Partitions[2].Leader != 3 {
		t.Fatalf("after growing: %d partitions, partition 2 %v led by %d", tp.NumPartitions(), tp.Partitions[2].Replicas(), tp.Partitions[2].Leader)
	}
	for i, p := range tp.Partitions {
		if len(p.Replicas()) != 2 {
			t.Fatalf("partition %d has %d replicas, want the topic's 2", i, len(p.Replicas()))
		}
	}
}
