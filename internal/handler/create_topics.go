package handler

// CreateTopics v0-7: names checked as Kafka does, partitions and replication factor (or
// -1 for the broker defaults, v4+), a manual replica assignment checked against the live
// brokers, configs validated (INVALID_CONFIG), validate_only (v1+), and from v5 the
// resulting partition count, replication factor and configs in the answer.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) createTopics(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		err := func() error {
			if seen[rt.Topic] > 1 {
				return fmt.Errorf("%w: topic %s appears more than once in the request", kerr.InvalidRequest, rt.Topic)
			}
			partitions, rf := rt.NumPartitions, rt.ReplicationFactor
			if len(rt.ReplicaAssignment) > 0 {
				if partitions != -1 || rf != -1 {
					return fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", kerr.InvalidRequest)
				}
				partitions = int32(len(rt.ReplicaAssignment))
				for i, a := range rt.ReplicaAssignment {
					if a.Partition != int32(i) {
						return fmt.Errorf("%w: partitions of a replica assignment must be 0..n-1", kerr.InvalidReplicaAssignment)
					}
					if len(a.Replicas) == 0 {
						return fmt.Errorf("%w: partition %d has no replicas", kerr.InvalidReplicaAssignment, i)
					}
					for _, r := range a.Replicas {
						if r != h.b.NodeID() {
							return fmt.Errorf("%w: broker %d is not alive", kerr.InvalidReplicaAssignment, r)
						}
					}
					if rf == -1 {
						rf = int16(len(a.Replicas))
					}
				}
			}
			configs := map[string]string{}
			for _, c := range rt.Configs {
				if c.Value == nil {
					return fmt.Errorf("%w: null value not supported for topic config %s", kerr.InvalidConfig, c.Name)
				}
				configs[c.Name] = *c.Value
			}
			t, err := h.b.CreateTopic(rt.Topic, partitions, rf, configs, req.ValidateOnly)
			if err != nil {
				return err
			}
			st.TopicID = t.ID
			st.NumPartitions, st.ReplicationFactor = t.Partitions, t.ReplicationFactor
			if req.Version >= 5 {
				for _, e := range h.b.TopicConfigEntries(t.Configs, nil, false) {
					st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{
						Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly, Source: e.Source, IsSensitive: e.Sensitive,
					})
				}
			}
			return nil
		}()
		if err != nil {
			st.ErrorCode = codeOf(err)
			st.ErrorMessage = errMsg(err)
			st.NumPartitions, st.ReplicationFactor = -1, -1
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
