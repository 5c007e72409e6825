package server

// One client connection. A reader goroutine reads size-prefixed frames (read.go),
// charging each frame's bytes to the broker-wide request budget as they arrive
// (budget.go), so a client that announces a large frame and stalls holds little more
// than what it sent, and only until the frame deadline; a complete frame then takes one
// of the broker-wide queued.max.requests slots until its turn to be served. The serving
// goroutine handles frames one at a time, in order, and writes each response before
// the next, as Kafka does, so responses leave in request order. On a plain TCP socket,
// fetch records go from their segment files to the socket with sendfile
// (sendfile_linux.go); elsewhere (other platforms, other kinds of connection) they are
// read into buffers and written with the fields in one writev.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/wire"
)

const (
	// connBufSize is each connection's read and write buffer: small, so idle
	// connections cost little; bufio passes larger reads and writes straight through.
	connBufSize = 8 << 10
	// maxQueuedFrames bounds the requests one connection reads ahead of the one being
	// handled; queued.max.requests bounds them across the broker.
	maxQueuedFrames = 4
	// defaultFrameTimeout bounds the time between a frame's size and its last byte, and
	// a response's write, when request.timeout.ms is not set.
	defaultFrameTimeout = 30 * time.Second
)

type conn struct {
	s        *Server
	nc       net.Conn
	accepted time.Time // when it was accepted (Close lets a young one be served a moment)
	info     handler.Client
	// files sends fetch records from their files; nil if the connection cannot.
	files *fileSender
}

func newConn(s *Server, nc net.Conn) *conn {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	c := &conn{s: s, nc: nc, accepted: time.Now(), info: handler.Client{Host: host, Addr: nc.RemoteAddr().String()}}
	if tc, ok := nc.(*net.TCPConn); ok && canSendfile {
		c.files, _ = newFileSender(tc) // without it, the ordinary path
	}
	return c
}

func (c *conn) serve() {
	ctx, cancel := context.WithCancel(c.s.ctx)
	// pollCtx ends also when the reader stops (the client closed the connection or it
	// broke): a fetch's long poll then returns at once instead of holding its goroutine
	// and fetch budget for max_wait_ms to answer nobody. Only fetches use it: a request
	// with effects (a produce, a commit) that was read is carried out, as Kafka does.
	pollCtx, clientGone := context.WithCancel(ctx)
	defer clientGone()
	frames := make(chan frame, maxQueuedFrames)
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		defer close(frames)
		defer clientGone()
		br := bufio.NewReaderSize(c.nc, connBufSize) // large frames bypass it
		for {
			f, err := c.readFrame(ctx, br)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
					c.s.logger.Debug("closing connection", "client", c.info.Addr, "err", err)
				}
				return
			}
			// queued.max.requests: with every slot taken the reader stops reading.
			if _, err := c.s.queued.acquire(ctx, 1); err != nil {
				c.drop(f)
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				c.s.queued.release(1)
				c.drop(f)
				return
			}
		}
	}()
	defer func() {
		cancel()
		c.nc.Close()
		for f := range frames { // let the reader finish
			c.s.queued.release(1)
			c.drop(f)
		}
		rwg.Wait()
	}()

	bw := bufio.NewWriterSize(c.nc, connBufSize) // large responses bypass it
	// A bug in a handler must cost one connection, not the broker: Kafka answers an
	// unexpected exception per request; here the connection closes and the panic is logged.
	defer func() {
		if r := recover(); r != nil {
			c.s.logger.Error("panic serving a request; closing the connection", "client", c.info.Addr, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	serve := c.s.h.Serve
	if c.files != nil {
		serve = c.s.h.ServeSendfile
	}
	for f := range frames {
		c.s.queued.release(1) // its turn has come: no longer queued
		start := time.Now()
		key, version, _, kv := wire.ParseKeyVersion(f.b)
		// Small responses are held in bw while more requests are queued (pipelined
		// requests then cost one write), but leave before a request that may wait
		// (handler.MayWait): a finished response must not wait behind a long poll.
		if bw.Buffered() > 0 && (!kv || c.s.h.MayWait(key)) {
			c.nc.SetWriteDeadline(time.Now().Add(c.frameTimeout()))
			if err := bw.Flush(); err != nil {
				c.drop(f)
				return
			}
		}
		if kv && key == quorum.APIKey && !c.s.cfg.IsController() {
			// A broker-only node is an observer of the quorum: the leader sends it the
			// log here (it has no controller listener; see quorum's observe.go).
			ok := bw.Flush() == nil && c.s.deliverQuorum(c.nc, f.b, c.info.Addr)
			c.served(&f)
			if !ok {
				return
			}
			continue
		}
		if !c.s.cfg.IsController() {
			// Accepted before the unfencing (see Start): clients wait for it.
			select {
			case <-c.s.broker.Unfenced():
			case <-ctx.Done():
				c.drop(f)
				return
			}
		}
		sctx := ctx
		if kv && key == fetchKey {
			sctx = pollCtx
		}
		resp, ok := serve(sctx, &c.info, f.b)
		reqBytes := len(f.b)
		c.served(&f)
		if !ok {
			return
		}
		if resp == nil { // acks=0 produce: no response
			c.requestDone(key, version, start, reqBytes, nil)
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.frameTimeout()))
		var err error
		switch {
		case resp.Files != nil:
			// Records left in their files: fields by writev, records by sendfile. An
			// error part way closes the connection, the frame being already announced.
			if err = bw.Flush(); err == nil {
				err = c.files.write(resp)
			}
			if err != nil && ctx.Err() == nil {
				c.s.logger.Debug("closing connection: fetch response", "client", c.info.Addr, "err", err)
			}
		case resp.Vec != nil:
			// A fetch with records: the fields and the record buffers go out in one
			// writev, the records never copied into a response buffer.
			if err = bw.Flush(); err == nil {
				vec := net.Buffers(resp.Vec)
				_, err = vec.WriteTo(c.nc)
			}
		default:
			_, err = bw.Write(resp.Bytes)
			if err == nil && len(frames) == 0 {
				err = bw.Flush()
			}
		}
		if err == nil {
			c.requestDone(key, version, start, reqBytes, resp)
		}
		resp.Release()
		if err != nil {
			return
		}
	}
}

// fetchKey is Fetch's API key.
const fetchKey = 1

func (c *conn) frameTimeout() time.Duration {
	if t := c.s.cfg.RequestTimeout; t > 0 {
		return t
	}
	return defaultFrameTimeout
}
