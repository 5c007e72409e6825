package handler

// Produce v3-12 (v3 is the first that carries v2 record batches, the only format we
// store). v0-2 are advertised but refused per partition with
// UNSUPPORTED_FOR_MESSAGE_FORMAT: librdkafka before 2.8 turns off gzip, snappy and lz4
// without a word when a broker's lowest Produce version is above 2 (librdkafka issue
// 4956), and Kafka 3.x advertised v0; clients that negotiate never send them. Each partition's records must be exactly one v2 batch; it is validated and
// patched in place by the partition. acks=0 gets no response; acks=1 is answered once
// the batch is in the leader's log. acks=all on a single node's partition too (one
// replica is the whole ISR); on a replicated one it waits, after every partition of the
// request is appended, until the high watermark passes the batch or timeout_ms ends
// (REQUEST_TIMED_OUT), with NOT_ENOUGH_REPLICAS when the ISR is smaller than
// min.insync.replicas before the append (nothing is written) and
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it by the time the batch commits.
// Clients may not write to internal topics. A partition this node does not lead answers
// NOT_LEADER_OR_FOLLOWER, from v10 with its leader and the leader's endpoint (KIP-951,
// leader.go).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metrics"
	"github.com/vltava/vltava/internal/partition"
)

func (h *Handler) produce(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	// A broker that has not caught up with its registration since it started, or that
	// stood still past its session, writes nothing until it has (broker/pause.go).
	refusal := h.b.WriteRefusal()
	maxBatch := int(h.b.Config().SocketRequestMaxBytes)

	type job struct {
		sp *kmsg.ProduceResponseTopicPartition
		p  *partition.Partition
		b  batch.Batch
		ts *metrics.TopicStats
		w  *partition.AckWaiter // acks=all on a replica: answered once the ISR has it
	}
	var jobs []job
	var jobBytes int
	seen := map[*partition.Partition]bool{}
	parallel := true
	leaders := leaderEndpoints{im: h.b.Image(), listener: h.clientListener()}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	// stats[i] are the BrokerTopicMetrics of topic i, nil for a topic that does not
	// exist (counted nowhere, as in Kafka).
	var statsBuf [8]*metrics.TopicStats // no allocation for the usual few topics
	stats := statsBuf[:0]
	if len(req.Topics) > len(statsBuf) {
		stats = make([]*metrics.TopicStats, 0, len(req.Topics))
	}
	stats = stats[:len(req.Topics)]
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t := h.b.Topic(rt.Topic)
		if t != nil {
			stats[i] = h.m.Topics.Topic(rt.Topic)
		}
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			var err error
			switch {
			case req.Version < 3:
				err = fmt.Errorf("%w: produce v%d carries message format v0/v1, which this broker does not store; use produce v3 or later", kerr.UnsupportedForMessageFormat, req.Version)
			case !validAcks:
				err = kerr.InvalidRequiredAcks
			case broker.IsInternal(rt.Topic):
				err = fmt.Errorf("%w: cannot append to internal topic %s", kerr.InvalidTopicException, rt.Topic)
			case refusal != nil:
				err = refusal
			default:
				var p *partition.Partition
				if p, err = h.b.LeaderPartition(rt.Topic, rp.Partition); err != nil {
					h.produceLeader(req, resp, sp, err, &leaders)
					break
				}
				// A replica checks its ISR itself, before the append (AppendAcksAll).
				if req.Acks == -1 && !p.Replicated() && p.ISRSize() < p.Config().MinInsyncReplicas {
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
					if seen[p] {
						parallel = false // the same partition twice: keep request order
					}
					seen[p] = true
					jobs = append(jobs, job{sp: sp, p: p, b: b, ts: stats[i]})
					jobBytes += len(b)
				}
			}
			h.setProduceError(req, sp, rt.Topic, err)
		}
	}

	// acks=all on a replica waits until the high watermark passes the batch, at most the
	// request's timeout_ms (REQUEST_TIMED_OUT after).
	deadline := h.b.Now().Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
	run := func(j *job) {
		var res partition.AppendResult
		var err error
		if req.Acks == -1 && j.p.Replicated() {
			j.w, err = j.p.AppendAcksAll(j.b, deadline)
			if j.w != nil {
				res = j.w.AppendResult()
			}
		} else {
			res, err = j.p.Append(j.b)
		}
		j.sp.BaseOffset, j.sp.LogAppendTime, j.sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
		h.setProduceError(req, j.sp, j.p.Topic, err)
		if err == nil {
			j.ts.Appended(len(j.b), int(j.b.RecordCount()))
		}
	}
	// Validating (CRC32C) and writing large batches of several partitions is spread over
	// the cores; partitions are independent, and each is still appended in request order.
	if workers := min(len(jobs), runtime.GOMAXPROCS(0)); parallel && workers > 1 && jobBytes >= parallelProduceBytes {
		var wg sync.WaitGroup
		next := make(chan *job)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range next {
					run(j)
				}
			}()
		}
		for i := range jobs {
			next <- &jobs[i]
		}
		close(next)
		wg.Wait()
	} else {
		for i := range jobs {
			run(&jobs[i])
		}
	}
	for i := range jobs {
		if j := &jobs[i]; j.w != nil {
			h.m.Purgatory.Produce.Inc()
			res, err := j.p.AwaitAcks(ctx, j.w)
			h.m.Purgatory.Produce.Dec()
			if err != nil {
				// The batch is in the leader's log but not acknowledged: a retry of an
				// idempotent producer is answered as a duplicate once it commits.
				j.sp.BaseOffset, j.sp.LogAppendTime, j.sp.LogStartOffset = -1, -1, -1
				if errors.Is(err, partition.ErrNotLeader) {
					// Leadership moved while it waited: name the new leader (KIP-951).
					if _, lerr := h.b.LeaderPartition(j.p.Topic, j.p.Index); lerr != nil {
						h.produceLeader(req, resp, j.sp, lerr, &leaders)
					}
				}
			} else {
				j.sp.BaseOffset, j.sp.LogAppendTime, j.sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
			}
			h.setProduceError(req, j.sp, j.p.Topic, err)
		}
	}
	for i := range resp.Topics {
		if ts := stats[i]; ts != nil {
			for j := range resp.Topics[i].Partitions {
				ts.Produced(produceFailure(resp.Topics[i].Partitions[j].ErrorCode))
			}
		}
	}
	if req.Acks == 0 {
		return nil
	}
	leaders.each(func(b *metadata.Broker, l *metadata.Listener) {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: b.ID, Host: l.Host, Port: int32(l.Port), Rack: rackOf(b)})
	})
	return resp
}

// produceLeader fills KIP-951's current leader (v10+) of a partition this node does not
// lead.
func (h *Handler) produceLeader(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, sp *kmsg.ProduceResponseTopicPartition, err error, leaders *leaderEndpoints) {
	nl, ok := currentLeader(err)
	if !ok || req.Version < 10 {
		return
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = nl.LeaderID, nl.LeaderEpoch
	leaders.add(nl.LeaderID)
}

// produceFailure reports whether a partition's error counts as a failed produce in
// BrokerTopicMetrics. As in Kafka's ReplicaManager, errors of placement and size
// (leadership, a batch too large or corrupt, a failed log dir, which the log dir
// metrics report) do not; a batch the broker refused on validation (records,
// timestamps, producer sequence) and anything unexpected do.
func produceFailure(code int16) bool {
	switch code {
	case 0, kerr.UnknownTopicOrPartition.Code, kerr.NotLeaderForPartition.Code, kerr.MessageTooLarge.Code,
		kerr.RecordListTooLarge.Code, kerr.CorruptMessage.Code, kerr.KafkaStorageError.Code:
		return false
	}
	return true
}

// parallelProduceBytes is the request size from which partitions are appended in
// parallel: below it, the goroutine hand-off costs more than it saves.
const parallelProduceBytes = 256 << 10

func (h *Handler) setProduceError(req *kmsg.ProduceRequest, sp *kmsg.ProduceResponseTopicPartition, topic string, err error) {
	if err == nil {
		return
	}
	sp.ErrorCode = codeOf(err)
	if sp.ErrorCode == kerr.UnknownServerError.Code {
		h.b.Logger().Error("produce", "topic", topic, "partition", sp.Partition, "err", err)
	}
	if req.Version >= 8 {
		sp.ErrorMessage = errMsg(err)
	}
}
