package metrics

// The smaller instruments the layers update as things happen: connections, the
// requests waiting on purpose (Kafka's purgatories), the log's write and flush
// timings, and the ISR changes the replication code will count.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connections are the client connections of the listeners.
type Connections struct {
	// Open is Kafka's socket-server-metrics connection-count (Strimzi renders it
	// kafka_server_socket_server_metrics_connection_count), for the PLAINTEXT listener.
	Open     prometheus.Gauge
	Accepted prometheus.Counter
	// RefusedMax and RefusedPerIP are connections closed at accept for
	// max.connections and max.connections.per.ip.
	RefusedMax   prometheus.Counter
	RefusedPerIP prometheus.Counter
}

func newConnections(reg prometheus.Registerer) *Connections {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vltava_server_connections_refused_total",
		Help: "Connections closed at accept because a limit was reached, by the limit's config key.",
	}, []string{"limit"})
	c := &Connections{
		Open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "kafka_server_socket_server_metrics_connection_count",
			Help:        "Open client connections (socket-server-metrics connection-count).",
			ConstLabels: prometheus.Labels{"listener": "PLAINTEXT"},
		}),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vltava_server_connections_accepted_total",
			Help: "Client connections accepted and served.",
		}),
		RefusedMax:   refused.WithLabelValues("max.connections"),
		RefusedPerIP: refused.WithLabelValues("max.connections.per.ip"),
	}
	reg.MustRegister(c.Open, c.Accepted, refused)
	return c
}

// Purgatory is Kafka's DelayedOperationPurgatory PurgatorySize: requests parked until
// their condition holds or they time out.
type Purgatory struct {
	// Fetch is long-poll fetches waiting for min_bytes.
	Fetch prometheus.Gauge
	// Produce is acks=all produces waiting for the in-sync replicas; on one node
	// none waits, so it stays 0 until replication moves the high watermark.
	Produce prometheus.Gauge
}

func newPurgatory(reg prometheus.Registerer) *Purgatory {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafka_server_delayedoperationpurgatory_purgatorysize",
		Help: "Requests waiting on purpose, by kind (DelayedOperationPurgatory PurgatorySize): Fetch, long polls waiting for min_bytes; Produce, acks=all waiting for the ISR.",
	}, []string{"delayedOperation"})
	reg.MustRegister(v)
	return &Purgatory{Fetch: v.WithLabelValues("Fetch"), Produce: v.WithLabelValues("Produce")}
}

// LogTimings are the timings of every partition's log.
type LogTimings struct {
	append prometheus.Histogram
	flush  prometheus.Histogram
}

func newLogTimings(reg prometheus.Registerer) *LogTimings {
	t := &LogTimings{
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vltava_log_append_seconds",
			Help:    "Time to write appended batches into a partition's active segment (one write of the batches queued behind the partition's lock, the roll included), without any fsync.",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kafka_log_logflushstats_logflushrateandtimems",
			Help:    "Milliseconds per log flush: the fsyncs of a partition's segments and directory (LogFlushStats LogFlushRateAndTimeMs).",
			Buckets: msBuckets,
		}),
	}
	reg.MustRegister(t.append, t.flush)
	return t
}

// Appended records the time of one write of batches to a segment.
func (t *LogTimings) Appended(d time.Duration) { t.append.Observe(d.Seconds()) }

// Flushed records the time of one flush.
func (t *LogTimings) Flushed(d time.Duration) { t.flush.Observe(ms(d)) }

// Replication counts the ISR changes of the partitions this broker leads (Kafka's
// ReplicaManager IsrShrinksPerSec and IsrExpandsPerSec): a leader replica calls Shrunk
// or Expanded when the controller has committed its change (AlterPartition answered),
// as Kafka's AlterPartitionListener is told. With one replica the ISR never changes.
type Replication struct {
	shrinks, expands prometheus.Counter
}

func newReplication(reg prometheus.Registerer) *Replication {
	r := &Replication{
		shrinks: prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_server_replicamanager_isrshrinks_total", Help: "Times the ISR of a partition this broker leads shrank (ReplicaManager IsrShrinksPerSec)."}),
		expands: prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_server_replicamanager_isrexpands_total", Help: "Times the ISR of a partition this broker leads grew (ReplicaManager IsrExpandsPerSec)."}),
	}
	reg.MustRegister(r.shrinks, r.expands)
	return r
}

// Shrunk counts an ISR shrink.
func (r *Replication) Shrunk() { r.shrinks.Inc() }

// Expanded counts an ISR expansion.
func (r *Replication) Expanded() { r.expands.Inc() }
