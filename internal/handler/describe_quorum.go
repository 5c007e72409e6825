package handler

// DescribeQuorum v0-2 on the clients' listeners: forwarded to the active controller, as
// Kafka's brokers forward it (kafka-metadata-quorum --bootstrap-server), and its answer
// returned as it is (the quorum's leader, epoch, high watermark, voters and observers
// with their lag). With no controller to answer within request.timeout.ms, the error
// code says why (REQUEST_TIMED_OUT, or NOT_LEADER_OR_FOLLOWER from a controller that no
// longer leads).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) describeQuorum(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeQuorumRequest)
	resp, err := h.b.Forward(ctx, req)
	if err != nil {
		r := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
		r.ErrorCode = codeOf(err)
		if req.Version >= 2 {
			r.ErrorMessage = errMsg(err)
		}
		return r
	}
	return resp
}
