package handler

// A follower's Fetch: the request names a replica (replica_id before v15, ReplicaState
// with the broker epoch from v15, KIP-903). It goes through the consumers' fetch path
// (limits, long-poll, budget, sendfile) with three differences, as Kafka's
// ReplicaManager.readFromLocalLog has them:
//
//   - each partition is read by partition.ReadForFollower: the leader-epoch check
//     (KIP-320: FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), the check that the fetcher
//     is one of the partition's replicas (NOT_LEADER_OR_FOLLOWER, or
//     UNKNOWN_LEADER_EPOCH when it named an epoch), a divergence answered with the
//     diverging epoch instead of records, and records up to the log end, not the high
//     watermark; the fetch offset feeds the leader's view of the follower (its log end
//     offset, fetch time and broker epoch), which may move the high watermark and
//     propose an ISR change;
//   - a long-poll waits for the log end to move, not the high watermark;
//   - the response carries the high watermark the follower learns.
//
// The limits are the consumers': the first batch of the first partition with records
// goes whole (a follower must never be stuck behind a large batch), the response limit
// bounds the rest.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

// followerFetch is the replica a fetch comes from.
type followerFetch struct {
	id          int32
	brokerEpoch int64 // -1 before v15
}

// followerOf returns the fetching replica of req, or nil for a consumer's fetch.
func followerOf(req *kmsg.FetchRequest) *followerFetch {
	id, epoch := req.ReplicaID, int64(-1)
	if req.Version >= 15 {
		id, epoch = req.ReplicaState.ID, req.ReplicaState.Epoch
	}
	if id < 0 {
		return nil
	}
	return &followerFetch{id: id, brokerEpoch: epoch}
}

func (fc *fetchCtx) followerRead(w *fetchWant, maxBytes int64, minOne bool) partition.FollowerRead {
	return partition.FollowerRead{ReplicaID: fc.follower.id, BrokerEpoch: fc.follower.brokerEpoch,
		CurrentLeaderEpoch: w.leaderEpoch, FetchOffset: w.fetchOffset, LastFetchedEpoch: w.lastFetchedEpoch,
		LogStartOffset: w.logStartOffset, MaxBytes: max(maxBytes, 0), NotFirst: !minOne}
}

// sizeFollower finds a follower's records of p within maxBytes (the first batch whole
// with minOne).
func (fc *fetchCtx) sizeFollower(w *fetchWant, r *fetchResult, p *partition.Partition, maxBytes int64, minOne bool) {
	res, err := p.ReadForFollower(fc.followerRead(w, maxBytes, minOne))
	r.highWatermark, r.lastStable, r.logStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
	if err != nil {
		// Refused before the read: the log start is not in res.
		r.errCode, r.logStartOffset = codeOf(err), p.LogStartOffset()
		return
	}
	if res.Diverging {
		r.diverging, r.divergingEpoch, r.divergingEnd = true, res.DivergingEpoch, res.DivergingEndOffset
		return
	}
	listed, hold := fc.h.b.ReplicationThrottles().LeaderHold(w.key.topic, w.key.partition, fc.follower.id, time.Now())
	if hold {
		return // the leader quota is spent: no records for a throttled replica out of the ISR
	}
	r.ranges, r.size, r.throttled = res.Ranges, log.RangesLen(res.Ranges), listed
}

// recordThrottled counts the record bytes of a follower's answer that the leader
// quota covers, once the answer is final.
func (fc *fetchCtx) recordThrottled() {
	if fc.follower == nil {
		return
	}
	var n int64
	for i := range fc.results {
		if fc.results[i].throttled {
			n += fc.results[i].size
		}
	}
	if n > 0 {
		fc.h.b.ReplicationThrottles().Leader.Record(time.Now(), n)
	}
}

// readFollower reads p again for a follower within maxBytes (the fetch budget trimmed
// the response).
func (fc *fetchCtx) readFollower(w *fetchWant, p *partition.Partition, maxBytes int64, minOne bool) ([]log.Range, error) {
	res, err := p.ReadForFollower(fc.followerRead(w, maxBytes, minOne))
	return res.Ranges, err
}
