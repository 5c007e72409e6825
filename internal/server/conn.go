package server

// One client connection. A reader goroutine reads size-prefixed frames into buffers
// grown as bytes arrive (a client that announces a large frame and stalls holds only
// what it sent, and only until the frame deadline); the serving goroutine handles
// frames one at a time, in order, and writes each response before the next, as Kafka
// does, so responses leave in request order.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/wire"
)

const (
	// maxQueuedFrames bounds the requests read ahead of the one being handled.
	maxQueuedFrames = 4
	// frameChunk is how much of a frame is allocated before its bytes arrive.
	frameChunk = 64 << 10
	// defaultFrameTimeout bounds the time between a frame's size and its last byte, and
	// a response's write, when request.timeout.ms is not set.
	defaultFrameTimeout = 30 * time.Second
)

type conn struct {
	s    *Server
	nc   net.Conn
	info handler.Client
}

func newConn(s *Server, nc net.Conn) *conn {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	return &conn{s: s, nc: nc, info: handler.Client{Host: host, Addr: nc.RemoteAddr().String()}}
}

func (c *conn) serve() {
	ctx, cancel := context.WithCancel(c.s.ctx)
	frames := make(chan []byte, maxQueuedFrames)
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		defer close(frames)
		br := bufio.NewReaderSize(c.nc, 32<<10)
		for {
			f, err := c.readFrame(br)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
					c.s.logger.Debug("closing connection", "client", c.info.Addr, "err", err)
				}
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		c.nc.Close()
		for range frames { // let the reader finish
		}
		rwg.Wait()
	}()

	bw := bufio.NewWriterSize(c.nc, 64<<10)
	for f := range frames {
		resp, ok := c.s.h.Serve(ctx, &c.info, f)
		if !ok {
			return
		}
		if resp == nil { // acks=0 produce: no response
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.frameTimeout()))
		_, err := bw.Write(resp.Bytes)
		resp.Release()
		if err == nil && len(frames) == 0 {
			err = bw.Flush()
		}
		if err != nil {
			return
		}
	}
}

func (c *conn) readFrame(br *bufio.Reader) ([]byte, error) {
	idle := c.s.cfg.ConnectionsMaxIdle
	if idle > 0 {
		c.nc.SetReadDeadline(time.Now().Add(idle))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	n, err := wire.ReadSize(br, c.s.cfg.SocketRequestMaxBytes)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errors.New("idle connection")
		}
		return nil, err
	}
	c.nc.SetReadDeadline(time.Now().Add(c.frameTimeout()))
	buf := make([]byte, 0, min(int(n), frameChunk))
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(int(n), 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

func (c *conn) frameTimeout() time.Duration {
	if t := c.s.cfg.RequestTimeout; t > 0 {
		return t
	}
	return defaultFrameTimeout
}
