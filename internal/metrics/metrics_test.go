package metrics

import (
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// value returns the value of the series name{labels} (labels as k=v pairs; a label
// not given must be absent or empty), and whether it exists. Histograms give their
// sample count.
func value(t *testing.T, m *Metrics, name string, labels ...string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range s.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range got {
				if want[k] != v {
					continue next
				}
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return sampleValue(s), true
		}
	}
	return 0, false
}

func sampleValue(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return 0
}

func expect(t *testing.T, m *Metrics, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(t, m, name, labels...)
	if !ok {
		t.Fatalf("%s%v: no such series", name, labels)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func absent(t *testing.T, m *Metrics, name string, labels ...string) {
	t.Helper()
	if v, ok := value(t, m, name, labels...); ok {
		t.Fatalf("%s%v = %v, want no such series", name, labels, v)
	}
}

func TestTopicSeries(t *testing.T) {
	m := New(Config{TopicSeriesMax: 2})
	a := m.Topics.Topic("a")
	a.Produced(false)
	a.Appended(100, 3)
	a.Produced(true)
	a.Fetched(40, false)
	a.Fetched(0, true)
	m.Topics.Topic("b").Appended(10, 1)
	// Past the bound: counted in the all-topics series only.
	m.Topics.Topic("c").Appended(1000, 7)

	expect(t, m, 100, "kafka_server_brokertopicmetrics_bytesin_total", "topic=a")
	expect(t, m, 1110, "kafka_server_brokertopicmetrics_bytesin_total") // topic="": every topic
	expect(t, m, 11, "kafka_server_brokertopicmetrics_messagesin_total")
	expect(t, m, 2, "kafka_server_brokertopicmetrics_totalproducerequests_total", "topic=a")
	expect(t, m, 1, "kafka_server_brokertopicmetrics_failedproducerequests_total", "topic=a")
	expect(t, m, 2, "kafka_server_brokertopicmetrics_totalfetchrequests_total", "topic=a")
	expect(t, m, 1, "kafka_server_brokertopicmetrics_failedfetchrequests_total")
	expect(t, m, 40, "kafka_server_brokertopicmetrics_bytesout_total", "topic=a")
	absent(t, m, "kafka_server_brokertopicmetrics_bytesin_total", "topic=c")

	// A deleted topic's series go, and make room for another's.
	m.Topics.Forget("a")
	absent(t, m, "kafka_server_brokertopicmetrics_bytesin_total", "topic=a")
	m.Topics.Topic("c").Appended(5, 1)
	expect(t, m, 5, "kafka_server_brokertopicmetrics_bytesin_total", "topic=c")
	expect(t, m, 1115, "kafka_server_brokertopicmetrics_bytesin_total")
}

func TestRequestSeries(t *testing.T) {
	m := New(DefaultConfig())
	m.Requests.Done(0, 9, 3*time.Millisecond)
	m.Requests.Done(0, 9, time.Millisecond)
	m.Requests.Done(1, 16, 500*time.Millisecond)
	m.Requests.Done(22, 5, time.Millisecond)
	m.Requests.Done(200, 0, time.Millisecond) // not an API: not counted
	m.Requests.Done(0, -1, time.Millisecond)

	expect(t, m, 2, "kafka_network_requestmetrics_requests_total", "request=Produce", "version=9")
	expect(t, m, 2, "kafka_network_requestmetrics_totaltimems", "request=Produce")
	// A consumer's fetch counts as Fetch and as FetchConsumer, as in Kafka.
	expect(t, m, 1, "kafka_network_requestmetrics_requests_total", "request=Fetch", "version=16")
	expect(t, m, 1, "kafka_network_requestmetrics_requests_total", "request=FetchConsumer", "version=16")
	expect(t, m, 1, "kafka_network_requestmetrics_totaltimems", "request=FetchConsumer")
	expect(t, m, 1, "kafka_network_requestmetrics_requests_total", "request=InitProducerId", "version=5")

	// The histogram is in milliseconds, Kafka's unit.
	fams, _ := m.Registry().Gather()
	for _, f := range fams {
		if f.GetName() == "kafka_network_requestmetrics_totaltimems" {
			for _, s := range f.GetMetric() {
				if s.GetLabel()[0].GetValue() == "Produce" && s.GetHistogram().GetSampleSum() != 4 {
					t.Fatalf("Produce total time sum %v ms, want 4", s.GetHistogram().GetSampleSum())
				}
			}
		}
	}
}

func TestKafkaAPIName(t *testing.T) {
	for key, want := range map[int16]string{0: "Produce", 4: "LeaderAndIsr", 17: "SaslHandshake", 22: "InitProducerId",
		29: "DescribeAcls", 51: "AlterUserScramCredentials", 67: "AllocateProducerIds", 68: "ConsumerGroupHeartbeat"} {
		if got := KafkaAPIName(key); got != want {
			t.Errorf("KafkaAPIName(%d) = %s, want %s", key, got, want)
		}
	}
}

// fakeCluster is three topics on one node: a, with an offline partition, b and c.
type fakeCluster struct{}

func (fakeCluster) Replicas(fn func(*Replica)) {
	for _, r := range []Replica{
		{Topic: "a", Partition: 0, Leader: true, Replicas: 3, ISR: 3, MinISR: 2, Size: 100, Segments: 1, LogEndOffset: 10, HighWatermark: 10, ProducerIDs: 2},
		{Topic: "a", Partition: 1, Leader: true, Replicas: 3, ISR: 1, MinISR: 2, Size: 50, Segments: 2, LogStartOffset: 5, LogEndOffset: 9, HighWatermark: 7},
		{Topic: "a", Partition: 2, Offline: true},
		{Topic: "b", Partition: 0, Leader: false, Replicas: 3, ISR: 2, MinISR: 2, Size: 7},
		// min.insync.replicas above the replica count: at the effective min ISR, not under.
		{Topic: "c", Partition: 0, Leader: true, Replicas: 2, ISR: 2, MinISR: 3},
	} {
		fn(&r)
	}
}

func (fakeCluster) Controller() ControllerState {
	return ControllerState{Active: true, OfflinePartitions: 1, Topics: 2, Partitions: 4, ActiveBrokers: 3}
}

type fakeGroups struct{}

func (fakeGroups) Lag(limit int, fn func(group, topic string, partition int32, lag int64)) int {
	all := []struct {
		g, t string
		p    int32
		lag  int64
	}{{"g1", "a", 0, 3}, {"g1", "a", 1, 4}, {"g1", "b", 0, 1}, {"g2", "a", 0, 9}}
	n := min(limit, len(all))
	for _, e := range all[:n] {
		fn(e.g, e.t, e.p, e.lag)
	}
	return len(all) - n
}

func (fakeGroups) Counts() (int, int) { return 2, 4 }

func TestScrape(t *testing.T) {
	src := Sources{
		Cluster: fakeCluster{},
		Groups:  fakeGroups{},
		Cleaner: func() CleanerStats {
			return CleanerStats{Passes: 3, SinceLastPass: 1500 * time.Millisecond, MaxDirtyRatio: 0.25, BytesCleaned: 1000, BytesRemoved: 400,
				Dirty: []DirtyRatio{{"a", 0, 0.25}}}
		},
		Intake: func() Intake {
			return Intake{RequestBytes: 10, RequestBytesMax: 100, RequestsQueued: 2, FetchBytes: 5, FetchBytesMax: 50}
		},
		Throttles: func() Throttles {
			return Throttles{LeaderRate: 1500, FollowerRate: 0, LeaderBound: 2000, FollowerBound: -1}
		},
	}
	m := New(Config{PartitionSeries: true, TopicSeriesMax: 10, LagSeriesMax: 3})
	m.Watch(src)
	m.Watch(src) // once only: a second registration would fail the scrape

	expect(t, m, 5, "kafka_server_replicamanager_partitioncount")
	expect(t, m, 1500, "kafka_server_leaderreplication_byte_rate")
	expect(t, m, 0, "kafka_server_followerreplication_byte_rate")
	expect(t, m, 2000, "vltava_replication_leader_throttled_rate")
	expect(t, m, -1, "vltava_replication_follower_throttled_rate")
	expect(t, m, 3, "kafka_server_replicamanager_leadercount")
	expect(t, m, 1, "kafka_server_replicamanager_underreplicatedpartitions") // a-1
	expect(t, m, 1, "kafka_server_replicamanager_underminisrpartitioncount") // a-1
	expect(t, m, 1, "kafka_server_replicamanager_atminisrpartitioncount")    // c-0 (b-0 is led elsewhere)
	expect(t, m, 1, "kafka_server_replicamanager_offlinereplicacount")
	expect(t, m, 1, "kafka_controller_kafkacontroller_activecontrollercount")
	expect(t, m, 1, "kafka_controller_kafkacontroller_offlinepartitionscount")
	expect(t, m, 157, "vltava_log_size_bytes")
	expect(t, m, 2, "vltava_producer_ids")
	expect(t, m, 50, "kafka_log_log_size", "topic=a", "partition=1")
	expect(t, m, 5, "kafka_log_log_logstartoffset", "topic=a", "partition=1")
	expect(t, m, 9, "kafka_log_log_logendoffset", "topic=a", "partition=1")
	expect(t, m, 7, "vltava_partition_high_watermark", "topic=a", "partition=1")
	expect(t, m, 2, "kafka_log_log_numlogsegments", "topic=a", "partition=1")
	absent(t, m, "kafka_log_log_size", "topic=a", "partition=2") // offline: nothing to read
	expect(t, m, 10, "vltava_server_request_bytes_in_flight")
	expect(t, m, 2, "kafka_network_requestchannel_requestqueuesize")
	expect(t, m, 50, "vltava_fetch_bytes_max")
	expect(t, m, 1500, "kafka_log_logcleaner_time_since_last_run_ms")
	expect(t, m, 25, "kafka_log_logcleanermanager_max_dirty_percent")
	expect(t, m, 400, "vltava_log_cleaner_removed_bytes_total")
	expect(t, m, 0.25, "vltava_log_cleaner_dirty_ratio", "topic=a", "partition=0")
	expect(t, m, 4, "vltava_consumer_group_lag", "group=g1", "topic=a", "partition=1")
	expect(t, m, 7, "vltava_consumer_group_lag_sum", "group=g1", "topic=a")
	expect(t, m, 1, "vltava_consumer_group_lag_sum", "group=g1", "topic=b")
	absent(t, m, "vltava_consumer_group_lag_sum", "group=g2", "topic=a") // past vltava.metrics.consumer.lag.series.max
	expect(t, m, 1, "vltava_consumer_group_lag_omitted")
	expect(t, m, 2, "kafka_coordinator_group_groupmetadatamanager_numgroups")

	// Without per-partition series, the totals stay and the per-partition ones go.
	off := New(Config{PartitionSeries: false, TopicSeriesMax: 10, LagSeriesMax: 100})
	off.Watch(src)
	expect(t, off, 157, "vltava_log_size_bytes")
	expect(t, off, 7, "vltava_consumer_group_lag_sum", "group=g1", "topic=a")
	expect(t, off, 9, "vltava_consumer_group_lag_sum", "group=g2", "topic=a")
	fams, err := off.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labelled []string
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "partition" {
					labelled = append(labelled, f.GetName())
				}
			}
		}
	}
	sort.Strings(labelled)
	if len(labelled) > 0 {
		t.Fatalf("per-partition series with vltava.metrics.partition.series.enable=false: %v", labelled)
	}
}

// The instruments a produce and a fetch touch allocate nothing once their series
// exist.
func TestHotPathAllocs(t *testing.T) {
	m := New(DefaultConfig())
	hotPath(m) // the first request of each kind makes its series
	if n := testing.AllocsPerRun(1000, func() { hotPath(m) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

func hotPath(m *Metrics) {
	ts := m.Topics.Topic("orders")
	ts.Appended(16384, 100)
	ts.Produced(false)
	m.Log.Appended(20 * time.Microsecond)
	m.Requests.Done(0, 11, 300*time.Microsecond)
	ts.Fetched(16384, false)
	m.Requests.Done(1, 16, 2*time.Millisecond)
}

// BenchmarkHotPath is what instrumentation adds to serving a produce and a fetch of
// one partition each.
func BenchmarkHotPath(b *testing.B) {
	m := New(DefaultConfig())
	hotPath(m)
	b.ReportAllocs()
	for b.Loop() {
		hotPath(m)
	}
}

func BenchmarkHotPathParallel(b *testing.B) {
	m := New(DefaultConfig())
	hotPath(m)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hotPath(m)
		}
	})
}
