package handler

// InitProducerID v0-5 for idempotent producers. Without a transactional id, Kafka's
// TransactionCoordinator always answers with a fresh producer ID at epoch 0, whatever
// producer ID and epoch the request names (KIP-360 lets an idempotent producer name its
// own after an error; a fresh ID serves it as well). Vltava does the same: bumping the
// epoch of a named ID would hand one client another's producer, whose ID and epoch any
// consumer reads from the batches, and the first write with it fences the owner (whose
// retried batch could then be answered as a duplicate of the other client's). An ID
// without an epoch, or an epoch without an ID, is INVALID_REQUEST, as in Kafka.
// Transactional IDs need a transaction coordinator, which Vltava does not have yet;
// they are refused with UNSUPPORTED_VERSION rather than an error a client would retry
// forever, after the checks Kafka's coordinator makes first: an empty transactional
// ID is INVALID_REQUEST, and a transaction timeout that is not positive or exceeds
// transaction.max.timeout.ms is INVALID_TRANSACTION_TIMEOUT.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) initProducerID(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if (req.ProducerID == -1) != (req.ProducerEpoch == -1) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if req.TransactionalID != nil {
		switch timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond; {
		case *req.TransactionalID == "":
			resp.ErrorCode = kerr.InvalidRequest.Code
		case timeout <= 0 || timeout > h.b.Config().TransactionMaxTimeout:
			resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		default:
			resp.ErrorCode = kerr.UnsupportedVersion.Code
		}
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
