// Package server is a node's network face: listeners, connections, framing limits,
// and dispatch of each request to the handler, with responses written in request order
// on each connection. It owns the broker and the handler it starts.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/bufpool"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/metrics"
)

// Server is one running node.
type Server struct {
	cfg    config.Broker
	logger *slog.Logger
	broker *broker.Broker
	groups *group.Coordinator
	h      *handler.Handler

	frames bufpool.Pool // request frame buffers
	budget *budget      // queued.max.request.bytes
	queued *budget      // queued.max.requests: requests read and not yet being served
	limits *connLimits  // max.connections.per.ip and its overrides

	metrics *metrics.Metrics
	slow    *slowLog // vltava.request.slow.log.threshold.ms
	ready   readiness

	ctx    context.Context // cancelled by Close: ends long polls and connections
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners []net.Listener
	started   bool // every listener is bound
	http      *httpListener
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int // open connections by client address
	closed    bool               // Close has begun
	// draining: the listeners are closing; a connection accepted now is closed at
	// once. Not set during the controlled shutdown, which serves new connections.
	draining bool
	// The controller listener's (controller.go).
	ctrl ctrlListeners

	wg sync.WaitGroup
}

// New opens the node's data. Start begins serving.
func New(cfg config.Broker, opts broker.Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	limits, err := parseConnLimits(cfg)
	if err != nil {
		return nil, err
	}
	m := newMetrics(cfg)
	opts.LogTimings = logTimings(m)
	opts.ISRListener = m.Replication
	b, err := broker.Open(cfg, opts)
	if err != nil {
		return nil, err
	}
	delay := cfg.GroupInitialRebalanceDelay
	if delay == 0 {
		delay = -1 // the coordinator reads 0 as "default"; the operator asked for none
	}
	groups := group.New(group.Config{
		NumPartitions:         cfg.OffsetsTopicNumPartitions,
		InitialRebalanceDelay: delay,
		MinSessionTimeout:     cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:     cfg.GroupMaxSessionTimeout,
		OffsetsRetention:      cfg.OffsetsRetention,
		MaxGroupSize:          int(cfg.GroupMaxSize),
		// KIP-848 and offset-expiry settings are read from the key table's values.
		ConsumerSessionTimeout:        msValue(cfg, "group.consumer.session.timeout.ms"),
		ConsumerHeartbeatInterval:     msValue(cfg, "group.consumer.heartbeat.interval.ms"),
		OffsetsRetentionCheckInterval: msValue(cfg, "offsets.retention.check.interval.ms"),
		ConsumerAssignors:             cfg.ConsumerAssignors,
		Now:                           b.Now,
		Logger:                        opts.Logger,
		Topics:                        b.GroupTopics,
	}, b.GroupStore())
	// The coordinator serves the groups of the __consumer_offsets partitions this node
	// leads, loading and unloading them as leadership moves (those led now first).
	if err := b.SetOffsetsLeadership(func(p int32, leading bool) error {
		if leading {
			return groups.LoadPartition(context.Background(), p)
		}
		groups.UnloadPartition(p)
		return nil
	}); err != nil {
		groups.Close()
		b.Close()
		return nil, fmt.Errorf("load groups: %w", err)
	}
	groups.StartExpiration()
	h, err := handler.NewWith(b, groups, handler.Options{Metrics: m})
	if err != nil {
		groups.Close()
		b.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, logger: opts.Logger, broker: b, groups: groups, h: h, ctx: ctx, cancel: cancel,
		conns: map[*conn]struct{}{}, perIP: map[netip.Addr]int{}, limits: limits, ctrl: newCtrlListeners(cfg),
		budget: newBudget(requestBudget(cfg)), queued: newBudget(int64(max(cfg.QueuedMaxRequests, 1))),
		metrics: m, slow: newSlowLog(cfg, opts.Logger)}
	if c := b.Controller(); c != nil {
		s.SetController(controllerAPIs{c})
	}
	if cfg.IsBroker() {
		s.AddReadyCheck("broker", func() error {
			select {
			case <-b.Unfenced():
				return nil
			default:
				return errors.New("not unfenced by the controller yet")
			}
		})
	}
	s.watchMetrics()
	return s, nil
}

// Broker returns the node's broker state (for tests and tools in-process).
func (s *Server) Broker() *broker.Broker { return s.broker }

// Start binds every listener and serves in the background. A listener on port 0 binds a
// free port and is advertised with it.
func (s *Server) Start() error {
	// The controller listener first: the quorum's peers reach this node there.
	if err := s.startController(); err != nil {
		s.Close()
		return err
	}
	var adv []string
	for i, addr := range s.cfg.Listeners {
		ln, err := s.listen(addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		bound := ln.Addr().(*net.TCPAddr)
		a := ln.Addr().String()
		if i < len(s.cfg.AdvertisedListeners) {
			a = s.cfg.AdvertisedListeners[i]
			if host, port, err := net.SplitHostPort(a); err == nil && port == "0" {
				a = net.JoinHostPort(host, strconv.Itoa(bound.Port))
			}
		}
		adv = append(adv, a)
		s.logger.Info("listening", "addr", ln.Addr().String(), "advertised", a)
	}
	if err := s.broker.SetAdvertised(adv); err != nil {
		s.Close()
		return err
	}
	// Clients are served once the controller has unfenced this broker (its metadata
	// caught up), as Kafka's broker enables request processing only then; connections
	// made before wait in the listen backlog. A single node is unfenced already.
	unfenced := s.broker.Unfenced()
	select {
	case <-unfenced:
	default:
		s.logger.Info("clients are served once the controller unfences this broker")
	}
	s.mu.Lock()
	for _, ln := range s.listeners {
		s.wg.Add(1)
		go func() {
			// A broker-only node accepts at once: its quorum frames come on its
			// inter-broker listener, and it cannot catch up (to be unfenced) without
			// them; its connections wait for the unfencing before serving clients (conn).
			if s.cfg.IsController() {
				select {
				case <-unfenced:
				case <-s.ctx.Done():
					s.wg.Done()
					return
				}
			}
			s.accept(ln)
		}()
	}
	s.mu.Unlock()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil
}

// Addrs returns the bound address of each listener.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr().String()
	}
	return out
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather than spin.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.logger.Warn("accept", "err", err)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		c := newConn(s, nc)
		ip := remoteIP(nc)
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections {
			s.mu.Unlock()
			nc.Close()
			s.metrics.Conns.RefusedMax.Inc()
			continue
		}
		// max.connections.per.ip: over the limit the connection is closed at once,
		// as Kafka does.
		if limit := s.limits.limit(ip); s.perIP[ip] >= limit {
			s.mu.Unlock()
			nc.Close()
			s.metrics.Conns.RefusedPerIP.Inc()
			s.limits.rejected(s.logger, ip, limit)
			continue
		}
		s.perIP[ip]++
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.Conns.Accepted.Inc()
		s.metrics.Conns.Open.Inc()
		go func() {
			defer s.wg.Done()
			defer s.metrics.Conns.Open.Dec()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] == 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// Close stops listening, closes every connection, waits for their goroutines and closes
// the broker (flushing logs, writing clean-shutdown markers).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// The controlled shutdown first, while the listeners still serve: the other voters
	// reach this node's raft through its controller listener (a quorum that has lost
	// another voter would lose its leader, and the shutdown its controller, without it).
	// Clients keep being served meanwhile, on new connections too: one closed at once
	// reads as EOF at the client's first read, which clients take for a TLS or SASL
	// mismatch and do not retry.
	s.broker.ControlledShutdown()
	s.mu.Lock()
	s.draining = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	var youngest time.Time
	for c := range s.conns {
		if c.accepted.After(youngest) {
			youngest = c.accepted
		}
	}
	s.mu.Unlock()
	// A connection accepted a moment ago was opened for a request that follows its
	// ApiVersions: it is served until it is youngConnGrace old, since an EOF before
	// its first answer reads to the client as a TLS or SASL mismatch, not retried.
	// Older connections' clients retry a broken connection.
	if wait := youngConnGrace - time.Since(youngest); wait > 0 {
		t := time.NewTimer(wait)
		<-t.C
	}
	s.mu.Lock()
	httpl := s.http
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.closeController()
	s.cancel()
	// The connections are closed: the topic changes their requests forwarded to the
	// controller have nobody to answer, and must not hold the wait below.
	s.broker.AbandonRequests()
	if httpl != nil {
		httpl.close()
	}
	s.wg.Wait()
	s.groups.Close()
	err := s.h.Close()
	if berr := s.broker.Close(); err == nil {
		err = berr
	}
	return err
}

// youngConnGrace is how long Close keeps serving a connection accepted just before it
// stopped listening (a client's first request follows its ApiVersions at once).
const youngConnGrace = 250 * time.Millisecond

// defaultRequestBudget bounds request bytes in flight when queued.max.request.bytes is
// -1 (Kafka's "no limit"): Vltava keeps memory bounded whatever the load.
const defaultRequestBudget = 512 << 20

// The budget is never below socket.request.max.bytes (Kafka refuses a smaller
// queued.max.request.bytes at start; Vltava raises it): a frame is charged as it
// arrives and must be able to finish (budget.go).
func requestBudget(cfg config.Broker) int64 {
	n, err := strconv.ParseInt(cfg.Values["queued.max.request.bytes"], 10, 64)
	if err != nil || n <= 0 {
		n = defaultRequestBudget
	}
	return max(n, int64(cfg.SocketRequestMaxBytes))
}

// msValue reads a millisecond config from the resolved values; 0 (the coordinator's
// "Kafka default") if it is absent or not a number.
func msValue(cfg config.Broker, key string) time.Duration {
	n, err := strconv.ParseInt(cfg.Values[key], 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Millisecond
}
