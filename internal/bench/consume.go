package bench

// The consuming side: cfg.consumers kgo clients with the topic's partitions assigned directly
// (no group, so no rebalance or offset commit sits in what we measure), and the consume mode.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeRun is one run of all consumers; times are durations since base.
type consumeRun struct {
	cfg  *config
	base time.Time
	e2e  bool
	c    *counters

	ctx    context.Context // the consumers' context, cancelled once the run is done
	cancel context.CancelFunc

	target    atomic.Int64 // e2e: records to receive in all; MaxInt64 until the producers finish
	budget    atomic.Int64 // consume: records still to count, when cfg.records > 0
	bytesLeft atomic.Int64 // consume: bytes still to count, when cfg.maxBytes > 0

	measured      atomic.Int64
	measuredBytes atomic.Int64
	warmupRecv    atomic.Int64
	lastRecv      atomic.Int64 // ns since base of the latest measured record
	errs          atomic.Int64
	firstErr      firstError
	lat           []*latencyRecorder
}

func newConsumeRun(ctx context.Context, cfg *config, base time.Time, c *counters, e2e bool) *consumeRun {
	cr := &consumeRun{cfg: cfg, base: base, e2e: e2e, c: c}
	cr.ctx, cr.cancel = context.WithCancel(ctx)
	if !e2e && cfg.duration > 0 {
		cr.ctx, cr.cancel = context.WithTimeout(ctx, cfg.duration)
	}
	cr.target.Store(math.MaxInt64)
	cr.budget.Store(cfg.records)
	cr.bytesLeft.Store(cfg.maxBytes)
	return cr
}

// start creates one client per group of partitions and returns a function that waits for all
// consumers to finish and closes them. from is where each partition starts; ends (consume mode)
// is where it stops.
func (cr *consumeRun) start(parts []int32, from, ends map[int32]int64) (wait func(), err error) {
	n := min(cr.cfg.consumers, len(parts))
	assign := make([]map[int32]kgo.Offset, n)
	for i, p := range parts {
		if assign[i%n] == nil {
			assign[i%n] = make(map[int32]kgo.Offset)
		}
		assign[i%n][p] = kgo.NewOffset().At(from[p])
	}
	var clients []*kgo.Client
	closeAll := func() {
		for _, cl := range clients {
			cl.Close()
		}
	}
	for i := range assign {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(cr.cfg.brokers...),
			kgo.ClientID("vltava-bench-consumer"),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cr.cfg.topic: assign[i]}),
		)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("consumer %d: %w", i, err)
		}
		clients = append(clients, cl)
		cr.lat = append(cr.lat, newLatencyRecorder())
	}
	var wg sync.WaitGroup
	for i, cl := range clients {
		var mine map[int32]int64
		if ends != nil {
			mine = make(map[int32]int64)
			for p, o := range from {
				if _, ok := assign[i][p]; ok && ends[p] > o {
					mine[p] = ends[p]
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr.consume(cl, mine, cr.lat[i])
		}()
	}
	return func() { wg.Wait(); closeAll() }, nil
}

// consume polls until the run is done. In consume mode, ends holds the partitions this consumer
// still has to read and where they end; it returns once all are read.
func (cr *consumeRun) consume(cl *kgo.Client, ends map[int32]int64, lat *latencyRecorder) {
	if ends != nil && len(ends) == 0 {
		return
	}
	for {
		pctx, cancel := context.WithTimeout(cr.ctx, cr.cfg.timeout)
		fetches := cl.PollFetches(pctx)
		stalled := pctx.Err() != nil && cr.ctx.Err() == nil
		cancel()
		if cr.ctx.Err() != nil {
			return
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				cr.errs.Add(1)
				cr.firstErr.set(err)
			}
		})
		got := 0
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			got++
			if cr.e2e {
				cr.receive(r, lat)
				continue
			}
			end, ok := ends[r.Partition]
			if !ok || r.Offset >= end {
				continue // read already, or produced after we started: not ours to count
			}
			if r.Offset+1 >= end {
				delete(ends, r.Partition)
			}
			if !cr.count(r) {
				cr.cancel()
				return
			}
		}
		if got == 0 && stalled {
			cr.errs.Add(1)
			cr.firstErr.set(fmt.Errorf("no record arrived for %v", cr.cfg.timeout))
			cr.cancel()
			return
		}
		if cr.e2e {
			cr.checkDone()
		} else if len(ends) == 0 {
			return
		}
	}
}

// count counts one record in consume mode and reports whether the run should go on.
func (cr *consumeRun) count(r *kgo.Record) bool {
	size := int64(len(r.Key) + len(r.Value))
	if cr.cfg.records > 0 && cr.budget.Add(-1) < 0 {
		return false
	}
	cr.c.consumed.Add(1)
	cr.c.consumedBytes.Add(size)
	cr.measured.Add(1)
	cr.measuredBytes.Add(size)
	cr.noteLast(time.Since(cr.base))
	if cr.cfg.records > 0 && cr.budget.Load() <= 0 {
		return false
	}
	return cr.cfg.maxBytes == 0 || cr.bytesLeft.Add(-size) > 0
}

// receive counts one record of an e2e run and records its end-to-end latency.
func (cr *consumeRun) receive(r *kgo.Record, lat *latencyRecorder) {
	now := time.Since(cr.base)
	cr.c.consumed.Add(1)
	if len(r.Value) < 8 {
		return // not one of ours; the count still tells the run it arrived
	}
	stamp := binary.LittleEndian.Uint64(r.Value)
	if stamp&warmupFlag != 0 {
		cr.warmupRecv.Add(1)
		return
	}
	size := int64(len(r.Key) + len(r.Value))
	lat.record(now - time.Duration(stamp))
	cr.c.consumedBytes.Add(size)
	cr.measured.Add(1)
	cr.measuredBytes.Add(size)
	cr.noteLast(now)
}

func (cr *consumeRun) noteLast(now time.Duration) {
	for {
		last := cr.lastRecv.Load()
		if int64(now) <= last || cr.lastRecv.CompareAndSwap(last, int64(now)) {
			return
		}
	}
}

// setTarget tells an e2e run how many records the producers had acknowledged in all.
func (cr *consumeRun) setTarget(n int64) {
	cr.target.Store(n)
	cr.checkDone()
}

// checkDone ends an e2e run once every acknowledged record has arrived. Consumers call it after
// counting and setTarget after storing, so whichever comes last sees both.
func (cr *consumeRun) checkDone() {
	if cr.c.consumed.Load() >= cr.target.Load() {
		cr.cancel()
	}
}

func runConsume(ctx context.Context, cfg *config, stderr io.Writer) (*Result, error) {
	parts, err := ensureTopic(ctx, cfg)
	if err != nil {
		return nil, err
	}
	starts, err := partitionOffsets(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	ends, err := partitionOffsets(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	idle, err := maybeIdleConns(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer idle.close()

	c := &counters{}
	cr := newConsumeRun(ctx, cfg, time.Now(), c, false)
	defer cr.cancel()
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); progress(stderr, cfg.mode, cfg.progressInterval(), c, stop) }()
	wait, err := cr.start(parts, starts, ends)
	if err == nil {
		wait()
	}
	close(stop)
	<-progressDone
	if err != nil {
		return nil, err
	}

	res := &Result{Records: cr.measured.Load(), Bytes: cr.measuredBytes.Load()}
	if idle != nil {
		res.IdleConnections = len(idle.conns)
	}
	res.Errors, res.FirstError = cr.errs.Load(), cr.firstErr.String()
	res.finish(cfg, time.Duration(cr.lastRecv.Load()))
	return res, resultError(ctx.Err(), res)
}
