package handler

// DescribeCluster v0-1: the cluster ID, the controller (the metadata quorum's leader,
// where changes can be made) and the brokers (v1: or the controllers, which in combined
// mode are the same nodes). The brokers are the metadata
// image's registered, unfenced brokers with an endpoint on the clients' listener, with
// their racks (as Metadata gives them).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) describeCluster(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	im := h.b.Image()
	resp.ClusterID = h.b.ClusterID()
	resp.ControllerID = h.b.ControllerID(im)
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsNotRequested
	for _, b := range metadataBrokers(im, h.clientListener()) {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return resp
}
