package handler

// FindCoordinator v0-6: a group's coordinator is the leader of its __consumer_offsets
// partition (the group's hash, as Kafka computes it), with that broker's endpoint on the
// clients' listener. v4+ batches keys. The first group lookup creates
// __consumer_offsets, as Kafka does. When this node is the coordinator the answer waits
// (within the request) for it to have loaded the partition, so the client's next
// request finds the group served. A partition without a live leader answers
// COORDINATOR_NOT_AVAILABLE, which clients retry. Transaction coordinators (key type 1)
// do not exist yet: COORDINATOR_NOT_AVAILABLE.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

// coordinatorLoadWait bounds how long FindCoordinator waits for this node to load the
// group's partition.
const coordinatorLoadWait = 10 * time.Second

func (h *Handler) findCoordinator(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (nodeID int32, host string, port int32, err error) {
		if req.CoordinatorType != 0 {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		if err := h.b.EnsureOffsetsTopic(); err != nil {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		im := h.b.Image()
		p := h.groups.PartitionFor(key)
		t := im.Topic(broker.ConsumerOffsetsTopic)
		if t == nil || t.Partition(p) == nil {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		leader := im.Broker(t.Partition(p).Leader)
		if leader == nil || leader.Fenced || leader.Listener(h.clientListener()) == nil {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		if leader.ID == h.b.NodeID() {
			wctx, cancel := context.WithTimeout(ctx, coordinatorLoadWait)
			err := h.groups.AwaitPartition(wctx, p)
			cancel()
			if err != nil {
				return -1, "", -1, kerr.CoordinatorNotAvailable
			}
		}
		l := leader.Listener(h.clientListener())
		return leader.ID, l.Host, int32(l.Port), nil
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
