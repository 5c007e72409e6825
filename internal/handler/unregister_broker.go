package handler

// UnregisterBroker v0 on the clients' listeners (kafka-cluster.sh unregister, Admin's
// unregisterBroker): forwarded to the active controller, as Kafka's brokers forward it,
// which removes the broker's registration once its leaderships and ISR places have
// moved; its answer is returned as it is (BROKER_ID_NOT_REGISTERED for an unknown ID).
// With no controller to answer within request.timeout.ms, the error code says why.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) unregisterBroker(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.UnregisterBrokerRequest)
	resp, err := h.b.Forward(ctx, req)
	if err != nil {
		r := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
		r.ErrorCode, r.ErrorMessage = codeOf(err), errMsg(err)
		return r
	}
	return resp
}
