package server

// The node's HTTP listener (vltava.http.listener), apart from the Kafka listeners:
//
//	/metrics  the Prometheus metrics (internal/metrics)
//	/healthz  200 while the process serves; 503 once every log dir has failed and the
//	          broker is halting
//	/readyz   200 when the node serves clients: its listeners are bound and it is not
//	          closing, its metadata and groups are loaded, every log dir is online, and
//	          every check added with AddReadyCheck passes (the hook for "caught up with
//	          the metadata quorum and not fenced" once the quorum is wired); else 503
//	          with the reasons, one a line
//
// It is bound by StartHTTP, not Start, so in-process tests and tools that embed a
// server do not take the fixed default port; the binary calls it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// httpListener is a running HTTP listener.
type httpListener struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve has returned
}

// StartHTTP binds addr and serves /metrics, /healthz and /readyz on it until Close,
// and returns the bound address; "" or "none" starts nothing. At most one HTTP
// listener runs.
func (s *Server) StartHTTP(addr string) (string, error) {
	if addr == "" || addr == "none" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("HTTP listener (vltava.http.listener) %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler(promLogger{s.logger}))
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	hl := &httpListener{ln: ln, done: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // a scrape of every partition's series
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}}
	s.mu.Lock()
	if s.closed || s.http != nil {
		s.mu.Unlock()
		ln.Close()
		return "", errors.New("HTTP listener: the server is closed or already has one")
	}
	s.http = hl
	s.mu.Unlock()
	go func() {
		defer close(hl.done)
		hl.srv.Serve(ln) // ErrServerClosed once closed
	}()
	bound := ln.Addr().String()
	s.logger.Info("HTTP listening", "addr", bound, "endpoints", "/metrics /healthz /readyz")
	return bound, nil
}

func (hl *httpListener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if hl.srv.Shutdown(ctx) != nil {
		hl.srv.Close()
	}
	<-hl.done
}

func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.broker.HaltErr(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "halting: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ready")
}

// readiness holds the checks added with AddReadyCheck.
type readiness struct {
	mu     sync.Mutex
	checks []readyCheck
}

type readyCheck struct {
	name string
	fn   func() error
}

// AddReadyCheck adds a condition Ready (and /readyz) requires: fn returns why the node
// should not take clients yet, or nil.
func (s *Server) AddReadyCheck(name string, fn func() error) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	s.ready.checks = append(s.ready.checks, readyCheck{name, fn})
}

// Ready returns nil when the node serves clients, else every reason it does not, one
// a line.
func (s *Server) Ready() error {
	var why []string
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		why = append(why, "the server is shutting down")
	case !started:
		why = append(why, "the listeners are not bound yet")
	}
	// New loads the metadata and the groups before it returns: a cluster ID is the
	// metadata image's.
	if s.broker.ClusterID() == "" {
		why = append(why, "the metadata is not loaded")
	}
	for _, d := range s.cfg.LogDirs {
		if err := s.broker.LogDirErr(d); err != nil {
			why = append(why, fmt.Sprintf("log dir %s is offline: %v", d, err))
		}
	}
	s.ready.mu.Lock()
	checks := append([]readyCheck(nil), s.ready.checks...)
	s.ready.mu.Unlock()
	for _, c := range checks {
		if err := c.fn(); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", c.name, err))
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "\n"))
	}
	return nil
}

// promLogger logs what the metrics handler reports (a collector that failed).
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...))) }
