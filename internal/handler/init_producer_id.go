package handler

// InitProducerID v0-5 for idempotent producers: a producer ID unique across restarts
// and epoch 0. A producer that passes its current ID and epoch (KIP-360, v3+) gets the
// epoch bumped, which resets its sequence numbers. Transactional IDs need a transaction
// coordinator, which Vltava does not have yet; they are refused with
// UNSUPPORTED_VERSION rather than an error a client would retry forever.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) initProducerID(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp
	}
	id, err := h.b.AllocateProducerID()
	if err != nil {
		resp.ErrorCode = codeOf(err)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
