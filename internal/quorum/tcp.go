// The TCP transport: one outbound connection per peer, fed by a bounded queue that one
// goroutine per peer drains into frames (see transport.go for the format). A message that
// finds the queue full is dropped and reported, as is every message of a frame that could
// not be written; a MsgSnap is reported written or dropped. The only thing a peer writes
// back is a rejection (transport.go), read by one goroutine per connection and reported
// (ReportRejected) before the peer closes the connection. A broken connection is dialled
// again after a backoff that starts at controller.quorum.retry.backoff.ms and doubles up
// to reconnect.backoff.max.ms; a dial gives up after controller.quorum.request.timeout.ms,
// a frame's write after that per MiB of frame.
//
// Listener is the receiving side for a member that has no Kafka listener of its own (the
// tests): it reads frames, checks their header and hands the bodies to Node.Deliver.
// Vltava's server does the same on its controller listener.
package quorum

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/wire"
)

// TCPTransport is a Transport over TCP.
type TCPTransport struct {
	local uint64
	cfg   Config
	log   *slog.Logger

	ctx    context.Context // cancelled by Stop: ends dials and backoffs
	cancel context.CancelFunc

	mu      sync.Mutex
	peers   map[uint64]*tcpPeer
	rep     Reporter
	stopped bool
	wg      sync.WaitGroup
}

type tcpPeer struct {
	id   uint64
	t    *TCPTransport
	q    chan *raftpb.Message
	stop chan struct{}

	mu   sync.Mutex
	addr string
	conn net.Conn // closed by stop to end a blocked write
}

// NewTCPTransport returns a transport for member cfg.NodeID; Open starts it.
func NewTCPTransport(cfg Config, logger *slog.Logger) *TCPTransport {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, _ = cfg.withDefaults() // Open validates; the limits are what matter here
	ctx, cancel := context.WithCancel(context.Background())
	return &TCPTransport{local: cfg.NodeID, cfg: cfg, log: logger.With("node", cfg.NodeID), ctx: ctx, cancel: cancel,
		peers: make(map[uint64]*tcpPeer)}
}

// Start implements Transport.
func (t *TCPTransport) Start(r Reporter) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return ErrClosed
	}
	t.rep = r
	for _, p := range t.peers {
		t.wg.Add(1)
		go p.run()
	}
	return nil
}

// SetPeer implements Transport.
func (t *TCPTransport) SetPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p := t.peers[id]; p != nil {
		p.mu.Lock()
		if p.addr != addr {
			p.addr = addr
			if p.conn != nil {
				p.conn.Close() // the next write fails and dials the new address
			}
		}
		p.mu.Unlock()
		return
	}
	p := &tcpPeer{id: id, t: t, addr: addr, q: make(chan *raftpb.Message, t.cfg.SendQueueMessages), stop: make(chan struct{})}
	t.peers[id] = p
	if t.rep != nil {
		t.wg.Add(1)
		go p.run()
	}
}

// RemovePeer implements Transport.
func (t *TCPTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		delete(t.peers, id)
		p.close()
	}
}

// Stop implements Transport.
func (t *TCPTransport) Stop() {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		t.cancel()
		for id, p := range t.peers {
			delete(t.peers, id)
			p.close()
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// Send implements Transport.
func (t *TCPTransport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p := t.peers[m.GetTo()]
		if p != nil && !t.stopped {
			select {
			case p.q <- m:
				continue
			default:
			}
		}
		t.dropped(m)
	}
}

// dropped reports a message that was not sent.
func (t *TCPTransport) dropped(m *raftpb.Message) {
	if t.rep == nil {
		return
	}
	t.rep.ReportUnreachable(m.GetTo())
	if m.GetType() == raftpb.MsgSnap {
		t.rep.ReportSnapshot(m.GetTo(), false)
	}
}

func (p *tcpPeer) close() {
	close(p.stop)
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
}

// run sends the peer's queued messages until stopped.
func (p *tcpPeer) run() {
	defer p.t.wg.Done()
	t := p.t
	var (
		conn    net.Conn
		corr    int32
		backoff time.Duration
		batch   []*raftpb.Message
		frame   []byte
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
		for { // what is still queued is reported dropped
			select {
			case m := <-p.q:
				t.dropped(m)
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-p.stop:
			return
		case m := <-p.q:
			batch = append(batch[:0], m)
		}
		size := messageSize(batch[0])
	fill:
		for size < maxSizePerMsg {
			select {
			case m := <-p.q:
				batch = append(batch, m)
				size += messageSize(m)
			default:
				break fill
			}
		}
		var err error
		if conn == nil {
			if conn, err = p.dial(); err == nil {
				t.wg.Add(1)
				go p.readRejections(conn)
			}
		}
		if err == nil {
			corr++
			frame, err = p.write(conn, frame[:0], corr, batch)
		}
		if err != nil {
			if conn != nil {
				conn.Close()
				conn = nil
			}
			for _, m := range batch {
				t.dropped(m)
			}
			backoff = min(max(2*backoff, t.cfg.RetryBackoff), t.cfg.ReconnectBackoffMax)
			t.log.Debug("quorum: sending to peer failed", "peer", p.id, "err", err, "retry_in", backoff)
			timer := time.NewTimer(backoff)
			select {
			case <-p.stop:
				timer.Stop()
				return
			case <-timer.C:
			}
			continue
		}
		backoff = 0
		for _, m := range batch {
			if m.GetType() == raftpb.MsgSnap {
				t.rep.ReportSnapshot(p.id, true)
			}
		}
		clear(batch)
	}
}

// readRejections reads what the peer writes back on conn, which is only ever a rejection
// of this member's cluster id, until conn is closed (by run, or by the peer).
func (p *tcpPeer) readRejections(conn net.Conn) {
	defer p.t.wg.Done()
	r := bufio.NewReaderSize(conn, 4+maxRejectionBytes)
	for {
		size, err := wire.ReadSize(r, maxRejectionBytes)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.t.log.Debug("quorum: reading from a peer", "peer", p.id, "err", err)
			}
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		cluster, err := parseRejection(frame)
		if err != nil {
			p.t.log.Warn("quorum: closing a connection to a peer that answered a raft frame", "peer", p.id, "err", err)
			conn.Close()
			return
		}
		p.t.log.Warn("quorum: a peer rejects this node's cluster id (INCONSISTENT_CLUSTER_ID)",
			"peer", p.id, "peer_cluster_id", cluster, "cluster_id", p.t.cfg.ClusterID)
		p.t.rep.ReportRejected(p.id, cluster)
	}
}

func (p *tcpPeer) dial() (net.Conn, error) {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.t.ctx, p.t.cfg.RequestTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
		conn.Close()
		return nil, ErrClosed
	default:
	}
	p.conn = conn
	return conn, nil
}

// write sends batch as one frame, or as several when it is larger than a frame may be;
// a single message larger than vltava.quorum.max.frame.bytes cannot be sent.
func (p *tcpPeer) write(conn net.Conn, buf []byte, corr int32, batch []*raftpb.Message) ([]byte, error) {
	buf, err := appendFrame(buf, corr, p.t.local, p.t.cfg.ClusterID, batch)
	if err != nil {
		return buf, err
	}
	if len(buf)-4 > p.t.cfg.MaxFrameBytes {
		if len(batch) == 1 {
			p.t.log.Error("quorum: a message does not fit in a frame; raise vltava.quorum.max.frame.bytes",
				"peer", p.id, "type", batch[0].GetType(), "bytes", len(buf)-4, "limit", p.t.cfg.MaxFrameBytes)
			return buf, fmt.Errorf("message of %d bytes exceeds vltava.quorum.max.frame.bytes", len(buf)-4)
		}
		half := len(batch) / 2
		if buf, err = p.write(conn, buf[:0], corr, batch[:half]); err != nil {
			return buf, err
		}
		return p.write(conn, buf[:0], corr, batch[half:])
	}
	// A frame may hold a whole snapshot: its write may take the request timeout per
	// MiB (what Kafka would fetch in one snapshot chunk).
	conn.SetWriteDeadline(time.Now().Add(p.t.cfg.RequestTimeout * time.Duration(1+len(buf)/maxSizePerMsg)))
	_, err = conn.Write(buf)
	if cap(buf) > 4*maxSizePerMsg {
		buf = nil // do not keep a snapshot's frame
	}
	return buf, err
}

// Listener accepts raft frames on a TCP address and hands their bodies to deliver.
type Listener struct {
	ln       net.Listener
	deliver  func(body []byte) error
	maxFrame int
	log      *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen listens on addr (host:port; port 0 picks one) for frames of at most maxFrameBytes.
func Listen(addr string, maxFrameBytes int, deliver func(body []byte) error, logger *slog.Logger) (*Listener, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{ln: ln, deliver: deliver, maxFrame: maxFrameBytes, log: logger, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for their goroutines.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	err := l.ln.Close()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(conn)
	}
}

func (l *Listener) serve(conn net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReader(conn)
	for {
		size, err := wire.ReadSize(r, int32(min(l.maxFrame, 1<<31-1)))
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				l.log.Debug("quorum: closing a raft connection", "remote", conn.RemoteAddr(), "err", err)
			}
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		body, err := ParseFrame(frame)
		if err == nil {
			err = l.deliver(body)
		}
		if rej := Rejection(correlationID(frame), err); rej != nil {
			conn.SetWriteDeadline(time.Now().Add(DefaultConfig().RequestTimeout))
			conn.Write(rej)
		}
		if err != nil {
			l.log.Warn("quorum: closing a raft connection after a bad frame", "remote", conn.RemoteAddr(), "err", err)
			return
		}
	}
}

// correlationID returns a request frame's correlation id (0 if it is too short).
func correlationID(frame []byte) int32 {
	_, _, corr, _ := wire.ParseKeyVersion(frame)
	return corr
}

// ParseFrame checks the request header of a raft frame (without its size prefix) and
// returns the body.
func ParseFrame(frame []byte) ([]byte, error) {
	h, body, err := wire.ParseHeader(frame, func(int16, int16) bool { return false })
	if err != nil {
		return nil, err
	}
	if h.APIKey != APIKey || h.APIVersion != APIVersion {
		return nil, fmt.Errorf("frame for api %d v%d, want VltavaRaft (%d) v%d", h.APIKey, h.APIVersion, APIKey, APIVersion)
	}
	return body, nil
}
