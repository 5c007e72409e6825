package handler

// Metadata v0-12. Brokers, the cluster ID, the controller (describe_cluster.go: the active
// controller if it is a broker clients can reach, else a random broker), and topics: all
// of them for a null list (v1+; an empty list in v0), topic IDs from v10, topics requested by
// ID (v12), auto-creation when the request allows it (v4+, always before) and
// auto.create.topics.enable is on. The request that creates a topic is answered as Kafka
// answers it, LEADER_NOT_AVAILABLE with no partitions (clients retry; segmentio/kafka-go's
// tests rely on it), even though the topic is created before the answer: the next
// request sees it ready.
//
// Brokers and partitions come from the metadata image, as Kafka's KRaftMetadataCache
// gives them: the brokers are the registered, unfenced ones with an endpoint on the
// clients' listener; a partition's leader is reported if its broker is registered with
// that listener (else LEADER_NOT_AVAILABLE, or LISTENER_NOT_FOUND from v6 when the broker
// is registered without it, and leader -1); offline replicas are those whose broker is
// not registered, is fenced or lacks the listener. Version 0 lists only replicas with the
// listener and answers REPLICA_NOT_AVAILABLE when that drops some.
//
// The clients' listener is the first client listener: Vltava answers every connection
// with it (Kafka answers with the listener the request came in on).

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
)

const authorizedOpsNotRequested = -2147483648

// clientListener is the listener whose endpoints clients are given.
func (h *Handler) clientListener() string {
	if names := h.b.Config().ListenerNames; len(names) > 0 {
		return names[0]
	}
	return "PLAINTEXT"
}

// aliveBrokers calls fn with each registered, unfenced broker that has listener.
func aliveBrokers(im *metadata.Image, listener string, fn func(*metadata.Broker, *metadata.Listener)) {
	for b := range im.Brokers() {
		if l := b.Listener(listener); l != nil && !b.Fenced {
			fn(b, l)
		}
	}
}

func rackOf(b *metadata.Broker) *string {
	if b.Rack == "" {
		return nil
	}
	r := b.Rack
	return &r
}

func metadataBrokers(im *metadata.Image, listener string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	aliveBrokers(im, listener, func(b *metadata.Broker, l *metadata.Listener) {
		out = append(out, kmsg.MetadataResponseBroker{NodeID: b.ID, Host: l.Host, Port: int32(l.Port), Rack: rackOf(b)})
	})
	return out
}

func (h *Handler) metadata(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := h.b.Image()
	listener := h.clientListener()
	resp.Brokers = metadataBrokers(im, listener)
	cid := h.b.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = controllerID(im, listener, h.b.QuorumLeader())
	resp.AuthorizedOperations = authorizedOpsNotRequested

	autoCreate := h.b.Config().AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for t := range im.Topics() {
			resp.Topics = append(resp.Topics, h.topicMetadata(im, t, listener, req.Version))
		}
		return resp
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			t := im.TopicByID(uuid.UUID(rt.TopicID))
			if t == nil {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicID.Code, TopicID: rt.TopicID, AuthorizedOperations: authorizedOpsNotRequested})
				continue
			}
			resp.Topics = append(resp.Topics, h.topicMetadata(im, t, listener, req.Version))
			continue
		}
		name := *rt.Topic
		t := im.Topic(name)
		if t == nil {
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
		resp.Topics = append(resp.Topics, h.topicMetadata(im, t, listener, req.Version))
	}
	return resp
}

// topicMetadata describes a topic of im to a client of listener, as this node sees it:
// a partition it leads but has not opened yet answers LEADER_NOT_AVAILABLE with no
// leader, as Kafka's does until the leader has the partition.
func (h *Handler) topicMetadata(im *metadata.Image, t *metadata.Topic, listener string, version int16) kmsg.MetadataResponseTopic {
	rt := topicMetadata(im, t, listener, version)
	for i := range rt.Partitions {
		if rp := &rt.Partitions[i]; rp.ErrorCode == 0 && h.b.LeadsUnopened(im, t.Name, rp.Partition) {
			rp.ErrorCode, rp.Leader = kerr.LeaderNotAvailable.Code, -1
		}
	}
	return rt
}

// topicMetadata describes a topic of im to a client of listener.
func topicMetadata(im *metadata.Image, t *metadata.Topic, listener string, version int16) kmsg.MetadataResponseTopic {
	n := t.Name
	rt := kmsg.MetadataResponseTopic{Topic: &n, TopicID: t.ID, IsInternal: broker.IsInternal(t.Name), AuthorizedOperations: authorizedOpsNotRequested}
	rt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for i := range t.Partitions {
		rt.Partitions = append(rt.Partitions, partitionMetadata(im, &t.Partitions[i], int32(i), listener, version))
	}
	return rt
}

func partitionMetadata(im *metadata.Image, p *metadata.Partition, index int32, listener string, version int16) kmsg.MetadataResponseTopicPartition {
	withListener := func(id int32) bool {
		b := im.Broker(id)
		return b != nil && b.Listener(listener) != nil
	}
	filter := func(ids []int32) []int32 {
		out := make([]int32, 0, len(ids))
		for _, id := range ids {
			if version > 0 || withListener(id) {
				out = append(out, id)
			}
		}
		return out
	}
	rp := kmsg.MetadataResponseTopicPartition{
		Partition:       index,
		Leader:          p.Leader,
		LeaderEpoch:     p.LeaderEpoch,
		Replicas:        filter(p.Replicas()),
		ISR:             filter(p.ISR()),
		OfflineReplicas: []int32{},
	}
	for _, id := range p.Replicas() {
		if b := im.Broker(id); b == nil || b.Fenced || b.Listener(listener) == nil {
			rp.OfflineReplicas = append(rp.OfflineReplicas, id)
		}
	}
	switch leader := im.Broker(p.Leader); {
	case leader == nil:
		rp.ErrorCode, rp.Leader = kerr.LeaderNotAvailable.Code, -1
	case leader.Listener(listener) == nil:
		rp.ErrorCode, rp.Leader = kerr.LeaderNotAvailable.Code, -1
		if version >= 6 {
			rp.ErrorCode = kerr.ListenerNotFound.Code
		}
	case len(rp.Replicas) < len(p.Replicas()) || len(rp.ISR) < len(p.ISR()):
		rp.ErrorCode = kerr.ReplicaNotAvailable.Code
	}
	return rp
}
