// Command jsbench is bench/replicated's load generator for NATS JetStream, the replicated peer
// Vltava is measured against: the counterpart of `vltava bench produce|e2e` for a JetStream
// cluster, with the same record size, rate, warm-up and figures (same JSON field names).
//
// It creates --streams streams (the counterpart of a topic's partitions: each stream is one
// Raft group with its own leader, as each partition has its own leader) with --replicas
// replicas on file storage, and publishes to them round-robin with durable, acknowledged
// asynchronous publishes: an ack comes once the stream's Raft group has stored the message on
// a quorum of its replicas. In e2e mode an ordered consumer per stream, created before the
// first publish, reads the stream as it grows; every value carries its send time in its first
// 8 bytes, as in `vltava bench`.
//
// This is a module of its own (bench/jetstream/go.mod) so that the NATS server and client,
// pinned here, are not dependencies of Vltava. bench/replicated builds it and nats-server from
// the same go.mod.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// warmupFlag marks a value sent during warm-up, as in `vltava bench`.
const warmupFlag = uint64(1) << 63

// Latency and Result carry the JSON names of internal/bench's, so one jq expression reads both.
type Latency struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

type Result struct {
	Mode             string   `json:"mode"`
	Records          int64    `json:"records"`
	Bytes            int64    `json:"bytes"`
	Seconds          float64  `json:"seconds"`
	RecordsPerSec    float64  `json:"records_per_sec"`
	MBPerSec         float64  `json:"mb_per_sec"`
	WarmupRecords    int64    `json:"warmup_records"`
	Produced         int64    `json:"produced"`
	Errors           int64    `json:"errors"`
	FirstError       string   `json:"first_error,omitempty"`
	ProduceLatency   *Latency `json:"produce_latency,omitempty"`
	EndToEndLatency  *Latency `json:"e2e_latency,omitempty"`
	ClientCPUSeconds float64  `json:"client_cpu_seconds"`
	Settings         struct {
		RecordSize    int     `json:"record_size"`
		Streams       int     `json:"streams"`
		Replicas      int     `json:"replicas"`
		MaxPending    int     `json:"max_pending"`
		TargetRecsSec float64 `json:"target_records_per_sec"`
		WarmupSeconds float64 `json:"warmup_seconds"`
	} `json:"settings"`
}

// hist is a latency histogram in microseconds, 1 µs to 5 min, 3 significant digits.
type hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHist() *hist { return &hist{h: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)} }

func (h *hist) record(d time.Duration) {
	us := max(int64(d/time.Microsecond), 1)
	h.mu.Lock()
	_ = h.h.RecordValue(min(us, h.h.HighestTrackableValue()))
	h.mu.Unlock()
}

func (h *hist) summary() *Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Latency{Count: h.h.TotalCount(), MeanMs: h.h.Mean() / 1000, P50Ms: ms(h.h.ValueAtQuantile(50)),
		P99Ms: ms(h.h.ValueAtQuantile(99)), P999Ms: ms(h.h.ValueAtQuantile(99.9)), MaxMs: ms(h.h.Max())}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jsbench:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := "produce"
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		mode = os.Args[1]
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	if mode != "produce" && mode != "e2e" {
		return fmt.Errorf("mode %q: want produce or e2e", mode)
	}
	servers := flag.String("servers", "nats://127.0.0.1:4222", "comma-separated server URLs")
	prefix := flag.String("stream", "bench", "stream name prefix (streams PREFIX-0..N-1, subjects PREFIX.0..N-1)")
	streams := flag.Int("streams", 8, "streams to create and publish to round-robin")
	replicas := flag.Int("replicas", 3, "replicas of each stream")
	size := flag.Int("record-size", 1024, "message payload bytes (at least 8)")
	rateMB := flag.Float64("rate-mb", 0, "target rate in 10^6 bytes of payload per second (0 = as fast as possible)")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 0, "publish this long before measuring")
	// 32,768 messages of 1 KiB are the 32 MiB a `vltava bench` producer may buffer
	// (buffer.memory), so neither client is held back by a smaller window than the other.
	maxPending := flag.Int("max-pending", 32768, "unacknowledged async publishes allowed (nats.go's default is 4000)")
	timeout := flag.Duration("timeout", 30*time.Second, "e2e: give up when no message arrives for this long")
	flag.Parse()
	if *size < 8 {
		return errors.New("--record-size must be at least 8")
	}
	cpu0 := cpuSeconds()

	nc, err := nats.Connect(*servers, nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *servers, err)
	}
	defer nc.Close()
	base := time.Now()
	var (
		acked, measured, warmAcked, errs atomic.Int64
		lastAck                          atomic.Int64
		firstErr                         atomic.Value
		prodLat                          = newHist()
	)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*maxPending),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			now := time.Since(base)
			sent := binary.BigEndian.Uint64(m.Data)
			acked.Add(1)
			if sent&warmupFlag != 0 {
				warmAcked.Add(1)
				return
			}
			measured.Add(1)
			lastAck.Store(int64(now))
			prodLat.record(now - time.Duration(sent))
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subjects := make([]string, *streams)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("%s.%d", *prefix, i)
		cfg := jetstream.StreamConfig{Name: fmt.Sprintf("%s-%d", *prefix, i), Subjects: []string{subjects[i]},
			Replicas: *replicas, Storage: jetstream.FileStorage}
		// A cluster that has just started may not have elected its metadata leader yet, and an
		// API request then goes unanswered: try again with short attempts until ctx ends.
		for {
			actx, acancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := js.CreateOrUpdateStream(actx, cfg)
			acancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create stream %s: %w", cfg.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	var consumed, recvMeasured atomic.Int64
	var lastRecv atomic.Int64 // ns since base of the latest message received
	e2eLat := newHist()
	if mode == "e2e" {
		for i := range subjects {
			c, err := js.OrderedConsumer(ctx, fmt.Sprintf("%s-%d", *prefix, i), jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
			if err != nil {
				return fmt.Errorf("consumer on %s-%d: %w", *prefix, i, err)
			}
			cc, err := c.Consume(func(m jetstream.Msg) {
				now := time.Since(base)
				consumed.Add(1)
				lastRecv.Store(int64(now))
				sent := binary.BigEndian.Uint64(m.Data())
				if sent&warmupFlag == 0 {
					recvMeasured.Add(1)
					e2eLat.record(now - time.Duration(sent))
				}
			})
			if err != nil {
				return fmt.Errorf("consume %s-%d: %w", *prefix, i, err)
			}
			defer cc.Stop()
		}
	}

	// One payload of random capital letters, repeated, like `vltava bench`; the first 8 bytes
	// of each message's copy carry its send time.
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = 'A' + byte(rng.IntN(26))
	}
	// Warm-up and the measured time start once the streams (and the consumers) are ready:
	// on a cluster that has just started, creating them can take longer than a short run.
	start := time.Since(base)
	warmEnd := start + *warmup
	var interval time.Duration
	if *rateMB > 0 {
		interval = time.Duration(float64(time.Second) * float64(*size) / (*rateMB * 1e6))
	}
	deadline := warmEnd + *duration
	next := start
	for i := 0; ; i++ {
		now := time.Since(base)
		if now >= deadline {
			break
		}
		if interval > 0 {
			if next > now+time.Millisecond {
				time.Sleep(next - now)
			}
			next += interval
			now = time.Since(base)
		}
		data := make([]byte, *size)
		copy(data, payload)
		stamp := uint64(now)
		if now < warmEnd {
			stamp |= warmupFlag
		}
		binary.BigEndian.PutUint64(data, stamp)
		// A full window blocks the publisher, as a full buffer.memory blocks a Kafka producer:
		// nats.go gives up after a short stall, so try again rather than drop the message.
		for {
			_, err := js.PublishAsync(subjects[i%len(subjects)], data)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue
			}
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(*timeout):
		errs.Add(int64(js.PublishAsyncPending()))
		firstErr.CompareAndSwap(nil, fmt.Sprintf("%d publishes unacknowledged after %s", js.PublishAsyncPending(), *timeout))
	}

	res := &Result{Mode: mode, Produced: acked.Load(), WarmupRecords: warmAcked.Load(), ProduceLatency: prodLat.summary()}
	end := time.Duration(lastAck.Load())
	res.Records = measured.Load()
	if mode == "e2e" {
		// Wait until every acknowledged message has arrived, or none has for --timeout.
		for consumed.Load() < acked.Load() {
			if time.Since(base)-time.Duration(lastRecv.Load()) > *timeout {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if missing := acked.Load() - consumed.Load(); missing > 0 {
			errs.Add(missing)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("%d acknowledged messages never arrived", missing))
		}
		res.Records = recvMeasured.Load()
		res.EndToEndLatency = e2eLat.summary()
		end = time.Duration(lastRecv.Load())
	}
	res.Errors = errs.Load()
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	res.Bytes = res.Records * int64(*size)
	if secs := (end - warmEnd).Seconds(); secs > 0 {
		res.Seconds = secs
		res.RecordsPerSec = float64(res.Records) / secs
		res.MBPerSec = float64(res.Bytes) / secs / 1e6
	}
	res.Settings.RecordSize, res.Settings.Streams, res.Settings.Replicas, res.Settings.MaxPending = *size, *streams, *replicas, *maxPending
	if interval > 0 {
		res.Settings.TargetRecsSec = float64(time.Second) / float64(interval)
	}
	res.Settings.WarmupSeconds = warmup.Seconds()
	res.ClientCPUSeconds = cpuSeconds() - cpu0
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d errors, first: %s", res.Errors, res.FirstError)
	}
	return nil
}
