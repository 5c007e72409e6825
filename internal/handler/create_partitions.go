package handler

// CreatePartitions v0-3: raise a topic's partition count (never lower it:
// INVALID_PARTITIONS); a manual assignment must name live brokers; validate_only.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) createPartitions(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := func() error {
			if seen[rt.Topic] > 1 {
				return fmt.Errorf("%w: topic %s appears more than once in the request", kerr.InvalidRequest, rt.Topic)
			}
			for _, a := range rt.Assignment {
				for _, r := range a.Replicas {
					if r != h.b.NodeID() {
						return fmt.Errorf("%w: broker %d is not alive", kerr.InvalidReplicaAssignment, r)
					}
				}
			}
			return h.b.CreatePartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}()
		if err != nil {
			st.ErrorCode = codeOf(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
