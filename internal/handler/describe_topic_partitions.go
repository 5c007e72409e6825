package handler

// DescribeTopicPartitions v0 (KIP-966), what Kafka 3.8+ admin clients describe topics with.
// Partitions come from the metadata image exactly as Metadata gives them (partitionMetadata:
// the leader if its broker is registered with the clients' listener, else -1; every replica
// and ISR member; offline replicas), plus the eligible leader replicas and the last known
// ELR. Unlike Metadata, a partition never carries an error: a leaderless one is leader -1.
//
// Kafka's DescribeTopicPartitionsRequestHandler and KRaftMetadataCache, followed here:
//   - An empty topic list means every topic (internal ones included); a named topic the
//     image lacks is answered UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
//     invalid name) with a zero topic ID and no partitions. Names are deduplicated, and
//     the topics are answered sorted by name, known and unknown interleaved.
//   - Topics sorting before the cursor's topic are left out; the cursor's topic starts at
//     the cursor's partition, every later topic at 0. A cursor whose topic is not in a
//     non-empty topic list, or whose partition is negative, is INVALID_REQUEST for every
//     requested topic (Kafka's error response; 3.8 and 3.9 refuse a negative index).
//   - At most min(ResponsePartitionLimit, max.request.partition.size.limit) partitions
//     (default 2000). A topic cut short ends the answer with NextCursor at its first
//     partition left out; a topic reached with the limit used up exactly gets NextCursor
//     at its partition 0, and is not in the answer. Unknown topics cost nothing. A
//     limit of 0 or less describes no topic (Kafka's arithmetic: 0 points the cursor at
//     the first topic, a negative limit answers nothing at all).
//   - A cursor partition past the end of its topic answers the topic with no partitions.
//
// TopicAuthorizedOperations is INT32_MIN (not requested), as Metadata answers it: Vltava
// has no authorizer.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
)

// defaultMaxResponsePartitions is max.request.partition.size.limit's default, Kafka's.
const defaultMaxResponsePartitions = 2000

func (h *Handler) describeTopicPartitions(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeTopicPartitionsRequest)
	return describeTopicPartitionsFrom(h.b.Image(), h.clientListener(), h.maxResponsePartitions, req)
}

// describeTopicPartitionsFrom answers req from im for a client of listener, with at most
// min(maxPartitions, req.ResponsePartitionLimit) partitions.
func describeTopicPartitionsFrom(im *metadata.Image, listener string, maxPartitions int32, req *kmsg.DescribeTopicPartitionsRequest) *kmsg.DescribeTopicPartitionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	all := len(req.Topics) == 0
	cursor := req.Cursor
	from := ""
	if cursor != nil {
		from = cursor.Topic
	}
	var names []string
	if all {
		for t := range im.Topics() {
			if t.Name >= from {
				names = append(names, t.Name)
			}
		}
	} else {
		for _, rt := range req.Topics {
			if rt.Topic >= from {
				names = append(names, rt.Topic)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if cursor != nil && (cursor.Partition < 0 || !all && !slices.Contains(names, cursor.Topic)) {
		return describeTopicPartitionsError(req, kerr.InvalidRequest.Code)
	}

	remaining := int64(min(maxPartitions, req.ResponsePartitionLimit))
	for _, name := range names {
		if remaining <= 0 {
			if remaining == 0 {
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: 0}
			}
			break
		}
		t := im.Topic(name)
		if t == nil {
			if !all {
				code := kerr.UnknownTopicOrPartition.Code
				if broker.ValidateTopicName(name) != nil {
					code = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, describedTopic(name, [16]byte{}, code))
			}
			continue
		}
		start := int64(0)
		if cursor != nil && name == cursor.Topic {
			start = int64(cursor.Partition)
		}
		n := int64(len(t.Partitions))
		end := min(n, start+remaining)
		rt := describedTopic(name, t.ID, 0)
		rt.Partitions = make([]kmsg.DescribeTopicPartitionsResponseTopicPartition, 0, max(end-start, 0))
		for i := start; i < end; i++ {
			rt.Partitions = append(rt.Partitions, describedPartition(im, &t.Partitions[i], int32(i), listener))
		}
		resp.Topics = append(resp.Topics, rt)
		if end < n {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: int32(end)}
			break
		}
		remaining -= int64(len(rt.Partitions))
	}
	return resp
}

func describedTopic(name string, id [16]byte, code int16) kmsg.DescribeTopicPartitionsResponseTopic {
	rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	rt.ErrorCode, rt.Topic, rt.TopicID, rt.IsInternal = code, kmsg.StringPtr(name), id, broker.IsInternal(name)
	rt.AuthorizedOperations = authorizedOpsNotRequested
	return rt
}

// describedPartition is partitionMetadata (as the newest Metadata version gives it: no
// replica is left out) with the ELR and last known ELR, and no error.
func describedPartition(im *metadata.Image, p *metadata.Partition, index int32, listener string) kmsg.DescribeTopicPartitionsResponseTopicPartition {
	mp := partitionMetadata(im, p, index, listener, 12)
	return kmsg.DescribeTopicPartitionsResponseTopicPartition{
		Partition:              index,
		LeaderID:               mp.Leader,
		LeaderEpoch:            mp.LeaderEpoch,
		Replicas:               mp.Replicas,
		ISR:                    mp.ISR,
		EligibleLeaderReplicas: append([]int32{}, p.ELR()...),
		LastKnownELR:           append([]int32{}, p.LastKnownELR()...),
		OfflineReplicas:        mp.OfflineReplicas,
	}
}

// describeTopicPartitionsError is Kafka's error response: every requested topic with the
// error, a zero topic ID and no partitions.
func describeTopicPartitionsError(req *kmsg.DescribeTopicPartitionsRequest, code int16) *kmsg.DescribeTopicPartitionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		t.ErrorCode, t.Topic = code, kmsg.StringPtr(rt.Topic)
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
