package handler

// DescribeProducers v0 (KIP-664): the idempotent producers a partition replica keeps
// state for: producer ID, epoch, last sequence and the last batch's timestamp. As in
// Kafka any replica answers from its own state (the admin client asks the leader unless
// told a broker); a node that does not host the partition answers
// NOT_LEADER_OR_FOLLOWER, an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION, an
// invalid topic name INVALID_TOPIC_EXCEPTION, a replica in a failed log dir
// KAFKA_STORAGE_ERROR. Vltava has no transactions: the coordinator epoch and the
// current transaction's start offset are always -1.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) describeProducers(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	im := h.b.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		var topicErr error
		if im.Topic(rt.Topic) == nil {
			topicErr = kerr.UnknownTopicOrPartition
			if err := broker.ValidateTopicName(rt.Topic); err != nil {
				topicErr = err
			}
		}
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p, err := h.b.ReplicaPartition(rt.Topic, idx)
			if topicErr != nil {
				err = topicErr
			}
			if err != nil {
				sp.ErrorCode = codeOf(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, ps := range p.ActiveProducers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = ps.ProducerID, int32(ps.ProducerEpoch)
				ap.LastSequence, ap.LastTimestamp = ps.LastSequence, ps.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
