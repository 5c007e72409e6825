package handler

// AlterPartitionReassignments v0-1 and ListPartitionReassignments v0 on the clients'
// listeners: forwarded to the active controller, which decides them (internal/controller,
// reassign.go), and its answer returned as it is, as Kafka's brokers forward them. With no
// controller to answer within request.timeout.ms, the top-level error code says why
// (REQUEST_TIMED_OUT, or NOT_CONTROLLER), and for AlterPartitionReassignments every
// partition carries it too.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/controller"
)

func (h *Handler) alterPartitionReassignments(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.forwardReassignment(ctx, kr)
}

func (h *Handler) listPartitionReassignments(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.forwardReassignment(ctx, kr)
}

func (h *Handler) forwardReassignment(ctx context.Context, req kmsg.Request) kmsg.Response {
	resp, err := h.b.Forward(ctx, req)
	if err != nil {
		return controller.ErrorResponse(req, codeOf(err), errMsg(err))
	}
	return resp
}
