package handler

// ListOffsets v1-9: latest (-1, the high watermark, or the last stable offset for
// read_committed), earliest (-2), max timestamp (-3, KIP-734), earliest local (-4,
// the log start offset: all data is local), earliest pending upload (-5: none, -1), or
// the first offset whose timestamp is at or after the given one. A follower's (replica_id
// >= 0) latest is the log end offset.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) listOffsets(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := h.b.LeaderPartition(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = codeOf(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if code := checkServable(p, rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			epoch := p.LeaderEpoch()
			switch rp.Timestamp {
			case -1:
				sp.Offset = p.HighWatermark()
				if req.IsolationLevel == 1 {
					sp.Offset = p.LastStableOffset()
				}
				if req.ReplicaID >= 0 {
					// A follower resetting its fetch offset asks for the log end, as
					// Kafka answers a replica (fetchOnlyFromLeader, not isolated).
					sp.Offset = p.LogEndOffset()
				}
				sp.LeaderEpoch = epoch
			case -2, -4:
				sp.Offset, sp.LeaderEpoch = p.LogStartOffset(), epoch
			case -5:
			case -3:
				off, ts, err := p.Log().MaxTimestamp()
				if err != nil {
					sp.ErrorCode = codeOf(err)
				} else if off >= 0 && off < p.HighWatermark() {
					sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, epoch
				}
			default:
				if rp.Timestamp < 0 {
					sp.ErrorCode = kerr.InvalidRequest.Code
					break
				}
				off, ts, found, err := p.Log().OffsetForTimestamp(rp.Timestamp)
				switch {
				case err != nil:
					sp.ErrorCode = codeOf(err)
				case found && off < p.HighWatermark():
					sp.Offset, sp.Timestamp, sp.LeaderEpoch = max(off, p.LogStartOffset()), ts, epoch
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
