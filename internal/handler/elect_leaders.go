package handler

// ElectLeaders v0-2 (KIP-183, KIP-460: preferred and unclean elections): forwarded to the
// active controller, which decides it (internal/controller/elect.go), and answered once
// this node's image has the new leaders. With no controller to answer within
// request.timeout.ms, every partition named carries the error.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/controller"
)

func (h *Handler) electLeaders(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.ElectLeadersRequest)
	resp, err := h.b.ForwardChange(ctx, req)
	if err != nil {
		return controller.ErrorResponse(req, codeOf(err), errMsg(err))
	}
	return resp
}
