package metrics

// BrokerTopicMetrics, per topic and for all topics, as Kafka's
// kafka.server:type=BrokerTopicMetrics MBeans render through the JMX exporter:
//
//	kafka_server_brokertopicmetrics_bytesin_total               record bytes appended (BytesInPerSec)
//	kafka_server_brokertopicmetrics_messagesin_total            records appended (MessagesInPerSec)
//	kafka_server_brokertopicmetrics_bytesout_total              record bytes sent to consumers (BytesOutPerSec)
//	kafka_server_brokertopicmetrics_totalproducerequests_total  partitions produced to (TotalProduceRequestsPerSec)
//	kafka_server_brokertopicmetrics_failedproducerequests_total partitions whose produce failed (FailedProduceRequestsPerSec)
//	kafka_server_brokertopicmetrics_totalfetchrequests_total    partitions fetched (TotalFetchRequestsPerSec)
//	kafka_server_brokertopicmetrics_failedfetchrequests_total   partitions whose fetch failed (FailedFetchRequestsPerSec)
//
// Like Kafka, the produce and fetch counts are per partition of a request, not per
// request, and a topic that does not exist is counted nowhere (its name comes from a
// client). The all-topics series has topic="" (no topic label, to Prometheus).
//
// Which errors count as failures is the handler's, after Kafka's ReplicaManager.
//
// A topic's counters are made on its first use and found again in a copy-on-write map,
// so the produce and fetch paths take no lock, and are plain atomics: the all-topics
// series is their sum, made at scrape time, so a request adds to one set of counters,
// not two. At most max topics have their own series; the others share one set counted
// in the all-topics series only. The handler forgets a deleted topic's series; its
// counts stay in the all-topics sum.

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Topics holds the BrokerTopicMetrics counters.
type Topics struct {
	max      int
	overflow *TopicStats // what topics past max share
	retired  TopicStats  // the counts of forgotten topics, kept in the all-topics sum

	byName atomic.Pointer[map[string]*TopicStats]
	mu     sync.Mutex // writers of byName
}

// TopicStats are one topic's counters.
type TopicStats struct {
	bytesIn, messagesIn, bytesOut, produces, failedProduces, fetches, failedFetches atomic.Uint64
	_                                                                               [8]byte // one cache line each
}

// topicSeries names the counters in TopicStats order.
var topicSeries = [...]struct{ name, help string }{
	{"bytesin", "Record bytes appended by producers (BrokerTopicMetrics BytesInPerSec); topic=\"\" is every topic."},
	{"messagesin", "Records appended by producers (BrokerTopicMetrics MessagesInPerSec); topic=\"\" is every topic."},
	{"bytesout", "Record bytes sent in fetch responses (BrokerTopicMetrics BytesOutPerSec); topic=\"\" is every topic."},
	{"totalproducerequests", "Partitions of produce requests (BrokerTopicMetrics TotalProduceRequestsPerSec); topic=\"\" is every topic."},
	{"failedproducerequests", "Partitions of produce requests that failed (BrokerTopicMetrics FailedProduceRequestsPerSec); topic=\"\" is every topic."},
	{"totalfetchrequests", "Partitions of fetch requests (BrokerTopicMetrics TotalFetchRequestsPerSec); topic=\"\" is every topic."},
	{"failedfetchrequests", "Partitions of fetch requests that failed (BrokerTopicMetrics FailedFetchRequestsPerSec); topic=\"\" is every topic."},
}

var topicDescs = func() (d [len(topicSeries)]*prometheus.Desc) {
	for i, s := range topicSeries {
		d[i] = prometheus.NewDesc("kafka_server_brokertopicmetrics_"+s.name+"_total", s.help, []string{"topic"}, nil)
	}
	return d
}()

func (s *TopicStats) counters() [len(topicSeries)]*atomic.Uint64 {
	return [...]*atomic.Uint64{&s.bytesIn, &s.messagesIn, &s.bytesOut, &s.produces, &s.failedProduces, &s.fetches, &s.failedFetches}
}

func newTopics(reg prometheus.Registerer, max int) *Topics {
	t := &Topics{max: max, overflow: &TopicStats{}}
	m := map[string]*TopicStats{}
	t.byName.Store(&m)
	reg.MustRegister(t)
	return t
}

// Topic returns the stats of an existing topic (never call it with a name no topic
// has: its series would outlive it).
func (t *Topics) Topic(name string) *TopicStats {
	if s := (*t.byName.Load())[name]; s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.byName.Load()
	if s := old[name]; s != nil {
		return s
	}
	if len(old) >= t.max {
		return t.overflow
	}
	s := &TopicStats{}
	next := make(map[string]*TopicStats, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = s
	t.byName.Store(&next)
	return s
}

// Forget removes a deleted topic's series, making room for another topic's. What it
// counted stays in the all-topics series (a request still being served when it is
// forgotten may add to it unseen).
func (t *Topics) Forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.byName.Load()
	s := old[name]
	if s == nil {
		return
	}
	next := make(map[string]*TopicStats, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	t.byName.Store(&next)
	r, c := t.retired.counters(), s.counters()
	for i := range r {
		r[i].Add(c[i].Load())
	}
}

// Describe and Collect make Topics a collector: each topic's series, then the sum.
func (t *Topics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range topicDescs {
		ch <- d
	}
}

func (t *Topics) Collect(ch chan<- prometheus.Metric) {
	var sum [len(topicSeries)]uint64
	add := func(s *TopicStats, name string, own bool) {
		for i, c := range s.counters() {
			v := c.Load()
			sum[i] += v
			if own {
				ch <- prometheus.MustNewConstMetric(topicDescs[i], prometheus.CounterValue, float64(v), name)
			}
		}
	}
	for name, s := range *t.byName.Load() {
		add(s, name, true)
	}
	add(t.overflow, "", false)
	add(&t.retired, "", false)
	for i, v := range sum {
		ch <- prometheus.MustNewConstMetric(topicDescs[i], prometheus.CounterValue, float64(v), "")
	}
}

// Produced counts one partition of a produce request, failed or not.
func (s *TopicStats) Produced(failed bool) {
	s.produces.Add(1)
	if failed {
		s.failedProduces.Add(1)
	}
}

// Appended counts a batch appended: its bytes and records.
func (s *TopicStats) Appended(bytes, records int) {
	s.bytesIn.Add(uint64(bytes))
	s.messagesIn.Add(uint64(records))
}

// Fetched counts one partition of a fetch request and the record bytes it returned.
func (s *TopicStats) Fetched(bytes int64, failed bool) {
	s.fetches.Add(1)
	if failed {
		s.failedFetches.Add(1)
	}
	if bytes > 0 {
		s.bytesOut.Add(uint64(bytes))
	}
}
