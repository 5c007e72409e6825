package handler

// FindCoordinator v0-6: this node coordinates every group (single node). v4+ batches
// keys. Transaction coordinators (key type 1) do not exist yet: COORDINATOR_NOT_AVAILABLE.
// The first group lookup creates __consumer_offsets, as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) findCoordinator(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	self := h.brokers()
	answer := func(key string) (nodeID int32, host string, port int32, err error) {
		switch {
		case req.CoordinatorType != 0:
			return -1, "", -1, kerr.CoordinatorNotAvailable
		case len(self) == 0:
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		if err := h.b.EnsureOffsetsTopic(); err != nil {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		return self[0].NodeID, self[0].Host, self[0].Port, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			var err error
			c.NodeID, c.Host, c.Port, err = answer(key)
			c.ErrorCode, c.ErrorMessage = codeOf(err), errMsg(err)
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp
	}
	var err error
	resp.NodeID, resp.Host, resp.Port, err = answer(req.CoordinatorKey)
	resp.ErrorCode = codeOf(err)
	if req.Version >= 1 {
		resp.ErrorMessage = errMsg(err)
	}
	return resp
}
