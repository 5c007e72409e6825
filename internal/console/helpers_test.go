package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

// backend is a cluster the console is tested against: an in-process Vltava broker, or
// franz-go's kfake (the console must work against any Kafka cluster).
type backend struct {
	name  string
	start func(t *testing.T) string // returns the bootstrap address
}

var backends = []backend{
	{"vltava", vltavaBroker},
	{"kfake", kfakeCluster},
}

// vltavaBroker starts a Vltava broker on a random loopback port with its data in a temp
// dir; it is closed when the test ends.
func vltavaBroker(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load("", nil, map[string]string{
		"log.dirs":                         t.TempDir(),
		"listeners":                        "PLAINTEXT://127.0.0.1:0",
		"group.initial.rebalance.delay.ms": "0",
	})
	if err != nil {
		t.Fatalf("broker config: %v", err)
	}
	srv, err := server.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return srv.Addrs()[0]
}

func kfakeCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// fixture is a console over a cluster, served by an httptest server, with a client of
// its own to set things up and check them through the Kafka API.
type fixture struct {
	t   *testing.T
	con *Console
	srv *httptest.Server
	cl  *kgo.Client
	adm *kadm.Client
}

func newFixture(t *testing.T, brokers string, opts Options) *fixture {
	t.Helper()
	seeds := strings.Split(brokers, ",")
	ccl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ccl.Close)
	if opts.SampleInterval == 0 {
		opts.SampleInterval = -1 // tests drive the sampler by hand
	}
	opts.Client = ccl
	con, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(0), kgo.MetadataMinAge(10*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &fixture{t: t, con: con, srv: srv, cl: cl, adm: kadm.NewClient(cl)}
}

func (f *fixture) ctx() context.Context {
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	f.t.Cleanup(cancel)
	return ctx
}

// get fetches path and decodes its JSON into v, failing the test on any other status.
func (f *fixture) get(path string, v any) {
	f.t.Helper()
	status, body := f.do(http.MethodGet, path, nil, nil)
	if status != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
}

// post sends body as JSON with the console's token and a same-origin Origin, as the page
// does, and returns the status and the answer.
func (f *fixture) post(path string, body any) (int, []byte) {
	f.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(http.MethodPost, path, b, map[string]string{
		"Content-Type": "application/json", csrfHeader: f.con.Token(), "Origin": f.srv.URL,
	})
}

// mustPost is post that must answer 200.
func (f *fixture) mustPost(path string, body any, v any) {
	f.t.Helper()
	status, b := f.post(path, body)
	if status != http.StatusOK {
		f.t.Fatalf("POST %s: %d %s", path, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			f.t.Fatalf("POST %s: decode %s: %v", path, b, err)
		}
	}
}

func (f *fixture) do(method, path string, body []byte, headers map[string]string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.ctx(), method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// createTopic creates a topic through the Kafka API.
func (f *fixture) createTopic(name string, partitions int32) {
	f.t.Helper()
	resp, err := f.adm.CreateTopic(f.ctx(), partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		f.t.Fatalf("create topic %s: %v", name, err)
	}
}

// produce writes records synchronously and returns them with their offsets.
func (f *fixture) produce(recs ...*kgo.Record) []*kgo.Record {
	f.t.Helper()
	if err := f.cl.ProduceSync(f.ctx(), recs...).FirstErr(); err != nil {
		f.t.Fatalf("produce: %v", err)
	}
	return recs
}

func rec(topic string, partition int32, key, value string, headers ...kgo.RecordHeader) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value), Headers: headers}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}
