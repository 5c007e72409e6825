package handler

// CreateTopics v0-7, decided by the active controller (forwarded to it by the broker):
// names checked as Kafka does, partitions and replication factor (or -1 for the broker
// defaults, v4+) placed over the unfenced brokers, a manual replica assignment checked
// against the registered brokers, configs validated (INVALID_CONFIG), validate_only (v1+), and from v5 the
// resulting partition count, replication factor and configs in the answer.
//
// The topics of one request are created as one change, as Kafka's controller does: a
// request whose change would take more than 10,000 metadata records (a topic record, one
// per partition, one per config) is refused whole with POLICY_VIOLATION, and a topic
// whose partitions or record could not be stored is answered KAFKA_STORAGE_ERROR and does
// not exist afterwards (the broker's CreateTopics).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) createTopics(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	errs := make([]error, len(req.Topics))
	var specs []broker.TopicSpec
	var at []int // request index of each spec
	for i, rt := range req.Topics {
		spec, err := h.topicSpec(rt, seen[rt.Topic])
		if err != nil {
			errs[i] = err
			continue
		}
		specs = append(specs, spec)
		at = append(at, i)
	}
	created := make([]*broker.TopicResult, len(req.Topics))
	for k, r := range h.b.CreateTopics(specs, req.ValidateOnly) {
		created[at[k]] = &r
	}
	for i, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		err := errs[i]
		if r := created[i]; r != nil {
			err = r.Err
			if err == nil {
				t := r.Topic
				st.TopicID = t.ID
				st.NumPartitions, st.ReplicationFactor = t.Partitions, t.ReplicationFactor
				if req.Version >= 5 {
					for _, e := range h.b.TopicConfigEntries(t.Configs, nil, false) {
						st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{
							Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly, Source: e.Source, IsSensitive: e.Sensitive,
						})
					}
				}
			}
		}
		if err != nil {
			st.ErrorCode = codeOf(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// topicSpec checks what the request alone decides about one topic.
func (h *Handler) topicSpec(rt kmsg.CreateTopicsRequestTopic, seen int) (broker.TopicSpec, error) {
	if seen > 1 {
		return broker.TopicSpec{}, fmt.Errorf("%w: topic %s appears more than once in the request", kerr.InvalidRequest, rt.Topic)
	}
	// An explicit assignment is checked by the controller (against the registered
	// brokers), as Kafka's is. Its partitions may come in any order (sarama lists them
	// from a map), but must be 0..n-1, each once, as Kafka's ReplicationControlManager
	// requires.
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return broker.TopicSpec{}, fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", kerr.InvalidRequest)
		}
		n := len(rt.ReplicaAssignment)
		assignment = make([][]int32, n)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= n {
				return broker.TopicSpec{}, fmt.Errorf("%w: partitions should be a consecutive 0-based integer sequence", kerr.InvalidReplicaAssignment)
			}
			if assignment[a.Partition] != nil {
				return broker.TopicSpec{}, fmt.Errorf("%w: found multiple manual partition assignments for partition %d", kerr.InvalidReplicaAssignment, a.Partition)
			}
			replicas := a.Replicas
			if replicas == nil {
				replicas = []int32{} // the controller refuses an empty replica list
			}
			assignment[a.Partition] = replicas
		}
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return broker.TopicSpec{}, fmt.Errorf("%w: null value not supported for topic config %s", kerr.InvalidConfig, c.Name)
		}
		configs[c.Name] = *c.Value
	}
	return broker.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, Configs: configs, Assignment: assignment}, nil
}
