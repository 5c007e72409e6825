package handler

// DeleteRecords v0-2: advance each partition's log start offset (-1: to the high
// watermark); offsets past the high watermark are OFFSET_OUT_OF_RANGE. Returns the new
// low watermark.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) deleteRecords(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.DeleteRecordsResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if p, err := h.b.LeaderPartition(rt.Topic, rp.Partition); err != nil {
				sp.ErrorCode = codeOf(err)
			} else if lw, err := p.DeleteRecords(rp.Offset); err != nil {
				sp.ErrorCode = codeOf(err)
			} else {
				sp.LowWatermark = lw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
