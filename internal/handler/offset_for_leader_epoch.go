package handler

// OffsetForLeaderEpoch v0-4 (KIP-101, KIP-279, KIP-320): for each partition, the
// largest leader epoch at or below the requested one and the offset where it ended
// (the start of the next epoch, or the log end for the current epoch). Consumers use it
// to detect truncation after a leader change.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) offsetForLeaderEpoch(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.OffsetForLeaderEpochResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := h.b.LeaderPartition(rt.Topic, rp.Partition)
			switch {
			case err != nil:
				sp.ErrorCode = codeOf(err)
			default:
				if code := checkServable(p, rp.CurrentLeaderEpoch); code != 0 {
					sp.ErrorCode = code
					break
				}
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
