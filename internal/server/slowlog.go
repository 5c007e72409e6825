package server

// Request metrics and the slow-request log, both fed as each request's response is
// written. A request's time runs from when its connection takes it up (queued behind
// the connection's earlier requests it is not, as Kafka does not read a connection's
// next request before the previous response is sent) to when its response has been
// written; acks=0 produces end when they are appended. A request is slow when that
// time, less what it waited on purpose (a long poll, a group barrier: the handler's
// Parked), passes vltava.request.slow.log.threshold.ms. Slow lines are INFO, at most
// slowLinesPerSecond a second; the others are counted in the next line.

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/metrics"
)

const slowLinesPerSecond = 10

type slowLog struct {
	threshold time.Duration // 0: off
	logger    *slog.Logger
	now       func() time.Time

	mu         sync.Mutex
	window     time.Time // the second lines are being counted in
	lines      int       // written in window
	suppressed int       // not written since the last line
}

func newSlowLog(cfg config.Broker, logger *slog.Logger) *slowLog {
	ms, err := strconv.ParseInt(cfg.Values["vltava.request.slow.log.threshold.ms"], 10, 64)
	if err != nil {
		ms = 1000 // a configuration not from config.Load
	}
	return &slowLog{threshold: time.Duration(ms) * time.Millisecond, logger: logger, now: time.Now}
}

// requestDone records a request whose response was written (resp nil: none is sent).
func (c *conn) requestDone(key, version int16, start time.Time, reqBytes int, resp *handler.Response) {
	d := time.Since(start)
	c.s.metrics.Requests.Done(key, version, d)
	l := c.s.slow
	if l.threshold <= 0 || d-c.info.Parked < l.threshold {
		return
	}
	respBytes := 0
	if resp != nil {
		respBytes = resp.Size()
	}
	l.log(key, version, &c.info, d, reqBytes, respBytes)
}

func (l *slowLog) log(key, version int16, c *handler.Client, d time.Duration, reqBytes, respBytes int) {
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.window) >= time.Second {
		l.window, l.lines = now, 0
	}
	if l.lines >= slowLinesPerSecond {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.lines++
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	attrs := []any{"api", metrics.KafkaAPIName(key), "version", version, "client_id", c.ClientID, "client", c.Addr,
		"duration_ms", millis(d), "parked_ms", millis(c.Parked), "request_bytes", reqBytes, "response_bytes", respBytes,
		"threshold_ms", millis(l.threshold)}
	if suppressed > 0 {
		attrs = append(attrs, "slow_requests_not_logged", suppressed)
	}
	l.logger.Info("slow request", attrs...)
}

// millis is d in milliseconds with microsecond precision, for log lines.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
