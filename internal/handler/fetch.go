package handler

// Fetch v4-16 for consumers. Topic IDs replace names from v13. Each partition is read
// from the high watermark's side of its log as whole batches, copied from the segment
// files without decoding, within the partition's and the response's byte limits (the
// first partition with data may exceed them by one batch, so a large batch is never
// stuck). If fewer than min_bytes are ready, the request waits for an append to any of
// its partitions, up to max_wait_ms, then reads once more. Sessions follow KIP-227
// (fetch_session.go).

import (
	"context"
	"reflect"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

type fetchWant struct {
	key     tp
	topicID [16]byte
	state   *sessionPartition // fetch offset and byte limit, and what was last reported
	errCode int16             // set when the topic cannot be resolved at all
}

type fetchResult struct {
	errCode        int16
	highWatermark  int64
	lastStable     int64
	logStartOffset int64
	// The record bytes are either read into records or, for a connection that sends
	// them from their files, left there: pinned, closed by the response's Release.
	records []byte
	pinned  []log.PinnedRange
	size    int64 // record bytes, read or pinned
}

// unpin closes the ranges of an earlier read of the same request.
func (r *fetchResult) unpin() {
	for _, p := range r.pinned {
		p.Close()
	}
}

func (h *Handler) fetch(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	if !r.pin {
		return h.fetchRecords(ctx, r, kr.(*kmsg.FetchRequest), nil)
	}
	pinned := [][]log.PinnedRange{}
	fr := h.fetchRecords(ctx, r, kr.(*kmsg.FetchRequest), &pinned)
	r.pinned = pinned
	return fr
}

// fetchRecords answers a fetch. With pinned nil, records are read into pooled buffers
// (released with the request). Otherwise records that lie in operating-system files are
// pinned instead of read (if there are enough of them to be worth it), and *pinned gets, for each partition of the response in
// order, its pinned ranges (none for a partition whose records are in RecordBatches);
// their bytes are what RecordBatches would hold, and the caller must close them.
func (h *Handler) fetchRecords(ctx context.Context, r *Request, req *kmsg.FetchRequest, pinned *[][]log.PinnedRange) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	pin := pinned != nil
	byID := req.Version >= 13
	im := h.b.Image()

	var sess *fetchSession
	full := true
	switch {
	case req.Version < 7 || req.SessionEpoch == -1:
		if req.Version >= 7 && req.SessionID != 0 {
			h.sessions.remove(req.SessionID)
		}
	case req.SessionEpoch == 0:
		if req.SessionID != 0 {
			h.sessions.remove(req.SessionID)
		}
		sess = h.sessions.create()
	default:
		sess = h.sessions.get(req.SessionID)
		if sess == nil {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return resp
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		if sess.epoch != req.SessionEpoch {
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			return resp
		}
		full = false
	}
	if sess != nil && full {
		sess.mu.Lock()
		defer sess.mu.Unlock()
	}

	topicName := func(name string, id [16]byte) (string, int16) {
		if !byID {
			return name, 0
		}
		t := im.TopicByID(uuid.UUID(id))
		if t == nil {
			return "", kerr.UnknownTopicID.Code
		}
		return t.Name, 0
	}

	var wants []fetchWant
	ids := map[string][16]byte{}
	for _, rt := range req.Topics {
		name, code := topicName(rt.Topic, rt.TopicID)
		if code == 0 && byID {
			ids[name] = rt.TopicID
		}
		for _, rp := range rt.Partitions {
			sp := &sessionPartition{fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch, highWatermark: -1, lastStable: -1, logStartOffset: -1}
			k := tp{name, rp.Partition}
			if code != 0 {
				// An unknown topic ID is answered but never enters the session.
				wants = append(wants, fetchWant{key: k, topicID: rt.TopicID, state: sp, errCode: code})
				continue
			}
			if sess != nil {
				if old := sess.parts[k]; old != nil && !full {
					old.fetchOffset, old.maxBytes, old.leaderEpoch = sp.fetchOffset, sp.maxBytes, sp.leaderEpoch
					sp = old
				} else {
					sess.add(k, sp)
				}
			}
			if full || sess == nil {
				wants = append(wants, fetchWant{key: k, topicID: rt.TopicID, state: sp})
			}
		}
	}
	if sess != nil && !full {
		for _, ft := range req.ForgottenTopics {
			name, code := topicName(ft.Topic, ft.TopicID)
			if code != 0 {
				continue
			}
			for _, p := range ft.Partitions {
				sess.forget(tp{name, p})
			}
		}
		unresolved := wants
		wants = nil
		for _, k := range sess.order {
			wants = append(wants, fetchWant{key: k, topicID: ids[k.topic], state: sess.parts[k]})
		}
		wants = append(wants, unresolved...)
		if byID {
			for i := range wants {
				if wants[i].topicID == ([16]byte{}) {
					if t := im.Topic(wants[i].key.topic); t != nil {
						wants[i].topicID = t.ID
					}
				}
			}
		}
	}

	results := make([]fetchResult, len(wants))
	readCommitted := req.IsolationLevel == 1
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		// Take the wait channels before reading, so an append between the read and the
		// wait is not missed.
		var waits []<-chan struct{}
		if req.MaxWaitMillis > 0 {
			for _, w := range wants {
				if p := h.b.Partition(w.key.topic, w.key.partition); p != nil && w.errCode == 0 {
					waits = append(waits, p.Wait())
				}
			}
		}
		total, anyErr := h.readAll(r, wants, results, req.MaxBytes, readCommitted, req.Version, pin)
		if total >= int(req.MinBytes) || anyErr || len(waits) == 0 {
			break
		}
		if !waitAny(ctx, waits, deadline) {
			if ctx.Err() == nil {
				h.readAll(r, wants, results, req.MaxBytes, readCommitted, req.Version, pin)
			}
			break
		}
	}

	// Assemble, grouping consecutive partitions of a topic.
	for i, w := range wants {
		r := results[i]
		if sess != nil && !full && w.errCode == 0 && r.size == 0 && r.errCode == 0 &&
			w.state.reported && r.highWatermark == w.state.highWatermark &&
			r.lastStable == w.state.lastStable && r.logStartOffset == w.state.logStartOffset {
			continue // unchanged: an incremental response leaves it out
		}
		if w.errCode == 0 {
			w.state.highWatermark, w.state.lastStable, w.state.logStartOffset, w.state.reported = r.highWatermark, r.lastStable, r.logStartOffset, true
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != w.key.topic || resp.Topics[n-1].TopicID != w.topicID {
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: w.key.topic, TopicID: w.topicID})
			n++
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = w.key.partition
		rp.ErrorCode = r.errCode
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = r.highWatermark, r.lastStable, r.logStartOffset
		rp.RecordBatches = r.records
		if rp.RecordBatches == nil {
			// Kafka sends empty records, never null; python3-kafka fails on null.
			rp.RecordBatches = []byte{}
		}
		rp.PreferredReadReplica = -1
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, rp)
		if pin {
			*pinned = append(*pinned, r.pinned)
		}
	}
	if sess != nil {
		resp.SessionID = sess.id
		// The request that created the session carried epoch 0 and the next carries 1,
		// which is where a new session starts; incremental requests move it on.
		if !full {
			if sess.epoch == 2147483647 {
				sess.epoch = 1
			} else {
				sess.epoch++
			}
		}
	}
	return resp
}

// minSendfileBytes is the fewest record bytes of a partition sent from their files
// rather than read: below it, pinning the ranges and setting up sendfile cost more CPU
// than copying the bytes (BenchmarkSendfileBatching in internal/server: on loopback,
// 8 partitions of 16 KiB take 77 us of the writer's CPU by sendfile, 48 us read; of
// 64 KiB, 127 and 124 us; of 1 MiB, 1.8 and 2.4 ms).
const minSendfileBytes = 64 << 10

// readAll reads every wanted partition into results and returns the record bytes read and
// whether any partition has an error (which makes the fetch answer at once, as Kafka does).
// With pin, a partition's records in operating-system files, if there are at least
// minSendfileBytes of them, are pinned rather than read; they count towards the limits
// exactly as read ones do.
func (h *Handler) readAll(req *Request, wants []fetchWant, results []fetchResult, maxBytes int32, readCommitted bool, version int16, pin bool) (int, bool) {
	remaining := int64(maxBytes)
	if remaining <= 0 {
		remaining = 1 << 62
	}
	total, anyErr := 0, false
	for i, w := range wants {
		r := &results[i]
		r.unpin()
		*r = fetchResult{highWatermark: -1, lastStable: -1, logStartOffset: -1}
		if w.errCode != 0 {
			r.errCode, anyErr = w.errCode, true
			continue
		}
		p := h.b.Partition(w.key.topic, w.key.partition)
		if p == nil {
			r.errCode, anyErr = kerr.UnknownTopicOrPartition.Code, true
			if version >= 13 {
				r.errCode = kerr.UnknownTopicID.Code
			}
			continue
		}
		r.highWatermark, r.lastStable, r.logStartOffset = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
		if code := checkLeaderEpoch(p, w.state.leaderEpoch); code != 0 {
			r.errCode, anyErr = code, true
			continue
		}
		limit := min(int64(w.state.maxBytes), remaining)
		if limit <= 0 && total > 0 {
			continue
		}
		ranges, err := p.Read(w.state.fetchOffset, limit, total == 0, readCommitted)
		if err == nil && w.state.fetchOffset < r.logStartOffset {
			err = log.ErrOffsetOutOfRange
		}
		if err != nil {
			r.errCode, anyErr = codeOf(err), true
			if r.errCode == kerr.UnknownServerError.Code {
				h.b.Logger().Error("fetch", "topic", w.key.topic, "partition", w.key.partition, "err", err)
			}
			continue
		}
		n := log.RangesLen(ranges)
		var ok bool
		if pin && n >= minSendfileBytes {
			r.pinned, ok = log.PinRanges(nil, ranges)
		}
		if !ok {
			recs, err := h.readRanges(req, ranges)
			if err != nil {
				h.b.Logger().Warn("fetch read", "topic", w.key.topic, "partition", w.key.partition, "err", err)
				r.errCode, anyErr = kerr.UnknownServerError.Code, true
				continue
			}
			r.records = recs
		}
		r.size = n
		total += int(n)
		remaining -= n
	}
	return total, anyErr
}

func checkLeaderEpoch(p *partition.Partition, requested int32) int16 {
	if requested < 0 {
		return 0
	}
	switch cur := p.LeaderEpoch(); {
	case requested < cur:
		return kerr.FencedLeaderEpoch.Code
	case requested > cur:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// readRanges reads the ranges into one pooled buffer, released after the response is
// encoded.
func (h *Handler) readRanges(req *Request, rs []log.Range) ([]byte, error) {
	n := log.RangesLen(rs)
	if n == 0 {
		return nil, nil
	}
	buf := h.bufs.Get(int(n))
	req.pooled = append(req.pooled, buf)
	return buf, log.ReadRanges(buf, rs)
}

// waitAny blocks until one of chans is closed, the deadline passes or ctx ends; it
// reports whether a channel fired.
func waitAny(ctx context.Context, chans []<-chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	i, _, _ := reflect.Select(cases)
	return i >= 2
}
