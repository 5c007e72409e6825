package handler

// Produce v3-12 (v3 is the first that carries v2 record batches, the only format we
// store). Each partition's records must be exactly one v2 batch; it is validated and
// patched in place by the partition. acks=0 gets no response; acks=1 and acks=all are
// answered once the batch is in the log (one replica is the whole ISR), and acks=all
// fails with NOT_ENOUGH_REPLICAS when the ISR is smaller than min.insync.replicas.
// Clients may not write to internal topics.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) produce(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	maxBatch := int(h.b.Config().SocketRequestMaxBytes)
	for _, rt := range req.Topics {
		st := kmsg.ProduceResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		t := h.b.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			var err error
			switch {
			case !validAcks:
				err = kerr.InvalidRequiredAcks
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				err = kerr.UnknownTopicOrPartition
			case broker.IsInternal(rt.Topic):
				err = fmt.Errorf("%w: cannot append to internal topic %s", kerr.InvalidTopicException, rt.Topic)
			default:
				p := t.Partitions[rp.Partition]
				if req.Acks == -1 && p.ISRSize() < p.Config().MinInsyncReplicas {
					err = fmt.Errorf("%w: in-sync replicas %d < min.insync.replicas %d", kerr.NotEnoughReplicas, p.ISRSize(), p.Config().MinInsyncReplicas)
					break
				}
				var b batch.Batch
				var rest []byte
				b, rest, err = batch.Next(rp.Records, maxBatch)
				if err == nil && len(rest) != 0 {
					err = fmt.Errorf("%w: a produce request carries exactly one record batch per partition", kerr.InvalidRecord)
				}
				if err == nil {
					res, aerr := p.Append(b)
					err = aerr
					sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
				}
			}
			if err != nil {
				sp.ErrorCode = codeOf(err)
				if sp.ErrorCode == kerr.UnknownServerError.Code {
					h.b.Logger().Error("produce", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
				if req.Version >= 8 {
					sp.ErrorMessage = errMsg(err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil
	}
	return resp
}
