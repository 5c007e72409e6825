package bench

// Results, latency histograms, progress lines and the final report (text or JSON).

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what one bench run measured. Its JSON form is what scripts read (bench/compare).
type Result struct {
	Mode  string `json:"mode"`
	Topic string `json:"topic"`
	// Records and Bytes are the measured records (after warm-up) and their key+value bytes: acked
	// ones for produce, received ones for consume and e2e.
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// WarmupRecords were sent during --warmup and are in the topic but in no figure.
	WarmupRecords int64 `json:"warmup_records"`
	// Produced is how many records producers had acknowledged in total, warm-up included.
	Produced int64 `json:"produced"`
	// Errors counts records the producer failed (for e2e also records never received).
	Errors          int64    `json:"errors"`
	FirstError      string   `json:"first_error,omitempty"`
	ProduceLatency  *Latency `json:"produce_latency,omitempty"`
	EndToEndLatency *Latency `json:"e2e_latency,omitempty"`
	IdleConnections int      `json:"idle_connections"`
	// Batches and ProduceRequests are what the producers wrote (warm-up included), and
	// RecordsPerBatch / BytesPerBatch (as sent, compressed) their averages.
	Batches         int64   `json:"batches,omitempty"`
	ProduceRequests int64   `json:"produce_requests,omitempty"`
	RecordsPerBatch float64 `json:"records_per_batch,omitempty"`
	BytesPerBatch   float64 `json:"bytes_per_batch,omitempty"`
	// ClientCPUSeconds is the CPU time of this bench process for the whole run, setup included.
	ClientCPUSeconds float64  `json:"client_cpu_seconds"`
	Settings         Settings `json:"settings"`
}

// Settings echoes the workload so a JSON result stands on its own.
type Settings struct {
	RecordSize    int     `json:"record_size"`
	Partitions    int     `json:"partitions"`
	Producers     int     `json:"producers"`
	Consumers     int     `json:"consumers"`
	Acks          string  `json:"acks"`
	Idempotent    bool    `json:"idempotent"`
	Compression   string  `json:"compression"`
	LingerMs      float64 `json:"linger_ms"`
	BatchBytes    int     `json:"batch_bytes"`
	KeyDist       string  `json:"key_distribution"`
	TargetRecsSec float64 `json:"target_records_per_sec"`
	WarmupSeconds float64 `json:"warmup_seconds"`
}

// Latency is a summary of one histogram, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Histograms record microseconds from 1 µs to 5 minutes with 3 significant digits: enough to
// tell 1.00 ms from 1.01 ms and to hold a stalled run without clipping.
const (
	histMinMicros = 1
	histMaxMicros = int64(5 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// latencyRecorder is one histogram behind its own lock: kgo calls a client's promises serially,
// but the progress and final readers run on other goroutines.
type latencyRecorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencyRecorder() *latencyRecorder {
	return &latencyRecorder{h: hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)}
}

func (l *latencyRecorder) record(d time.Duration) {
	us := d.Microseconds()
	if us < histMinMicros {
		us = histMinMicros
	} else if us > histMaxMicros {
		us = histMaxMicros
	}
	l.mu.Lock()
	_ = l.h.RecordValue(us) // cannot fail: us is clamped to the trackable range
	l.mu.Unlock()
}

// summarize merges recorders and returns nil if nothing was recorded.
func summarize(recs []*latencyRecorder) *Latency {
	all := hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
	for _, r := range recs {
		r.mu.Lock()
		all.Merge(r.h)
		r.mu.Unlock()
	}
	if all.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Latency{
		Count:  all.TotalCount(),
		MeanMs: all.Mean() / 1000,
		P50Ms:  ms(all.ValueAtQuantile(50)),
		P99Ms:  ms(all.ValueAtQuantile(99)),
		P999Ms: ms(all.ValueAtQuantile(99.9)),
		MaxMs:  ms(all.Max()),
	}
}

// finish fills the derived fields of a result.
func (r *Result) finish(cfg *config, window time.Duration) {
	r.Mode, r.Topic = cfg.mode, cfg.topic
	if window > 0 {
		r.Seconds = window.Seconds()
	}
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.Seconds
		r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	}
	r.Settings = Settings{
		RecordSize: cfg.recordSize, Partitions: cfg.partitions, Producers: cfg.producers,
		Consumers: cfg.consumers, Acks: cfg.acks, Idempotent: cfg.idempotent,
		Compression: cfg.compression, LingerMs: float64(cfg.linger) / float64(time.Millisecond),
		BatchBytes: cfg.batchBytes, KeyDist: cfg.keyDist, TargetRecsSec: cfg.recordsPerSec,
		WarmupSeconds: cfg.warmup.Seconds(),
	}
}

func writeResult(w io.Writer, cfg *config, r *Result) error {
	if cfg.jsonOut {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	verb := map[string]string{"produce": "produced", "consume": "consumed", "e2e": "received"}[r.Mode]
	fmt.Fprintf(w, "%s: %s %d records (%d bytes) in %.2fs: %.0f records/s, %.2f MB/s\n",
		r.Mode, verb, r.Records, r.Bytes, r.Seconds, r.RecordsPerSec, r.MBPerSec)
	if r.Mode != "consume" {
		idem := "idempotent"
		if !cfg.idempotent {
			idem = "not idempotent"
		}
		fmt.Fprintf(w, "  %d-byte values, key %s, %d producer(s), acks=%s, %s, compression %s, linger %v\n",
			cfg.recordSize, cfg.keyDist, cfg.producers, cfg.acks, idem, cfg.compression, cfg.linger)
	}
	if r.WarmupRecords > 0 {
		fmt.Fprintf(w, "  warm-up: %d records not counted\n", r.WarmupRecords)
	}
	printLatency(w, "produce-ack latency", r.ProduceLatency)
	printLatency(w, "end-to-end latency", r.EndToEndLatency)
	if r.Batches > 0 {
		fmt.Fprintf(w, "  producers wrote %d batches (%.1f records, %.0f bytes each) in %d produce requests\n",
			r.Batches, r.RecordsPerBatch, r.BytesPerBatch, r.ProduceRequests)
	}
	fmt.Fprintf(w, "  client CPU: %.2fs\n", r.ClientCPUSeconds)
	if r.IdleConnections > 0 {
		fmt.Fprintf(w, "  idle connections held: %d\n", r.IdleConnections)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "  errors: %d (first: %s)\n", r.Errors, r.FirstError)
	}
	return nil
}

func printLatency(w io.Writer, name string, l *Latency) {
	if l == nil {
		return
	}
	fmt.Fprintf(w, "  %s ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  (n=%d)\n",
		name, l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.MeanMs, l.Count)
}

// counters are the running totals the workers update and the progress printer samples.
type counters struct {
	produced      atomic.Int64 // acked, warm-up included
	consumed      atomic.Int64 // received, warm-up included
	producedBytes atomic.Int64 // key+value bytes of measured acked records
	consumedBytes atomic.Int64 // key+value bytes of measured received records
}

// progress prints a line to w every interval until stop is closed, and returns once it has
// stopped printing. A line names only what the mode does: produce mode consumes nothing.
func progress(w io.Writer, mode string, interval time.Duration, c *counters, stop <-chan struct{}) {
	if interval <= 0 {
		<-stop
		return
	}
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastP, lastC, lastPB, lastCB int64
	last := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			p, cn := c.produced.Load(), c.consumed.Load()
			pb, cb := c.producedBytes.Load(), c.consumedBytes.Load()
			secs := now.Sub(last).Seconds()
			line := fmt.Sprintf("%6.1fs", now.Sub(start).Seconds())
			if mode != "consume" {
				line += fmt.Sprintf("  produced %d (%.0f/s, %.2f MB/s)", p, float64(p-lastP)/secs, float64(pb-lastPB)/1e6/secs)
			}
			if mode != "produce" {
				line += fmt.Sprintf("  consumed %d (%.0f/s, %.2f MB/s)", cn, float64(cn-lastC)/secs, float64(cb-lastCB)/1e6/secs)
			}
			fmt.Fprintln(w, line)
			lastP, lastC, lastPB, lastCB, last = p, cn, pb, cb, now
		}
	}
}

// firstError keeps the first error of many goroutines.
type firstError struct {
	once sync.Once
	err  error
}

func (f *firstError) set(err error) { f.once.Do(func() { f.err = err }) }

func (f *firstError) String() string {
	if f.err == nil {
		return ""
	}
	return f.err.Error()
}
