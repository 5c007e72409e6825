package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	dto "github.com/prometheus/client_model/go"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// get fetches an HTTP path of the node's HTTP listener.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape parses /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// sample is the value of name{labels} (k=v pairs; labels not given must be absent or
// empty), and whether the series exists.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
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
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func wantSample(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := sample(fams, name, labels...)
	if !ok {
		t.Fatalf("%s%v: no such series on /metrics", name, labels)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func startHTTP(t *testing.T, srv *server.Server) string {
	t.Helper()
	addr, err := srv.StartHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestHTTPEndpoints: the HTTP listener serves /healthz, /readyz and /metrics, and the
// metrics follow what clients do: bytes and records in and out per topic and for all
// topics, requests per API, a group's lag, connections.
func TestHTTPEndpoints(t *testing.T) {
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	addr := startHTTP(t, n.srv)
	if code, body := get(t, addr, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, addr, "/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, _ := get(t, addr, "/nope"); code != http.StatusNotFound {
		t.Fatalf("/nope: %d", code)
	}

	n.createTopic(t, "orders", 2, nil)
	cl := n.client(kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var inBytes float64
	for i := range 5 {
		r := &kgo.Record{Value: []byte(strings.Repeat("v", 100)), Partition: 0}
		if i == 4 {
			r.Partition = 1
		}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for p := range int32(2) {
		inBytes += float64(n.srv.Broker().Partition("orders", p).Log().Size())
	}
	// A group consumes everything and commits three of partition 0's four records and
	// partition 1's one.
	consumer := n.client(kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	got := 0
	for got < 5 {
		fs := consumer.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	offsets := map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: 3}, 1: {Epoch: -1, Offset: 1}}}
	var commitErr error
	consumer.CommitOffsetsSync(ctxT(t), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && commitErr == nil {
					commitErr = err
				}
			}
		}
	})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	fams := scrape(t, addr)
	wantSample(t, fams, inBytes, "kafka_server_brokertopicmetrics_bytesin_total", "topic=orders")
	wantSample(t, fams, inBytes, "kafka_server_brokertopicmetrics_bytesin_total")
	wantSample(t, fams, 5, "kafka_server_brokertopicmetrics_messagesin_total", "topic=orders")
	wantSample(t, fams, 5, "kafka_server_brokertopicmetrics_totalproducerequests_total", "topic=orders")
	wantSample(t, fams, 0, "kafka_server_brokertopicmetrics_failedproducerequests_total", "topic=orders")
	if v, _ := sample(fams, "kafka_server_brokertopicmetrics_bytesout_total", "topic=orders"); v < inBytes {
		t.Fatalf("bytes out %v, want at least the %v bytes consumed", v, inBytes)
	}
	// A request is counted once its response is written: the client may have it first.
	waitFor(t, "the fetches to be counted", func() bool {
		v, _ := sample(scrape(t, addr), "kafka_network_requestmetrics_totaltimems", "request=FetchConsumer")
		return v >= 1
	})
	fams = scrape(t, addr)
	if v, _ := sample(fams, "kafka_network_requestmetrics_totaltimems", "request=Produce"); v != 5 {
		t.Fatalf("Produce requests timed: %v, want 5", v)
	}
	var produces float64
	for _, m := range fams["kafka_network_requestmetrics_requests_total"].GetMetric() {
		if m.GetLabel()[0].GetValue() == "Produce" { // labels are sorted: request, version
			produces += m.GetCounter().GetValue()
		}
	}
	if produces != 5 {
		t.Fatalf("Produce requests counted: %v, want 5", produces)
	}
	wantSample(t, fams, 1, "vltava_consumer_group_lag", "group=billing", "topic=orders", "partition=0")
	wantSample(t, fams, 0, "vltava_consumer_group_lag", "group=billing", "topic=orders", "partition=1")
	wantSample(t, fams, 1, "vltava_consumer_group_lag_sum", "group=billing", "topic=orders")
	wantSample(t, fams, 4, "vltava_partition_high_watermark", "topic=orders", "partition=0")
	wantSample(t, fams, 0, "kafka_server_replicamanager_underreplicatedpartitions")
	wantSample(t, fams, 1, "kafka_controller_kafkacontroller_activecontrollercount")
	wantSample(t, fams, 0, "kafka_controller_kafkacontroller_offlinepartitionscount")
	if v, _ := sample(fams, "kafka_server_replicamanager_partitioncount"); v != 52 { // orders and __consumer_offsets
		t.Fatalf("partition count %v, want 52", v)
	}
	if v, _ := sample(fams, "kafka_server_socket_server_metrics_connection_count", "listener=PLAINTEXT"); v < 2 {
		t.Fatalf("open connections %v with two clients connected", v)
	}
	if v, _ := sample(fams, "vltava_log_append_seconds"); v < 5 {
		t.Fatalf("appends timed: %v", v)
	}

	// A deleted topic's series go; the all-topics series keeps its counts.
	if _, err := n.admin().DeleteTopics(ctxT(t), "orders"); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, addr)
	if v, ok := sample(fams, "kafka_server_brokertopicmetrics_bytesin_total", "topic=orders"); ok {
		t.Fatalf("bytes in of a deleted topic still exported: %v", v)
	}
	wantSample(t, fams, inBytes, "kafka_server_brokertopicmetrics_bytesin_total")

	// A readiness hook (the quorum's, later) is part of /readyz.
	n.srv.AddReadyCheck("metadata quorum", func() error { return errors.New("not caught up") })
	if code, body := get(t, addr, "/readyz"); code != http.StatusServiceUnavailable || body != "metadata quorum: not caught up\n" {
		t.Fatalf("/readyz with a failing check: %d %q", code, body)
	}
}

// TestHTTPListenerStartsOnce: a second StartHTTP fails, and Close stops the listener.
func TestHTTPListenerClose(t *testing.T) {
	n := startNode(t, nil)
	addr := startHTTP(t, n.srv)
	if _, err := n.srv.StartHTTP("127.0.0.1:0"); err == nil {
		t.Fatal("a second HTTP listener started")
	}
	if a, err := n.srv.StartHTTP("none"); a != "" || err != nil {
		t.Fatalf(`StartHTTP("none") = %q, %v`, a, err)
	}
	n.stop()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the HTTP listener still accepts connections after Close")
	}
}

// TestReadyzLogDirOffline: a failed log dir makes the node not ready (saying which dir
// and why) and is counted in the offline metrics; with its only log dir gone the broker
// halts and /healthz says so.
func TestReadyzLogDirOffline(t *testing.T) {
	disk := vfs.NewDiskFull(1 << 40)
	dataDir := t.TempDir()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": dataDir, "listeners": "PLAINTEXT://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, broker.Options{FS: vfs.WithErrors(vfs.OS(), disk), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Ready(); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Fatalf("Ready before Start = %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := startHTTP(t, srv)
	n := &node{t: t, srv: srv, addr: srv.Addrs()[0]}
	n.createTopic(t, "disk", 1, nil)
	r := dialRaw(t, srv.Addrs()[0])
	disk.SetFree(20)
	if p := produceRaw(t, r, "disk", -1, buildBatch(t, batch.BuildOptions{}, "x")); p.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: %+v", p)
	}
	code, body := get(t, addr, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "log dir "+dataDir+" is offline") || !strings.Contains(body, "no space left") {
		t.Fatalf("/readyz with the log dir offline: %d %q", code, body)
	}
	if code, body := get(t, addr, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "all log dirs") {
		t.Fatalf("/healthz of a halted broker: %d %q", code, body)
	}
	fams := scrape(t, addr)
	wantSample(t, fams, 1, "kafka_server_replicamanager_offlinereplicacount")
	wantSample(t, fams, 1, "kafka_controller_kafkacontroller_offlinepartitionscount")
	wantSample(t, fams, 0, "kafka_server_replicamanager_leadercount")
	wantSample(t, fams, 0, "kafka_server_brokertopicmetrics_failedproducerequests_total", "topic=disk") // as Kafka: a storage error is not a failed produce
	wantSample(t, fams, 1, "kafka_server_brokertopicmetrics_totalproducerequests_total", "topic=disk")
}

// TestConnectionsRefusedCounted: a connection over max.connections.per.ip is counted.
func TestConnectionsRefusedCounted(t *testing.T) {
	n := startNode(t, map[string]string{"max.connections.per.ip": "1"})
	addr := startHTTP(t, n.srv)
	first := dialRaw(t, n.addr)
	_ = first
	waitFor(t, "the first connection to be accepted", func() bool {
		v, _ := sample(scrape(t, addr), "vltava_server_connections_accepted_total")
		return v == 1
	})
	c, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The broker closes the second connection at once.
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a refused connection")
	}
	fams := scrape(t, addr)
	wantSample(t, fams, 1, "vltava_server_connections_refused_total", "limit=max.connections.per.ip")
	wantSample(t, fams, 0, "vltava_server_connections_refused_total", "limit=max.connections")
	wantSample(t, fams, 1, "kafka_server_socket_server_metrics_connection_count", "listener=PLAINTEXT")
}
