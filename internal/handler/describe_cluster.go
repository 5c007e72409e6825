package handler

// DescribeCluster v0-2: the cluster ID, the controller and the brokers, as Kafka's
// brokers answer it. The brokers are the metadata image's registered brokers with an
// endpoint on the clients' listener (as Metadata gives them): the unfenced ones, and
// from v2 the fenced ones too when the request sets IncludeFencedBrokers, each with
// IsFenced (KIP-1073). This is a broker endpoint: a request for the controllers'
// endpoints (EndpointType 2, KIP-919) is answered MISMATCHED_ENDPOINT_TYPE, any other
// type UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0, which has no such codes).
//
// The controller named (here and in Metadata) is the active controller, the metadata
// quorum's leader, when it is an unfenced broker clients can reach; otherwise, as
// Kafka's KRaft brokers always answer, a random unfenced broker: clients send admin
// requests to "the controller", and every broker forwards what only the controller can
// do. -1 only when no broker is unfenced.

import (
	"context"
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// Kafka's EndpointType (KIP-919).
const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func (h *Handler) describeCluster(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeClusterRequest)
	return describeClusterFrom(h.b.Image(), h.clientListener(), h.b.ClusterID(), h.b.QuorumLeader(), req)
}

// describeClusterFrom answers req from the image im for clients of listener, leader
// being the quorum's leader (-1 if none).
func describeClusterFrom(im *metadata.Image, listener, clusterID string, leader int32, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsNotRequested
	if req.Version >= 1 && req.EndpointType != endpointBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "Unsupported endpoint type"
		if req.EndpointType == endpointControllers {
			resp.ErrorCode = kerr.MismatchedEndpointType.Code
			msg = "The request was sent to a broker endpoint; controllers are described on the controller listener"
		}
		resp.ErrorMessage = &msg
		return resp
	}
	resp.ClusterID = clusterID
	resp.ControllerID = controllerID(im, listener, leader)
	includeFenced := req.Version >= 2 && req.IncludeFencedBrokers
	for b := range im.Brokers() {
		l := b.Listener(listener)
		if l == nil || (b.Fenced && !includeFenced) {
			continue
		}
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.ID, Host: l.Host, Port: int32(l.Port),
			Rack: rackOf(b), IsFenced: b.Fenced})
	}
	return resp
}

// controllerID is the controller Metadata and DescribeCluster name: leader if it is an
// unfenced broker with listener, else a random such broker, else -1.
func controllerID(im *metadata.Image, listener string, leader int32) int32 {
	var alive []int32
	aliveBrokers(im, listener, func(b *metadata.Broker, _ *metadata.Listener) {
		alive = append(alive, b.ID)
	})
	for _, id := range alive {
		if id == leader {
			return leader
		}
	}
	if len(alive) == 0 {
		return -1
	}
	return alive[rand.IntN(len(alive))]
}
