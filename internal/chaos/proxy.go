package chaos

import (
	"net"
	"sync"
	"time"
)

// Proxy is a TCP link between two nodes that the battery can slow down:
// netem is not in every kernel (not in the one CI runs on), so a slow link
// is every inter-node connection going through a Proxy whose delay the
// nemesis sets. Each chunk read from one side is written to the other once
// the delay in force when it was read has passed; chunks keep their order
// and the link's throughput is not capped by the delay, as with netem.
// At most proxyQueue chunks per direction wait, then reading stops (TCP
// back pressure), so a slow link never buffers without bound.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	delay  time.Duration
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

const (
	proxyQueue = 64
	proxyChunk = 32 << 10
)

// NewProxy listens on listen and forwards every connection to target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients of the link dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay sets the one-way delay of both directions for chunks read from
// now on.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

func (p *Proxy) currentDelay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

// Close stops the listener and every link and waits for their goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers a connection; false when the proxy is closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if !p.track(in) {
				in.Close()
				return
			}
			defer p.untrack(in)
			out, err := net.DialTimeout("tcp", p.target, 10*time.Second)
			if err != nil {
				return
			}
			if !p.track(out) {
				out.Close()
				return
			}
			defer p.untrack(out)
			done := make(chan struct{}, 2)
			go func() { p.pump(out, in); done <- struct{}{} }()
			go func() { p.pump(in, out); done <- struct{}{} }()
			<-done // either side ending ends the link
			in.Close()
			out.Close()
			<-done
		}()
	}
}

type chunk struct {
	b   []byte
	due time.Time
}

// pump copies src to dst, each chunk held until its due time.
func (p *Proxy) pump(dst, src net.Conn) {
	q := make(chan chunk, proxyQueue)
	go func() {
		defer close(q)
		for {
			b := make([]byte, proxyChunk)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(p.currentDelay())}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d) // the link's latency, not a wait for a condition
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close() // unblocks the reader, which closes q
			for range q {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
