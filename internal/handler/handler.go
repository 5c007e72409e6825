// Package handler turns decoded Kafka requests into calls on the broker and the
// coordinators, and their answers into responses. It holds no state of its own beyond
// fetch sessions (which are per-client protocol state). One file per API, each opening
// with the versions it supports; the dispatch table below is the one list of APIs and
// versions, and ApiVersions is derived from it.
package handler

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/bufpool"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/metrics"
	"github.com/vltava/vltava/internal/wire"
)

// Client is what the handler knows of the connection a request came on. The
// connection serves one request at a time; the fields below Addr describe the request
// served last, for its owner's request log.
type Client struct {
	Host string // remote IP
	Addr string // remote host:port

	ClientID string // from the request header (no copy: the header's string)
	// Parked is how long the request waited on purpose: a long-poll fetch for
	// min_bytes, a JoinGroup or SyncGroup for the group's barrier. The slow-request
	// log leaves it out.
	Parked time.Duration

	commitsLogged map[string]struct{} // groups logged at INFO by logOutsideCommit (audit.go)
}

// Request is one decoded request with its header.
type Request struct {
	Header wire.Header
	Client *Client
	// pooled buffers referenced by the response, returned once it is written, and the
	// bytes of the fetch memory budget they hold.
	pooled  [][]byte
	charged int64
	// pin: the response may leave fetched records in their files (ServeSendfile).
	pin bool
	// records is where each fetch response partition's record bytes are.
	records []partRecords
}

type api struct {
	key      int16
	min, max int16
	fn       func(ctx context.Context, r *Request, req kmsg.Request) kmsg.Response
	// transient says nothing decoded from the request outlives the call, so the
	// server may recycle the frame's buffer (kmsg's byte fields alias the frame).
	transient bool
}

// Handler dispatches requests.
type Handler struct {
	b        *broker.Broker
	groups   *group.Coordinator
	apis     []api // sorted by key
	byKey    map[int16]*api
	sessions *fetchSessions
	bufs     bufpool.Pool // record bytes read for fetch responses
	pool     sync.Pool
	// fetchMaxBytes (fetch.max.bytes) bounds each fetch response; fetchBudget
	// (vltava.fetch.max.bytes.in.flight) the record bytes all of them hold in memory.
	fetchMaxBytes int32
	fetchBudget   *fetchBudget
	// maxResponsePartitions (max.request.partition.size.limit) bounds the partitions of
	// a DescribeTopicPartitions answer.
	maxResponsePartitions int32
	// controller answers the controller APIs on the controller listener
	// (controller_listener.go).
	controller controllerSlot
	m          *metrics.Metrics
}

// Options are what the server gives a handler besides the broker and coordinator.
type Options struct {
	// Metrics are updated as requests are served; a private set if nil.
	Metrics *metrics.Metrics
}

// New returns a handler over the broker and the group coordinator.
func New(b *broker.Broker, groups *group.Coordinator) (*Handler, error) {
	return NewWith(b, groups, Options{})
}

// NewWith is New with options.
func NewWith(b *broker.Broker, groups *group.Coordinator, opts Options) (*Handler, error) {
	cfg := b.Config()
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(metrics.DefaultConfig())
	}
	h := &Handler{b: b, groups: groups, byKey: map[int16]*api{}, fetchMaxBytes: cfg.FetchMaxBytes,
		fetchBudget: newFetchBudget(intConfig(cfg, "vltava.fetch.max.bytes.in.flight", 512<<20)), m: opts.Metrics}
	if h.fetchMaxBytes <= 0 { // a configuration not from config.Load
		h.fetchMaxBytes = 57671680
	}
	h.maxResponsePartitions = int32(min(intConfig(cfg, "max.request.partition.size.limit", defaultMaxResponsePartitions), 1<<31-1))
	h.sessions = newFetchSessions(int(intConfig(cfg, "max.incremental.fetch.session.cache.slots", 1000)), b.Now)
	h.pool.New = func() any { s := make([]byte, 0, 64<<10); return &s }
	h.apis = []api{
		{0, 0, 12, h.produce, true}, // v0-2 advertised for librdkafka < 2.8 (see produce.go)
		{1, 4, 16, h.fetch, true},
		{2, 1, 9, h.listOffsets, false},
		{3, 0, 12, h.metadata, false},
		{8, 0, 9, h.offsetCommit, false},
		{9, 0, 9, h.offsetFetch, false},
		{10, 0, 6, h.findCoordinator, false},
		{11, 0, 9, h.joinGroup, false},
		{12, 0, 4, h.heartbeat, false},
		{13, 0, 5, h.leaveGroup, false},
		{14, 0, 5, h.syncGroup, false},
		{15, 0, 5, h.describeGroups, false},
		{16, 0, 5, h.listGroups, false},
		{18, 0, 4, h.apiVersions, false},
		{19, 0, 7, h.createTopics, false},
		{20, 0, 6, h.deleteTopics, false},
		{21, 0, 2, h.deleteRecords, false},
		{22, 0, 5, h.initProducerID, false},
		{23, 0, 4, h.offsetForLeaderEpoch, false},
		{32, 0, 4, h.describeConfigs, false},
		{33, 0, 2, h.alterConfigs, false},
		{35, 0, 4, h.describeLogDirs, false},
		{37, 0, 3, h.createPartitions, false},
		{42, 0, 2, h.deleteGroups, false},
		{43, 0, 2, h.electLeaders, false},
		{44, 0, 1, h.incrementalAlterConfigs, false},
		{45, 0, 1, h.alterPartitionReassignments, false},
		{46, 0, 0, h.listPartitionReassignments, false},
		{47, 0, 0, h.offsetDelete, false},
		{55, 0, 2, h.describeQuorum, false},
		{60, 0, 2, h.describeCluster, false},
		{61, 0, 0, h.describeProducers, false},
		{64, 0, 0, h.unregisterBroker, false},
		{68, 0, 1, h.consumerGroupHeartbeat, false},
		{69, 0, 1, h.consumerGroupDescribe, false},
		{75, 0, 0, h.describeTopicPartitions, false},
	}
	for i := range h.apis {
		h.byKey[h.apis[i].key] = &h.apis[i]
	}
	return h, nil
}

// Transient reports whether the frame of a request with this API key may be reused
// once Serve returns.
func (h *Handler) Transient(key int16) bool {
	a := h.byKey[key]
	return a != nil && a.transient
}

// FetchBudget returns the fetch memory budget's bytes in use and its size
// (vltava.fetch.max.bytes.in.flight).
func (h *Handler) FetchBudget() (inUse, max int64) { return h.fetchBudget.inUse() }

// Close releases handler resources.
func (h *Handler) Close() error { return nil }

// Response is an encoded response frame from a pooled buffer: either Bytes, or, for a
// fetch with records, Vec, the frame in pieces (encoded fields and record buffers) to
// be written together, with, from ServeSendfile, Files: record bytes to be sent from
// their files among the pieces of Vec.
type Response struct {
	Bytes []byte
	Vec   [][]byte
	Files []FilePiece // pinned until Release
	h     *Handler
	buf   *[]byte
	// pooled record buffers the frame refers to, returned by Release with the fetch
	// budget they hold.
	pooled  [][]byte
	charged int64
}

// Size is the bytes of the response frame, its size prefix included.
func (r *Response) Size() int {
	b := r.Bytes
	if b == nil && len(r.Vec) > 0 {
		b = r.Vec[0] // the frame starts with the encoded fields
	}
	if len(b) < 4 {
		return len(b)
	}
	return 4 + int(binary.BigEndian.Uint32(b))
}

// Release returns the buffers to their pools and unpins Files; Bytes, Vec and Files
// are invalid afterwards.
func (r *Response) Release() {
	if r.buf != nil && cap(*r.buf) <= 8<<20 { // don't pin huge fetch buffers
		*r.buf = (*r.buf)[:0]
		r.h.pool.Put(r.buf)
	}
	r.buf = nil
	for _, b := range r.pooled {
		r.h.bufs.Put(b)
	}
	r.pooled = nil
	r.h.fetchBudget.release(r.charged)
	r.charged = 0
	for _, f := range r.Files {
		f.Close()
	}
	r.Files = nil
}

// Serve handles one request frame. ok is false if the connection must be closed (an
// unknown API or version other than ApiVersions, or a request that does not decode, as
// Kafka does); a nil response with ok means no response is sent (acks=0 produce).
func (h *Handler) Serve(ctx context.Context, c *Client, frame []byte) (resp *Response, ok bool) {
	return h.serve(ctx, c, frame, false)
}

// ServeSendfile is Serve for a connection that can send file ranges (sendfile): a fetch's
// records in operating-system files may be left there, pinned, and the response's Files
// say where they go among its pieces. The frame is byte for byte Serve's.
func (h *Handler) ServeSendfile(ctx context.Context, c *Client, frame []byte) (*Response, bool) {
	return h.serve(ctx, c, frame, true)
}

func (h *Handler) serve(ctx context.Context, c *Client, frame []byte, pin bool) (resp *Response, ok bool) {
	key, version, corr, ok := wire.ParseKeyVersion(frame)
	if !ok {
		return nil, false
	}
	a := h.byKey[key]
	if a == nil {
		h.b.Logger().Debug("unknown api key", "key", key, "client", c.Addr)
		return nil, false
	}
	if version < a.min || version > a.max {
		if key == 18 { // KIP-511: answer in v0 with our versions
			return h.encode(corr, h.unsupportedApiVersions(), false), true
		}
		h.b.Logger().Debug("unsupported api version", "key", key, "version", version, "client", c.Addr)
		return nil, false
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	hdr, body, err := wire.ParseHeader(frame, func(int16, int16) bool { return req.IsFlexible() })
	if err != nil {
		return nil, false
	}
	if err := req.ReadFrom(body); err != nil {
		h.b.Logger().Debug("undecodable request", "key", key, "version", version, "client", c.Addr, "err", err)
		return nil, false
	}
	c.ClientID, c.Parked = hdr.ClientID, 0
	r := &Request{Header: hdr, Client: c, pin: pin}
	kr := a.fn(ctx, r, req)
	if fr, ok := kr.(*kmsg.FetchResponse); ok {
		return h.encodeFetchResponse(corr, r, fr)
	}
	if kr == nil {
		return nil, true
	}
	return h.encode(corr, kr, key != 18 && kr.IsFlexible()), true
}

func (h *Handler) encode(corr int32, r kmsg.Response, flexibleHeader bool) *Response {
	bp := h.pool.Get().(*[]byte)
	b := wire.AppendResponseHeader((*bp)[:0], corr, flexibleHeader)
	b = r.AppendTo(b)
	wire.FinishFrame(b, 0)
	*bp = b
	return &Response{Bytes: b, h: h, buf: bp}
}
