package handler

// Reading a fetch's records. While a fetch waits for min_bytes, only sizes are
// computed: each partition's records as file ranges (log.Read walks batch headers, it
// reads no records). When the fetch answers, the ranges are taken once: those of at
// least minSendfileBytes, on a connection that sends from files, are pinned (no memory);
// the rest are read into pooled buffers of at most maxReadChunk each, several partitions
// sharing a buffer, charged to the fetch memory budget by the buffers' capacity. A fetch
// that cannot get the budget for everything it would read answers with what fits.

import (
	"context"
	"fmt"
	"io"
	"math"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

const (
	// minSendfileBytes is the fewest record bytes of a partition sent from their files
	// rather than read: below it, pinning the ranges and setting up sendfile cost more
	// CPU than copying the bytes (BenchmarkSendfileBatching in internal/server: on
	// loopback, 8 partitions of 16 KiB take 77 us of the writer's CPU by sendfile, 48 us
	// read; of 64 KiB, 127 and 124 us; of 1 MiB, 1.8 and 2.4 ms).
	minSendfileBytes = 64 << 10
	// maxReadChunk is the largest buffer records are read into: a large range goes in
	// several, each returned to the pool once written.
	maxReadChunk = 1 << 20
	// minReadChunk is the smallest buffer (bufpool's smallest class); read buffers are
	// sized in powers of two from it, so their capacity is what was read rounded up to it.
	minReadChunk = 4 << 10
)

// fetchResult is what a fetch found for one partition.
type fetchResult struct {
	errCode                                   int16
	highWatermark, lastStable, logStartOffset int64
	p                                         *partition.Partition
	ranges                                    []log.Range // the records, as file ranges
	size                                      int64       // their bytes
	read                                      bool        // they are to be read into memory (else pinned)
	records                                   partRecords
	// leader is the leader of a partition this node does not lead, if the metadata
	// names one (KIP-951).
	leader *broker.NotLeaderError
	// A follower's fetch whose last fetched epoch diverges from the leader's log
	// (KIP-320): the largest epoch at or below it here, and where it ends.
	diverging      bool
	divergingEpoch int32
	divergingEnd   int64
	// preferred is the replica a consumer should read from instead (KIP-392), -1 if
	// none.
	preferred int32
	// throttled: a follower's records the leader replication quota counts.
	throttled bool
}

// partRecords is where one response partition's record bytes are: pieces of pooled
// buffers, or file ranges pinned for sendfile.
type partRecords struct {
	pieces [][]byte
	pinned []log.PinnedRange
}

// fetchCtx is one fetch being answered.
type fetchCtx struct {
	h             *Handler
	r             *Request
	version       int16
	readCommitted bool
	// limit is the response's byte limit, min(max_bytes, fetch.max.bytes), in Kafka's
	// arithmetic: it may be negative.
	limit int64
	// frameCap is the most record bytes a response frame can carry with its fields.
	frameCap int64
	minBytes int64
	maxWait  time.Duration
	deadline time.Time
	wants    []fetchWant
	results  []fetchResult
	// follower is the fetching replica, for a follower's fetch (fetch_replica.go); nil
	// for a consumer's.
	follower *followerFetch
	// rack is a consumer's client.rack (Fetch v11+, KIP-392).
	rack string
}

func (h *Handler) newFetchCtx(r *Request, req *kmsg.FetchRequest, wants []fetchWant) *fetchCtx {
	maxWait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	limit := min(int64(req.MaxBytes), int64(h.fetchMaxBytes))
	return &fetchCtx{
		h: h, r: r, version: req.Version, readCommitted: req.IsolationLevel == 1,
		limit:    limit,
		frameCap: math.MaxInt32 - fetchFieldsBound(wants),
		minBytes: min(int64(req.MinBytes), limit), // as Kafka: min_bytes within the limit
		maxWait:  maxWait,
		deadline: time.Now().Add(maxWait),
		wants:    wants,
		results:  newFetchResults(len(wants)),
		follower: followerOf(req),
		rack:     req.Rack,
	}
}

func newFetchResults(n int) []fetchResult {
	rs := make([]fetchResult, n)
	for i := range rs {
		rs[i].preferred = -1
	}
	return rs
}

// fetchFieldsBound bounds the bytes of a fetch response other than its records: per
// partition its fixed fields (at most 45 bytes, and 15 of a diverging epoch), and
// counted for each partition, its topic's name or ID with the length prefixes and tags
// around it.
func fetchFieldsBound(wants []fetchWant) int64 {
	n := int64(64) // frame size, header, throttle, error, session, array length, tags
	for _, w := range wants {
		n += 88 + int64(len(w.key.topic))
	}
	return n
}

// wait computes sizes until min_bytes are ready, a partition has an error, or the wait
// ends (max_wait, or ctx: the connection or the broker closing).
func (fc *fetchCtx) wait(ctx context.Context) {
	for {
		// Take the wait channels before reading, so an append between the read and the
		// wait is not missed.
		var waits []<-chan struct{}
		if fc.maxWait > 0 {
			for _, w := range fc.wants {
				if p := fc.h.b.Partition(w.key.topic, w.key.partition); p != nil && w.errCode == 0 {
					if fc.follower != nil {
						waits = append(waits, p.WaitAppend()) // a follower reads up to the log end
					} else {
						waits = append(waits, p.Wait())
					}
				}
			}
		}
		total, anyErr := fc.sizes()
		if total >= fc.minBytes || anyErr || len(waits) == 0 {
			return
		}
		if !fc.park(ctx, waits) {
			if ctx.Err() == nil {
				fc.sizes()
			}
			return
		}
	}
}

// park waits for an append to one of the partitions (see waitAny), counted in the
// fetch purgatory and in the request's parked time while it does.
func (fc *fetchCtx) park(ctx context.Context, waits []<-chan struct{}) bool {
	start := time.Now()
	fc.h.m.Purgatory.Fetch.Inc()
	fired := waitAny(ctx, waits, fc.deadline)
	fc.h.m.Purgatory.Fetch.Dec()
	fc.r.Client.Parked += time.Since(start)
	return fired
}

// sizes finds every partition's records as file ranges within the limits and returns
// their bytes and whether any partition has an error, a preferred read replica or a
// diverging epoch (which makes the fetch answer at once, as in Kafka).
func (fc *fetchCtx) sizes() (total int64, anyErr bool) {
	limit := fc.limit
	minOne := true // until a partition has records
	for i := range fc.results {
		r := &fc.results[i]
		fc.size(i, limit, minOne, total)
		// A preferred read replica or a diverging epoch is answered at once too, as
		// Kafka's ReplicaManager does: the client acts on it, not on records.
		anyErr = anyErr || r.errCode != 0 || r.preferred >= 0 || r.diverging
		if r.size > 0 {
			minOne = false
		}
		limit = max(0, limit-r.size) // Kafka's: a negative limit counts as 0 from here on
		total += r.size
	}
	return total, anyErr
}

// size finds partition i's records within limit (the first batch whole with minOne),
// total being the record bytes of the partitions before it.
func (fc *fetchCtx) size(i int, limit int64, minOne bool, total int64) {
	w, r := &fc.wants[i], &fc.results[i]
	*r = fetchResult{highWatermark: -1, lastStable: -1, logStartOffset: -1, preferred: -1}
	if w.errCode != 0 {
		r.errCode = w.errCode
		return
	}
	p, err := fc.h.b.LeaderPartition(w.key.topic, w.key.partition)
	leader := err == nil
	if err != nil && fc.follower == nil && fc.version >= 11 {
		// A consumer that sends its client metadata (v11+) may read from a follower,
		// up to the follower's high watermark (KIP-392).
		if fp := fc.h.b.FollowerPartition(w.key.topic, w.key.partition); fp != nil {
			p, err = fp, nil
		}
	}
	if err != nil {
		r.errCode = codeOf(err)
		if r.errCode == kerr.UnknownTopicOrPartition.Code && fc.version >= 13 {
			r.errCode = kerr.UnknownTopicID.Code
		}
		r.leader, _ = currentLeader(err)
		return
	}
	r.p = p
	if fc.follower != nil {
		fc.sizeFollower(w, r, p, min(int64(w.maxBytes), limit, fc.frameCap-total), minOne)
		return
	}
	r.highWatermark, r.lastStable, r.logStartOffset = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
	if code := checkLeaderEpoch(p, w.leaderEpoch); code != 0 {
		r.errCode = code
		return
	}
	if leader && fc.version >= 11 && fc.rack != "" {
		if id := fc.h.b.PreferredReadReplica(w.key.topic, w.key.partition, fc.rack, fc.h.clientListener()); id >= 0 {
			r.preferred = id // no records: the consumer reads them there
			return
		}
	}
	var ranges []log.Range
	if lim := min(int64(w.maxBytes), limit); lim < 0 {
		err = fc.negativeLimit(w, r)
	} else {
		ranges, err = p.Read(w.fetchOffset, min(lim, fc.frameCap-total), minOne, fc.readCommitted)
	}
	if err == nil && w.fetchOffset < r.logStartOffset {
		err = log.ErrOffsetOutOfRange
	}
	if err != nil {
		r.errCode = codeOf(err)
		if r.errCode == kerr.UnknownServerError.Code && err != errNegativeFetchLimit {
			fc.h.b.Logger().Error("fetch", "topic", w.key.topic, "partition", w.key.partition, "err", err)
		}
		return
	}
	n := log.RangesLen(ranges)
	if total+n > fc.frameCap {
		// A first batch within a few bytes of 2 GiB: no frame can carry it.
		fc.h.b.Logger().Warn("fetch: batch too large for a response frame", "topic", w.key.topic, "partition", w.key.partition,
			"offset", w.fetchOffset, "bytes", n)
		return
	}
	r.ranges, r.size = ranges, n
}

// negativeLimit answers a partition whose byte limit is negative as Kafka does: an
// offset out of range as such, a partition with records to read with an error, and
// one with nothing to read with nothing.
func (fc *fetchCtx) negativeLimit(w *fetchWant, r *fetchResult) error {
	upTo := r.highWatermark
	if fc.readCommitted {
		upTo = r.lastStable
	}
	switch {
	case w.fetchOffset < r.logStartOffset || w.fetchOffset > r.highWatermark:
		return log.ErrOffsetOutOfRange
	case w.fetchOffset < upTo:
		return errNegativeFetchLimit
	}
	return nil
}

// materialize takes the records of the ranges found: pinned or read, once.
func (fc *fetchCtx) materialize(ctx context.Context) {
	if ctx.Err() != nil {
		return // the connection or the broker is closing: nothing will be sent
	}
	need := fc.plan()
	if need == 0 {
		return
	}
	budget := fc.h.fetchBudget
	got, waited := budget.take(ctx, roundRead(need), fc.deadline)
	if waited {
		// The ranges may have gone stale while the fetch waited for the budget (a
		// segment deleted): find them again.
		fc.unpin()
		fc.sizes()
		need = fc.plan()
	}
	if roundRead(need) > got {
		need = fc.trim(got, got == budget.max)
	}
	rr := recordReader{h: fc.h, left: need}
	for i := range fc.results {
		res := &fc.results[i]
		if !res.read {
			continue
		}
		left := rr.left - res.size
		pieces, err := rr.read(res.ranges)
		rr.left = left
		if err != nil {
			w := &fc.wants[i]
			fc.h.b.Logger().Warn("fetch read", "topic", w.key.topic, "partition", w.key.partition, "err", err)
			res.errCode, res.size = codeOf(err), 0
			continue
		}
		res.records.pieces = pieces
	}
	if rr.held > got {
		budget.force(rr.held - got)
	} else {
		budget.release(got - rr.held)
	}
	fc.r.pooled = append(fc.r.pooled, rr.bufs...)
	fc.r.charged += rr.held
}

// plan pins the ranges to be sent from their files and marks the others to be read;
// it returns the bytes to read.
func (fc *fetchCtx) plan() (need int64) {
	for i := range fc.results {
		res := &fc.results[i]
		if res.size == 0 {
			continue
		}
		if fc.r.pin && res.size >= minSendfileBytes {
			if pins, ok := log.PinRanges(nil, res.ranges); ok {
				res.records.pinned = pins
				continue
			}
		}
		res.read = true
		need += res.size
	}
	return need
}

// trim cuts the records to be read down to got bytes of buffers: partitions are kept
// whole while they fit, the one that does not is found again within what is left, and
// those after it get none. A fetch holding the whole budget (whole) still sends the
// first batch of its response whole, whatever its size. It returns the bytes to read.
func (fc *fetchCtx) trim(got int64, whole bool) (need int64) {
	room := got &^ (minReadChunk - 1)
	first, cut := true, false
	for i := range fc.results {
		res := &fc.results[i]
		switch {
		case res.size == 0:
			continue
		case !res.read: // pinned
			first = false
			continue
		case cut:
			res.ranges, res.size, res.read = nil, 0, false
			continue
		case need+res.size <= room:
			need += res.size
			first = false
			continue
		}
		cut = true
		w := &fc.wants[i]
		minOne := first && whole
		var ranges []log.Range
		var err error
		if fc.follower != nil {
			ranges, err = fc.readFollower(w, res.p, room-need, minOne)
		} else {
			ranges, err = res.p.Read(w.fetchOffset, room-need, minOne, fc.readCommitted)
		}
		n := log.RangesLen(ranges)
		if err != nil || n == 0 || need+n > room && !minOne {
			res.ranges, res.size, res.read = nil, 0, false
			continue
		}
		res.ranges, res.size = ranges, n
		need += n
	}
	return need
}

// unpin closes the ranges pinned so far (a fetch answered without them).
func (fc *fetchCtx) unpin() {
	for i := range fc.results {
		for _, p := range fc.results[i].records.pinned {
			p.Close()
		}
		fc.results[i].records.pinned = nil
	}
}

// roundRead is the buffer capacity reading n bytes takes.
func roundRead(n int64) int64 { return (n + minReadChunk - 1) &^ (minReadChunk - 1) }

// recordReader reads ranges into pooled buffers, one after the other, each sized for
// what is left to read (a power of two from minReadChunk to maxReadChunk).
type recordReader struct {
	h    *Handler
	left int64 // bytes still to be read: the next buffer's size
	bufs [][]byte
	cur  []byte
	off  int
	held int64 // the buffers' capacity
}

func (rr *recordReader) next() {
	size := int64(minReadChunk)
	for size*2 <= min(rr.left, maxReadChunk) {
		size *= 2
	}
	rr.cur, rr.off = rr.h.bufs.Get(int(size)), 0
	rr.bufs = append(rr.bufs, rr.cur)
	rr.held += int64(cap(rr.cur))
}

// read reads rs, back to back, and returns the pieces of buffers holding them.
func (rr *recordReader) read(rs []log.Range) ([][]byte, error) {
	var pieces [][]byte
	start := rr.off
	for _, r := range rs {
		for pos, end := r.Pos, r.Pos+r.Len; pos < end; {
			if rr.cur == nil || rr.off == len(rr.cur) {
				if rr.cur != nil && rr.off > start {
					pieces = append(pieces, rr.cur[start:rr.off])
				}
				rr.next()
				start = 0
			}
			m := int(min(int64(len(rr.cur)-rr.off), end-pos))
			k, err := r.File.ReadAt(rr.cur[rr.off:rr.off+m], pos)
			if k < m {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("read %s at %d: %w", r.File.Name(), pos, err)
			}
			rr.off += m
			rr.left -= int64(m)
			pos += int64(m)
		}
	}
	if rr.cur != nil && rr.off > start {
		pieces = append(pieces, rr.cur[start:rr.off])
	}
	return pieces, nil
}

// checkServable answers what Kafka's replica manager answers before serving a partition:
// KAFKA_STORAGE_ERROR while its log dir is offline, then the leader-epoch check.
func checkServable(p *partition.Partition, requested int32) int16 {
	if err := p.Log().Err(); err != nil {
		return codeOf(err)
	}
	return checkLeaderEpoch(p, requested)
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

// selectAny waits on many channels at once (reflect.Select); it reports whether one of
// chans fired rather than timeout or ctx.
func selectAny(ctx context.Context, timeout <-chan time.Time, chans []<-chan struct{}) bool {
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	i, _, _ := reflect.Select(cases)
	return i >= 2
}
