package handler

// Metadata v0-12. Brokers (this node), the cluster ID, the controller (this node), and
// topics: all of them for a null list (v1+; an empty list in v0), topic IDs from v10,
// topics requested by ID (v12), auto-creation when the request allows it (v4+, always
// before) and auto.create.topics.enable is on. The request that creates a topic is
// answered as Kafka answers it, LEADER_NOT_AVAILABLE with no partitions (clients retry;
// segmentio/kafka-go's tests rely on it), even though the topic is created before the
// answer: the next request sees it ready.

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

const authorizedOpsNotRequested = -2147483648

func (h *Handler) brokers() []kmsg.MetadataResponseBroker {
	adv := h.b.Advertised()
	if len(adv) == 0 {
		return nil
	}
	host, ps, _ := net.SplitHostPort(adv[0])
	port, _ := strconv.Atoi(ps)
	return []kmsg.MetadataResponseBroker{{NodeID: h.b.NodeID(), Host: host, Port: int32(port)}}
}

func (h *Handler) metadata(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = h.brokers()
	cid := h.b.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = h.b.NodeID()
	resp.AuthorizedOperations = authorizedOpsNotRequested

	autoCreate := h.b.Config().AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	im := h.b.Image()
	if all {
		for _, name := range im.TopicNames() {
			resp.Topics = append(resp.Topics, h.topicMetadata(req, name))
		}
		return resp
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			id := uuid.UUID(rt.TopicID)
			t := im.TopicByID(id)
			if t == nil {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicID.Code, TopicID: rt.TopicID, AuthorizedOperations: authorizedOpsNotRequested})
				continue
			}
			resp.Topics = append(resp.Topics, h.topicMetadata(req, t.Name))
			continue
		}
		name := *rt.Topic
		if h.b.Topic(name) == nil {
			code := kerr.UnknownTopicOrPartition.Code
			if err := broker.ValidateTopicName(name); err != nil {
				code = kerr.InvalidTopicException.Code
			} else if autoCreate && !broker.IsInternal(name) {
				_, err := h.b.CreateTopic(name, -1, -1, nil, false)
				if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
					code = kerr.LeaderNotAvailable.Code
				} else {
					code = codeOf(err)
				}
			}
			n := name
			resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: code, Topic: &n, AuthorizedOperations: authorizedOpsNotRequested})
			continue
		}
		resp.Topics = append(resp.Topics, h.topicMetadata(req, name))
	}
	return resp
}

func (h *Handler) topicMetadata(_ *kmsg.MetadataRequest, name string) kmsg.MetadataResponseTopic {
	n := name
	t := h.b.Topic(name)
	rt := kmsg.MetadataResponseTopic{Topic: &n, IsInternal: broker.IsInternal(name), AuthorizedOperations: authorizedOpsNotRequested}
	if t == nil {
		rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return rt
	}
	rt.TopicID = t.ID
	self := h.b.NodeID()
	for _, p := range t.Partitions {
		rt.Partitions = append(rt.Partitions, kmsg.MetadataResponseTopicPartition{
			Partition:   p.Index,
			Leader:      self,
			LeaderEpoch: p.LeaderEpoch(),
			Replicas:    []int32{self},
			ISR:         []int32{self},
		})
	}
	return rt
}
