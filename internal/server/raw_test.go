package server_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the wire protocol directly, for requests a well-behaved client would
// never send.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// frame encodes a request with its header (v1, or v2 if flexible).
func frame(req kmsg.Request, corr int32) []byte {
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// readFrame returns the next response frame after the correlation id, or an error.
func (r *rawConn) readFrame() (int32, []byte, error) {
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(r.br, sz[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// do sends req and decodes the response into resp (version taken from req).
func (r *rawConn) do(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	r.corr++
	r.write(frame(req, r.corr))
	corr, body, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if corr != r.corr {
		r.t.Fatalf("correlation id %d, want %d", corr, r.corr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty tagged fields of response header v1
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode response: %v", err)
	}
	return resp
}

// expectClosed checks the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_, _, err := r.readFrame()
	if err == nil {
		r.t.Fatal("expected the connection to be closed, got a response")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		r.t.Fatal("expected the connection to be closed, it stayed open")
	}
}
