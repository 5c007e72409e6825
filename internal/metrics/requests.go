package metrics

// Request metrics, as Kafka's kafka.network:type=RequestMetrics: RequestsPerSec per
// request name and version (kafka_network_requestmetrics_requests_total) and
// TotalTimeMs per request name (kafka_network_requestmetrics_totaltimems, a histogram
// in milliseconds). As in Kafka a consumer's Fetch counts under both Fetch and
// FetchConsumer (a follower's, once there is replication, under Fetch and
// FetchFollower). The series of an API and version are made on its first request and
// kept in arrays indexed by key and version, so serving one costs two atomic loads
// and the adds.

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	maxAPIKey     = 128 // above kmsg.MaxKey; larger keys are never served
	maxAPIVersion = 32
)

// Requests counts requests and their total time per API.
type Requests struct {
	count *prometheus.CounterVec   // request, version
	total *prometheus.HistogramVec // request

	mu   sync.Mutex // creates series
	apis [maxAPIKey]atomic.Pointer[apiSeries]
	// fetchConsumer is FetchConsumer's, created with Fetch's.
	fetchConsumer atomic.Pointer[apiSeries]
}

type apiSeries struct {
	name     string
	total    prometheus.Observer
	versions [maxAPIVersion]atomic.Pointer[prometheus.Counter]
}

func newRequests(reg prometheus.Registerer) *Requests {
	r := &Requests{
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_requests_total",
			Help: "Requests served, by API (Kafka's name) and version (RequestMetrics RequestsPerSec).",
		}, []string{"request", "version"}),
		total: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafka_network_requestmetrics_totaltimems",
			Help:    "Milliseconds from taking a request up to its response being written, by API (RequestMetrics TotalTimeMs); long polls and group barriers included, as in Kafka.",
			Buckets: msBuckets,
		}, []string{"request"}),
	}
	reg.MustRegister(r.count, r.total)
	return r
}

// Done records one request served. Keys and versions the broker does not serve are
// not counted (their connection is closed before).
func (r *Requests) Done(key, version int16, d time.Duration) {
	if key < 0 || key >= maxAPIKey || version < 0 || version >= maxAPIVersion {
		return
	}
	v := ms(d)
	a := r.api(key)
	a.total.Observe(v)
	a.version(r, version).Inc()
	if key == 1 { // Fetch: also FetchConsumer
		c := r.fetchConsumer.Load()
		c.total.Observe(v)
		c.version(r, version).Inc()
	}
}

func (r *Requests) api(key int16) *apiSeries {
	if a := r.apis[key].Load(); a != nil {
		return a
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.apis[key].Load(); a != nil {
		return a
	}
	if key == 1 {
		r.fetchConsumer.Store(r.newAPI("FetchConsumer"))
	}
	a := r.newAPI(KafkaAPIName(key))
	r.apis[key].Store(a)
	return a
}

func (r *Requests) newAPI(name string) *apiSeries {
	return &apiSeries{name: name, total: r.total.WithLabelValues(name)}
}

func (a *apiSeries) version(r *Requests, v int16) prometheus.Counter {
	if c := a.versions[v].Load(); c != nil {
		return *c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := a.versions[v].Load(); c != nil {
		return *c
	}
	c := r.count.WithLabelValues(a.name, strconv.Itoa(int(v)))
	a.versions[v].Store(&c)
	return c
}

// KafkaAPIName is Kafka's name for an API key (ApiKeys' name, as RequestMetrics and
// the request log use it): kmsg's, with Kafka's capitalisation of initialisms
// (InitProducerId, not InitProducerID).
func KafkaAPIName(key int16) string {
	n := kmsg.NameForKey(key)
	for _, r := range [...][2]string{{"ACLs", "Acls"}, {"SASL", "Sasl"}, {"SCRAM", "Scram"}, {"ISR", "Isr"}, {"IDs", "Ids"}} {
		n = strings.ReplaceAll(n, r[0], r[1])
	}
	if s, ok := strings.CutSuffix(n, "ID"); ok {
		n = s + "Id"
	}
	return n
}
