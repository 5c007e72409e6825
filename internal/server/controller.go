package server

// The controller listener (the listeners named in controller.listener.names): how the
// metadata quorum's members reach each other, and where the controller APIs are served.
// Every frame is Kafka-framed; the quorum's own frames (API key 1000, one way, no
// response) go to the quorum member (quorum.Node.Deliver), the rest to the handler's
// controller dispatch (ApiVersions and the controller APIs, handler/controller_listener.go).
// A frame the quorum refuses (another cluster's, garbage) closes its connection.
//
// Bounded as the clients' listeners are: a frame is at most vltava.quorum.max.frame.bytes
// (it must carry a whole snapshot of the metadata image), its bytes are charged before
// it is read to a budget of vltava.quorum.receive.buffer.bytes (frames then wait), it
// must arrive within controller.quorum.request.timeout.ms per MiB, an idle connection is
// closed after connections.max.idle.ms, and max.connections and max.connections.per.ip
// apply to the controller listener's connections, counted apart from the clients' so
// that clients cannot crowd the quorum out. Requests on one connection are served one at
// a time, in order.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/controller"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/wire"
)

// ctrlListeners is the controller listener's state; its maps are guarded by Server.mu.
type ctrlListeners struct {
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	perIP     map[netip.Addr]int
	budget    *budget
	maxFrame  int32
	timeout   time.Duration // per MiB of a frame
	prebound  map[string]net.Listener
}

func newCtrlListeners(cfg config.Broker) ctrlListeners {
	maxFrame := int64(100 << 20)
	if n, err := strconv.ParseInt(cfg.Values["vltava.quorum.max.frame.bytes"], 10, 32); err == nil && n > 0 {
		maxFrame = n
	}
	buffer := 2 * maxFrame
	if n, err := strconv.ParseInt(cfg.Values["vltava.quorum.receive.buffer.bytes"], 10, 64); err == nil && n >= maxFrame {
		buffer = n
	}
	timeout := 2 * time.Second
	if n, err := strconv.ParseInt(cfg.Values["controller.quorum.request.timeout.ms"], 10, 64); err == nil && n > 0 {
		timeout = time.Duration(n) * time.Millisecond
	}
	return ctrlListeners{conns: map[net.Conn]struct{}{}, perIP: map[netip.Addr]int{}, budget: newBudget(buffer),
		maxFrame: int32(maxFrame), timeout: timeout, prebound: map[string]net.Listener{}}
}

// UseListener makes Start serve the listener configured at addr (host:port, as in
// listeners) on ln, bound already, instead of binding it: tests bind the controller
// listeners of a quorum first, to name them in controller.quorum.voters.
func (s *Server) UseListener(addr string, ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrl.prebound[addr] = ln
}

// listen binds addr, or takes the listener given for it.
func (s *Server) listen(addr string) (net.Listener, error) {
	s.mu.Lock()
	ln := s.ctrl.prebound[addr]
	delete(s.ctrl.prebound, addr)
	s.mu.Unlock()
	if ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// controllerAPIs serves the node's controller (internal/controller) on the controller
// listener.
type controllerAPIs struct{ c *controller.Controller }

func (a controllerAPIs) Handle(ctx context.Context, req kmsg.Request) kmsg.Response {
	return a.c.Handle(ctx, req)
}

func (a controllerAPIs) APIs() []kmsg.ApiVersionsResponseApiKey {
	var out []kmsg.ApiVersionsResponseApiKey
	for _, k := range a.c.APIs() {
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k.Key, MinVersion: k.MinVersion, MaxVersion: k.MaxVersion})
	}
	return out
}

// SetController installs what answers the controller APIs on the controller listener.
func (s *Server) SetController(c handler.ControllerAPIs) { s.h.SetController(c) }

// ControllerAddrs returns the bound address of each controller listener.
func (s *Server) ControllerAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.ctrl.listeners))
	for i, ln := range s.ctrl.listeners {
		out[i] = ln.Addr().String()
	}
	return out
}

// startController binds the controller listeners and serves them.
func (s *Server) startController() error {
	for _, addr := range s.cfg.ControllerListeners {
		ln, err := s.listen(addr)
		if err != nil {
			return fmt.Errorf("listen %s (controller listener): %w", addr, err)
		}
		s.mu.Lock()
		s.ctrl.listeners = append(s.ctrl.listeners, ln)
		s.mu.Unlock()
		s.logger.Info("listening for controllers", "addr", ln.Addr().String())
		s.wg.Add(1)
		go s.acceptController(ln)
	}
	return nil
}

// closeController closes the controller listeners and their connections (Close waits
// for their goroutines with the others).
func (s *Server) closeController() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.ctrl.listeners {
		ln.Close()
	}
	for nc := range s.ctrl.conns {
		nc.Close()
	}
	for _, ln := range s.ctrl.prebound {
		ln.Close()
	}
}

func (s *Server) acceptController(ln net.Listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger.Warn("accept (controller listener)", "err", err)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		ip := remoteIP(nc)
		s.mu.Lock()
		if s.draining || (s.cfg.MaxConnections > 0 && len(s.ctrl.conns) >= s.cfg.MaxConnections) {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if limit := s.limits.limit(ip); s.ctrl.perIP[ip] >= limit {
			s.mu.Unlock()
			nc.Close()
			s.limits.rejected(s.logger, ip, limit)
			continue
		}
		s.ctrl.perIP[ip]++
		s.ctrl.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveController(nc)
			s.mu.Lock()
			delete(s.ctrl.conns, nc)
			if s.ctrl.perIP[ip]--; s.ctrl.perIP[ip] == 0 {
				delete(s.ctrl.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// serveController reads and serves one controller connection's frames until it closes,
// misbehaves or the server closes.
func (s *Server) serveController(nc net.Conn) {
	defer nc.Close()
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	client := &handler.Client{Host: host, Addr: nc.RemoteAddr().String()}
	br := bufio.NewReaderSize(nc, connBufSize)
	bw := bufio.NewWriterSize(nc, connBufSize)
	for {
		if idle := s.cfg.ConnectionsMaxIdle; idle > 0 {
			nc.SetReadDeadline(time.Now().Add(idle))
		} else {
			nc.SetReadDeadline(time.Time{})
		}
		n, err := wire.ReadSize(br, s.ctrl.maxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
				s.logger.Debug("closing a controller connection", "remote", client.Addr, "err", err)
			}
			return
		}
		charged, err := s.ctrl.budget.acquire(s.ctx, int64(n))
		if err != nil {
			return
		}
		frame, err := s.readControllerFrame(nc, br, n)
		if err != nil {
			s.ctrl.budget.release(charged)
			s.logger.Debug("closing a controller connection", "remote", client.Addr, "err", err)
			return
		}
		key, _, _, _ := wire.ParseKeyVersion(frame)
		if key == quorum.APIKey {
			ok := s.deliverQuorum(nc, frame, client.Addr)
			s.ctrl.budget.release(charged)
			if !ok {
				return
			}
			continue
		}
		resp, ok := s.h.ServeController(s.ctx, client, frame)
		s.ctrl.budget.release(charged)
		if !ok {
			return
		}
		nc.SetWriteDeadline(time.Now().Add(s.ctrl.timeout))
		_, err = bw.Write(resp.Bytes)
		if err == nil {
			err = bw.Flush()
		}
		resp.Release()
		if err != nil {
			return
		}
	}
}

// deliverQuorum hands a quorum frame (API key 1000, without its size) to the quorum
// member; false means it was bad and the connection must be closed. A frame of another
// cluster is answered first (see quorum's transport.go), so that a node started on
// another cluster's data dir stops once the voters have said so.
func (s *Server) deliverQuorum(nc net.Conn, frame []byte, remote string) bool {
	body, err := quorum.ParseFrame(frame)
	if err == nil {
		err = s.broker.Quorum().Deliver(body) // decodes the messages: the frame is not kept
	}
	if err == nil {
		return true
	}
	_, _, corr, _ := wire.ParseKeyVersion(frame)
	if rej := quorum.Rejection(corr, err); rej != nil {
		nc.SetWriteDeadline(time.Now().Add(s.ctrl.timeout))
		nc.Write(rej)
	}
	s.logger.Warn("closing a connection after a bad quorum frame", "remote", remote, "err", err)
	return false
}

// readControllerFrame reads a frame of n bytes within the request timeout per MiB.
func (s *Server) readControllerFrame(nc net.Conn, br *bufio.Reader, n int32) ([]byte, error) {
	nc.SetReadDeadline(time.Now().Add(s.ctrl.timeout * time.Duration(1+n>>20)))
	frame := make([]byte, n)
	if _, err := io.ReadFull(br, frame); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return frame, nil
}
