// Package console is Vltava's web console: an http.Handler that serves a JSON API over a
// Kafka cluster and the single-page UI that uses it (plain HTML, CSS and ES modules,
// embedded). Like the other tools it is an ordinary Kafka client (franz-go's kgo and
// kadm), so it works against any Kafka cluster; `vltava console` serves it, and a broker's
// own HTTP listener can mount the same handler.
//
// What it shows: brokers and the metadata quorum; topics with partitions, leaders,
// replicas, ISR, offsets, sizes and configs; a message browser; consumer groups with
// members, assignments and lag; throughput charts from offsets sampled over time. What it
// changes: creates and deletes topics, alters topic configs and resets group offsets.
//
// Safe by default: every state-changing call is a POST that must carry the per-process
// token the page was served with (and a same-origin Origin when the browser sends one), so
// another site open in the same browser cannot drive it; requests whose Host is not an
// allowed name are refused, which stops DNS rebinding against a console on loopback; the
// UI never puts record data into HTML. Bounded: every cluster call has a timeout, the
// message browser caps records and bytes per call, and the throughput history is a ring of
// fixed size.
package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of the console's limits; the command exposes each as a flag.
const (
	DefaultRequestTimeout   = 10 * time.Second
	DefaultMaxRecords       = 500
	DefaultMaxBytes         = 4 << 20
	DefaultMaxScanBytes     = 64 << 20
	DefaultSampleInterval   = 5 * time.Second
	DefaultSampleCapacity   = 360 // half an hour at the default interval
	DefaultMaxSampledTopics = 200
	DefaultMaxSampledGroups = 200

	// maxBodyBytes bounds the JSON body of a POST: the largest is a topic creation with
	// its configs, far below this.
	maxBodyBytes = 64 << 10
)

// Options configure a Console. Client is required; zero limits take the defaults above.
type Options struct {
	// Client talks to the cluster. The console does not close it.
	Client *kgo.Client
	// RequestTimeout bounds each call the console makes to the cluster (and is the
	// broker-side timeout of admin requests).
	RequestTimeout time.Duration
	// MaxRecords caps the records one message-browser call returns.
	MaxRecords int
	// MaxBytes caps the record bytes (keys, values, headers) one browser call returns; a
	// record that does not fit is cut and marked so.
	MaxBytes int
	// MaxScanBytes caps the bytes one browser call fetches from the cluster while looking
	// for records that match its filter.
	MaxScanBytes int64
	// SampleInterval is how often the throughput sampler polls offsets; negative turns the
	// sampler off.
	SampleInterval time.Duration
	// SampleCapacity is how many samples the throughput ring keeps.
	SampleCapacity int
	// MaxSampledTopics and MaxSampledGroups bound what one sample tracks per topic; the
	// cluster totals always count every topic.
	MaxSampledTopics int
	MaxSampledGroups int
	// AllowedHosts are the host names (no port) a request's Host may carry; empty allows
	// any. A console on loopback should allow only loopback names (DNS rebinding).
	AllowedHosts []string
	// Version is shown in the UI (the binary's version).
	Version string
	// Logger receives the console's own log lines (sampler failures, actions taken).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxScanBytes <= 0 {
		o.MaxScanBytes = DefaultMaxScanBytes
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.SampleCapacity <= 0 {
		o.SampleCapacity = DefaultSampleCapacity
	}
	if o.MaxSampledTopics <= 0 {
		o.MaxSampledTopics = DefaultMaxSampledTopics
	}
	if o.MaxSampledGroups <= 0 {
		o.MaxSampledGroups = DefaultMaxSampledGroups
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "(devel)"
	}
}

// Console is the console's http.Handler. Close stops its sampler.
type Console struct {
	opts  Options
	cl    *kgo.Client
	adm   *kadm.Client
	token string // the CSRF token every POST must carry; new per process
	mux   *http.ServeMux
	hosts map[string]bool // allowed Host names; empty: any

	sampler *sampler
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a console over opts.Client and starts its throughput sampler.
func New(opts Options) (*Console, error) {
	if opts.Client == nil {
		return nil, errors.New("console: no Kafka client")
	}
	opts.setDefaults()
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("console: token: %w", err)
	}
	adm := kadm.NewClient(opts.Client)
	adm.SetTimeoutMillis(int32(min(opts.RequestTimeout.Milliseconds(), 1<<31-1)))
	c := &Console{
		opts:  opts,
		cl:    opts.Client,
		adm:   adm,
		token: hex.EncodeToString(tok[:]),
		hosts: map[string]bool{},
	}
	for _, h := range opts.AllowedHosts {
		c.hosts[normalizeHost(h)] = true
	}
	c.sampler = newSampler(opts.SampleCapacity, opts.MaxSampledTopics)
	c.routes()
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	if opts.SampleInterval > 0 {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.sampleLoop(ctx)
		}()
	}
	return c, nil
}

// Close stops the sampler and waits for it. The Kafka client stays open.
func (c *Console) Close() {
	c.stop()
	c.wg.Wait()
}

// Token is the CSRF token POSTs must carry in the X-Vltava-Csrf header.
func (c *Console) Token() string { return c.token }

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", c.serveIndex)
	m.Handle("GET /assets/", assetHandler())
	m.HandleFunc("GET /favicon.ico", serveFavicon)

	m.HandleFunc("GET /api/cluster", c.api(c.getCluster))
	m.HandleFunc("GET /api/topics", c.api(c.listTopics))
	m.HandleFunc("POST /api/topics", c.api(c.createTopic))
	m.HandleFunc("GET /api/topics/{topic}", c.api(c.getTopic))
	m.HandleFunc("POST /api/topics/{topic}/delete", c.api(c.deleteTopic))
	m.HandleFunc("POST /api/topics/{topic}/configs", c.api(c.alterTopicConfigs))
	m.HandleFunc("GET /api/topics/{topic}/messages", c.api(c.browse))
	m.HandleFunc("GET /api/groups", c.api(c.listGroups))
	m.HandleFunc("GET /api/groups/{group}", c.api(c.getGroup))
	m.HandleFunc("POST /api/groups/{group}/reset-offsets", c.api(c.resetOffsets))
	m.HandleFunc("GET /api/throughput", c.api(c.getThroughput))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: "NOT_FOUND", msg: "no such API: " + r.Method + " " + r.URL.Path})
	})
	c.mux = m
}

// ServeHTTP applies the checks every request passes (Host, and for POST the CSRF
// defence), sets the security headers and dispatches.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if err := c.checkHost(r); err != nil {
		writeError(w, err)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := c.checkWrite(r); err != nil {
			c.opts.Logger.Warn("console refused a request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.msg)
			writeError(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	}
	c.mux.ServeHTTP(w, r)
}

// api adapts a handler that returns a value or an error: the value is written as JSON,
// the error with its HTTP status. The handler's context ends with the request or after
// the request timeout, whichever comes first, so no call to the cluster outlives either.
func (c *Console) api(h func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.RequestTimeout)
		defer cancel()
		v, err := h(ctx, r)
		if err != nil {
			writeError(w, toAPIError(err))
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}
