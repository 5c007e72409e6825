package broker

// A follower's Fetch requests go over a connection of their own per source broker,
// whose response buffer is reused from one fetch to the next. Through the kgo client
// every response body was a fresh allocation of its size (about 1 MB per fetch under
// load): the runtime zeroed it, faulted its pages in, and the scavenger gave them back
// to the kernel after the next GC; in bench/replicated's r3 that was about 15% of the
// cluster's CPU (docs/performance.md, "Where RF=3's CPU went"). The buffer is lent with
// the response and taken back by Release, which the replication Driver calls once the
// response is applied (the fetcher keeps no slice of it: the records are written to
// the log before Handle returns). Other requests (OffsetForLeaderEpoch, ListOffsets)
// still go through the kgo client.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/wire"
)

// maxFetchResponseBytes bounds a response body, as kgo's BrokerMaxReadBytes (100 MiB)
// did on this path.
const maxFetchResponseBytes = 100 << 20

// fetchConn is the Fetch connection to one broker. One Driver uses it at a time (the
// replication Manager keeps one per source broker); mu serializes anyway.
type fetchConn struct {
	mu        sync.Mutex
	addr      string
	clientID  string
	timeout   time.Duration // replica.socket.timeout.ms, past the fetch's own wait
	formatter *kmsg.RequestFormatter

	connMu sync.Mutex // guards conn against close from another goroutine
	conn   net.Conn
	closed bool

	br       *bufio.Reader
	corr     int32
	maxFetch int16 // the broker's highest Fetch version (ApiVersions), once connected
	wbuf     []byte
	buf      []byte        // the reusable response body buffer, when not lent
	lent     kmsg.Response // the response that holds buf, until Release
	sizeBuf  [4]byte
}

func newFetchConn(addr, clientID string, timeout time.Duration) *fetchConn {
	return &fetchConn{addr: addr, clientID: clientID, timeout: timeout,
		formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
}

// request sends req (a Fetch) and returns its response, which may hold the reusable
// buffer until release.
func (c *fetchConn) request(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.Version = min(req.Version, c.maxFetch)
	wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	conn.SetDeadline(time.Now().Add(wait + c.timeout))
	resp := req.ResponseKind()
	resp.SetVersion(req.Version)
	body, reused, err := c.roundTrip(conn, req, true)
	if err == nil {
		err = readResponse(resp, body)
	}
	if err != nil {
		c.drop(conn)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("fetch from %s: %w", c.addr, err)
	}
	if reused {
		c.lent = resp
	}
	return resp, nil
}

// release takes back the buffer resp holds, if it holds it.
func (c *fetchConn) release(resp kmsg.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lent == resp && resp != nil {
		c.lent = nil
	}
}

// connect dials if there is no connection and learns the broker's Fetch versions.
func (c *fetchConn) connect(ctx context.Context) (net.Conn, error) {
	c.connMu.Lock()
	conn, closed := c.conn, c.closed
	c.connMu.Unlock()
	if closed {
		return nil, ErrShuttingDown
	}
	if conn != nil {
		return conn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	c.br = bufio.NewReaderSize(conn, 4<<10)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(c.timeout))
	av := kmsg.NewPtrApiVersionsRequest() // v0: understood by every broker, no tags
	body, _, err := c.roundTrip(conn, av, false)
	var resp kmsg.ApiVersionsResponse
	if err == nil {
		err = readResponse(&resp, body)
	}
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("api versions of %s: %w", c.addr, err)
	}
	c.maxFetch = -1
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 1 {
			c.maxFetch = k.MaxVersion
		}
	}
	if c.maxFetch < 0 {
		conn.Close()
		return nil, fmt.Errorf("broker at %s does not answer Fetch", c.addr)
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.closed {
		conn.Close()
		return nil, ErrShuttingDown
	}
	c.conn = conn
	return conn, nil
}

// roundTrip writes req and reads its response body past the correlation ID and, for a
// flexible response other than ApiVersions, the header's tags. With reuse the body is
// read into the reusable buffer unless it is lent (reused reports which).
func (c *fetchConn) roundTrip(conn net.Conn, req kmsg.Request, reuse bool) (body []byte, reused bool, err error) {
	c.corr++
	corr := c.corr
	c.wbuf = c.formatter.AppendRequest(c.wbuf[:0], req, corr)
	if _, err := conn.Write(c.wbuf); err != nil {
		return nil, false, err
	}
	if _, err := io.ReadFull(c.br, c.sizeBuf[:]); err != nil {
		return nil, false, err
	}
	size := int32(binary.BigEndian.Uint32(c.sizeBuf[:]))
	if size < 4 || size > maxFetchResponseBytes {
		return nil, false, fmt.Errorf("response size %d out of range", size)
	}
	var buf []byte
	if reuse && c.lent == nil {
		if cap(c.buf) < int(size) {
			c.buf = make([]byte, size)
		}
		buf, reused = c.buf[:size], true
	} else {
		buf = make([]byte, size)
	}
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return nil, false, err
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		return nil, false, fmt.Errorf("correlation ID %d, want %d", got, corr)
	}
	body = buf[4:]
	if req.IsFlexible() && req.Key() != 18 {
		if body, err = wire.SkipTags(body); err != nil {
			return nil, false, err
		}
	}
	return body, reused, nil
}

// readResponse decodes body into resp.
func readResponse(resp kmsg.Response, body []byte) error {
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %s response: %w", kmsg.NameForKey(resp.Key()), err)
	}
	return nil
}

// drop closes conn after an error; the next request dials again.
func (c *fetchConn) drop(conn net.Conn) {
	conn.Close()
	c.connMu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.connMu.Unlock()
}

// close closes the connection, interrupting a request in flight; no request dials
// after it.
func (c *fetchConn) close() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
