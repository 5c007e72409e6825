// Package metrics is the broker's Prometheus metrics: it owns the registry (no global
// one), the instruments the layers update on their hot paths, and the collectors that
// read the rest at scrape time from small interfaces the server implements (Sources).
//
// Names: where Kafka has the metric, the name the usual Prometheus JMX exporter rules
// (Strimzi's kafka-metrics.yaml, lowercaseOutputName) give its MBean, so existing
// dashboards and alerts work: kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,
// topic=T becomes kafka_server_brokertopicmetrics_bytesin_total{topic="T"}, and the
// MBean without a topic the same name with no topic label (here topic="", which
// Prometheus treats as no label). Kafka's timing histograms (TotalTimeMs,
// LogFlushRateAndTimeMs) keep their names and their unit, milliseconds, but are
// Prometheus histograms (_bucket, _sum, _count) rather than the exporter's quantile
// gauges: _count is what the exporter renders, and quantiles come from
// histogram_quantile. Everything Kafka has no metric for is named vltava_*, in base
// units (seconds, bytes).
//
// Cost on the hot paths: every instrument a request touches is resolved once (per API
// and version, per topic) and updated with atomic adds; nothing allocates per request
// or per record (BenchmarkHotPath).
//
// Cardinality: per-topic series are bounded by vltava.metrics.topic.series.max (7
// counters per topic); per-partition series (4 log gauges, the high watermark,
// producer state, the cleaner's dirty ratio for compacted topics, and consumer lag per
// committed partition, bounded by vltava.metrics.consumer.lag.series.max) are turned
// off by vltava.metrics.partition.series.enable=false. Request series are bounded by
// the APIs and versions the broker serves.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config bounds what is exported.
type Config struct {
	// PartitionSeries is vltava.metrics.partition.series.enable.
	PartitionSeries bool
	// TopicSeriesMax is vltava.metrics.topic.series.max: topics with their own
	// BrokerTopicMetrics series.
	TopicSeriesMax int
	// LagSeriesMax is vltava.metrics.consumer.lag.series.max: committed offsets read
	// per scrape for the lag metrics.
	LagSeriesMax int
}

// DefaultConfig is the configuration's defaults, for callers without one (tests).
func DefaultConfig() Config {
	return Config{PartitionSeries: true, TopicSeriesMax: 1000, LagSeriesMax: 10000}
}

// Metrics is one broker's metrics and their registry.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	// Instruments updated by the layers as things happen.
	Requests    *Requests    // per API: count and total time (server)
	Topics      *Topics      // BrokerTopicMetrics (handler)
	Conns       *Connections // connections accepted, refused, open (server)
	Purgatory   *Purgatory   // requests waiting on purpose (handler)
	Log         *LogTimings  // appends and flushes (log)
	Replication *Replication // committed ISR changes of the partitions led here

	watchOnce sync.Once
}

// New returns the metrics with a fresh registry holding the Go runtime and process
// collectors and the instruments above. Scrape-time metrics are added by Watch.
func New(cfg Config) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{cfg: cfg, reg: reg}
	m.Requests = newRequests(reg)
	m.Topics = newTopics(reg, cfg.TopicSeriesMax)
	m.Conns = newConnections(reg)
	m.Purgatory = newPurgatory(reg)
	m.Log = newLogTimings(reg)
	m.Replication = newReplication(reg)
	return m
}

// Config returns the bounds the metrics were made with.
func (m *Metrics) Config() Config { return m.cfg }

// Registry is where every metric is registered (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Watch registers the metrics read at scrape time from src. Only the first call
// registers anything: the server calls it once its layers exist.
func (m *Metrics) Watch(src Sources) {
	m.watchOnce.Do(func() {
		m.reg.MustRegister(&scrape{cfg: m.cfg, src: src})
	})
}

// Handler serves the registry in the Prometheus exposition formats. A collector that
// fails does not fail the scrape: the others are served and the error is logged by
// the caller's error log, if any.
func (m *Metrics) Handler(errorLog promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, // scrapes walk every partition: a few at a time is plenty
		Timeout:             30 * time.Second,
	})
}

// msBuckets are the buckets of Kafka's millisecond timings: from 0.1 ms (an answer
// from memory) to 30 s (request.timeout.ms).
var msBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// ms converts a duration to Kafka's milliseconds, keeping the fraction.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
