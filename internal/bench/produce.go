package bench

// The producing side: cfg.producers kgo clients, each fed by one goroutine that paces itself to
// its share of --rate, and the produce mode built on them.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// warmupFlag marks, in the 8-byte send-time prefix of a value, a record sent during warm-up, so a
// consumer can leave it out of its figures exactly as the producer did.
const warmupFlag = uint64(1) << 63

// pacingSlack is how far ahead of schedule a paced producer may run before it sleeps: sleeping
// for each record at tens of thousands of records a second costs more than it smooths.
const pacingSlack = time.Millisecond

// produceRun is one run of all producers. Times are durations since base, a monotonic clock
// reading shared with the consumers of an e2e run.
type produceRun struct {
	cfg       *config
	base      time.Time
	warmupEnd time.Duration
	deadline  time.Duration // 0: stop on the record budget instead
	budget    atomic.Int64  // measured records not yet handed to a producer, when cfg.records > 0
	payload   []byte
	c         *counters

	measured      atomic.Int64 // acked records sent after warm-up
	measuredBytes atomic.Int64
	warmupAcked   atomic.Int64
	lastAck       atomic.Int64 // time of the latest measured ack, in ns since base
	errs          atomic.Int64
	firstErr      firstError
	lat           []*latencyRecorder
	hooks         produceHooks
}

// benchRecord is a record with its buffer and bookkeeping. It is also the record's Context (a
// never-cancelled one), which lets the promise find it again without a map or an allocation;
// records are pooled, so steady-state producing allocates nothing per record in the bench itself.
type benchRecord struct {
	context.Context
	rec      kgo.Record
	buf      []byte // key followed by value
	sent     time.Duration
	measured bool
}

func newProduceRun(cfg *config, base time.Time, c *counters) *produceRun {
	pr := &produceRun{cfg: cfg, base: base, warmupEnd: cfg.warmup, c: c}
	if cfg.duration > 0 {
		pr.deadline = cfg.warmup + cfg.duration
	}
	pr.budget.Store(cfg.records)
	// Like kafka-producer-perf-test, every record repeats one random payload of capital letters;
	// compression ratios are therefore optimistic, and the same for every broker.
	rng := rand.New(rand.NewPCG(1, 2))
	pr.payload = make([]byte, cfg.recordSize)
	for i := range pr.payload {
		pr.payload[i] = 'A' + byte(rng.IntN(26))
	}
	return pr
}

func (pr *produceRun) clientOpts() ([]kgo.Opt, error) {
	codec, err := compressionCodec(pr.cfg.compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.WithHooks(&pr.hooks),
		kgo.SeedBrokers(pr.cfg.brokers...),
		kgo.ClientID("vltava-bench-producer"),
		kgo.DefaultProduceTopic(pr.cfg.topic),
		kgo.ProducerLinger(pr.cfg.linger),
		kgo.ProducerBatchCompression(codec),
	}
	switch pr.cfg.acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !pr.cfg.idempotent {
		// Kafka's producer allows 5 requests in flight; kgo allows 1 unless told otherwise.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	if pr.cfg.batchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(pr.cfg.batchBytes)))
	}
	// A bound in bytes, as Kafka's producer has, rather than kgo's default bound in records
	// (50,000), which for 1 KiB records would queue 50 MB in the client and report queueing
	// there as produce latency.
	opts = append(opts, kgo.MaxBufferedBytes(int(pr.cfg.bufferMemory)))
	return opts, nil
}

// run starts the producers, waits until they have sent their share and every record is answered,
// and closes them.
func (pr *produceRun) run(ctx context.Context) error {
	opts, err := pr.clientOpts()
	if err != nil {
		return err
	}
	clients := make([]*kgo.Client, 0, pr.cfg.producers)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for i := 0; i < pr.cfg.producers; i++ {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("producer %d: %w", i, err)
		}
		clients = append(clients, cl)
		pr.lat = append(pr.lat, newLatencyRecorder())
	}
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.loop(ctx, cl, i, pr.lat[i])
			// Flush waits for every promise; if ctx is cancelled it returns early and Close fails
			// what is left.
			_ = cl.Flush(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// loop produces records until the budget or the deadline is reached.
func (pr *produceRun) loop(ctx context.Context, cl *kgo.Client, idx int, lat *latencyRecorder) {
	keyLen := pr.cfg.keyLen()
	pool := sync.Pool{New: func() any {
		br := &benchRecord{Context: context.Background(), buf: make([]byte, keyLen+pr.cfg.recordSize)}
		copy(br.buf[keyLen:], pr.payload)
		return br
	}}
	promise := func(r *kgo.Record, err error) {
		br := r.Context.(*benchRecord)
		pr.acked(br, err, lat)
		pool.Put(br)
	}
	rng := rand.New(rand.NewPCG(uint64(idx), uint64(time.Now().UnixNano())))
	seq := uint64(idx) << 40 // distinct sequential keys per producer
	perSec := pr.cfg.recordsPerSec / float64(pr.cfg.producers)
	start := time.Since(pr.base)
	for n := int64(0); ctx.Err() == nil; n++ {
		now := time.Since(pr.base)
		measured := now >= pr.warmupEnd
		if measured {
			if pr.deadline > 0 && now >= pr.deadline {
				return
			}
			if pr.cfg.records > 0 && pr.budget.Add(-1) < 0 {
				return
			}
		}
		if perSec > 0 {
			due := start + time.Duration(float64(n)*1e9/perSec)
			if ahead := due - now; ahead > pacingSlack {
				if !sleepCtx(ctx, ahead) {
					return
				}
				now = time.Since(pr.base)
			}
		}
		br := pool.Get().(*benchRecord)
		br.rec = kgo.Record{Context: br, Value: br.buf[keyLen:]}
		switch pr.cfg.keyDist {
		case "random":
			binary.BigEndian.PutUint64(br.buf, rng.Uint64())
			br.rec.Key = br.buf[:keyLen]
		case "sequential":
			binary.BigEndian.PutUint64(br.buf, seq)
			seq++
			br.rec.Key = br.buf[:keyLen]
		}
		br.sent, br.measured = now, measured
		stamp := uint64(now)
		if !measured {
			stamp |= warmupFlag
		}
		binary.LittleEndian.PutUint64(br.rec.Value, stamp)
		cl.Produce(ctx, &br.rec, promise)
	}
}

// acked is called from a client's promise goroutine for each record.
func (pr *produceRun) acked(br *benchRecord, err error, lat *latencyRecorder) {
	if err != nil {
		pr.errs.Add(1)
		pr.firstErr.set(err)
		return
	}
	now := time.Since(pr.base)
	size := int64(len(br.rec.Key) + len(br.rec.Value))
	pr.c.produced.Add(1)
	if !br.measured {
		pr.warmupAcked.Add(1)
		return
	}
	lat.record(now - br.sent)
	pr.measured.Add(1)
	pr.measuredBytes.Add(size)
	pr.c.producedBytes.Add(size)
	for {
		last := pr.lastAck.Load()
		if int64(now) <= last || pr.lastAck.CompareAndSwap(last, int64(now)) {
			break
		}
	}
}

// window is the measured span: from the end of warm-up (or the start) to the last measured ack.
func (pr *produceRun) window() time.Duration {
	return time.Duration(pr.lastAck.Load()) - pr.warmupEnd
}

// fill puts the producer's figures into a result.
func (pr *produceRun) fill(r *Result) {
	r.Produced = pr.c.produced.Load()
	r.WarmupRecords = pr.warmupAcked.Load()
	r.Errors += pr.errs.Load()
	if r.FirstError == "" {
		r.FirstError = pr.firstErr.String()
	}
	r.ProduceLatency = summarize(pr.lat)
}

func runProduce(ctx context.Context, cfg *config, stderr io.Writer) (*Result, error) {
	if _, err := ensureTopic(ctx, cfg); err != nil {
		return nil, err
	}
	idle, err := maybeIdleConns(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer idle.close()

	c := &counters{}
	pr := newProduceRun(cfg, time.Now(), c)
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); progress(stderr, cfg.mode, cfg.progressInterval(), c, stop) }()
	runErr := pr.run(ctx)
	close(stop)
	<-progressDone

	res := &Result{Records: pr.measured.Load(), Bytes: pr.measuredBytes.Load()}
	if idle != nil {
		res.IdleConnections = len(idle.conns)
	}
	pr.fill(res)
	pr.hooks.fill(res)
	res.finish(cfg, pr.window())
	return res, resultError(runErr, res)
}

// resultError turns a run's outcome into the error Run returns: interrupted runs and failed
// records make the command fail, after their figures are printed.
func resultError(runErr error, r *Result) error {
	if runErr != nil {
		return fmt.Errorf("%s run stopped early: %w", r.Mode, runErr)
	}
	if r.Errors > 0 {
		return fmt.Errorf("%s: %d records failed, first: %s", r.Mode, r.Errors, r.FirstError)
	}
	return nil
}

func maybeIdleConns(ctx context.Context, cfg *config) (*idleConns, error) {
	if cfg.idleConns == 0 {
		return nil, nil
	}
	return openIdleConns(ctx, cfg.brokers[0], cfg.idleConns)
}

// progressInterval is the progress period, or 0 when progress lines are off.
func (c *config) progressInterval() time.Duration {
	if c.quiet {
		return 0
	}
	return c.progress
}

// sleepCtx sleeps for d and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
