package handler

// DescribeCluster v0-1: the cluster ID, the controller and the brokers (v1: or the
// controllers, which in combined mode are the same node).

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) describeCluster(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = h.b.ClusterID()
	resp.ControllerID = h.b.NodeID()
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsNotRequested
	if adv := h.b.Advertised(); len(adv) > 0 {
		host, ps, _ := net.SplitHostPort(adv[0])
		port, _ := strconv.Atoi(ps)
		resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: h.b.NodeID(), Host: host, Port: int32(port)}}
	}
	return resp
}
