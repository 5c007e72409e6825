package handler

// CreatePartitions v0-3: raise a topic's partition count (never lower it:
// INVALID_PARTITIONS); a manual assignment must name registered brokers (the active
// controller decides, forwarded to by the broker); validate_only.
//
// The topics of one request are changed as one change, as Kafka's controller does: one
// that would take more than 10,000 metadata records (one per new partition) is refused
// whole with POLICY_VIOLATION, and partitions that could not be stored are answered
// KAFKA_STORAGE_ERROR and do not exist afterwards (the broker's CreatePartitions).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) createPartitions(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	errs := make([]error, len(req.Topics))
	var specs []broker.PartitionsSpec
	var at []int
	for i, rt := range req.Topics {
		errs[i] = func() error {
			if seen[rt.Topic] > 1 {
				return fmt.Errorf("%w: topic %s appears more than once in the request", kerr.InvalidRequest, rt.Topic)
			}
			return nil
		}()
		if errs[i] == nil {
			spec := broker.PartitionsSpec{Topic: rt.Topic, Count: rt.Count}
			for _, a := range rt.Assignment { // checked by the controller
				spec.Assignment = append(spec.Assignment, a.Replicas)
			}
			specs = append(specs, spec)
			at = append(at, i)
		}
	}
	for k, err := range h.b.CreatePartitions(specs, req.ValidateOnly) {
		errs[at[k]] = err
	}
	for i, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if err := errs[i]; err != nil {
			st.ErrorCode = codeOf(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
