package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeFetchBroker answers ApiVersions v0 (Fetch up to maxFetch) and Fetch requests on
// one connection at a time: each Fetch gets one partition whose records are the next
// of records, and a response header with one tagged field (to be skipped).
type fakeFetchBroker struct {
	ln       net.Listener
	maxFetch int16
	records  [][]byte
	versions chan int16 // the version of each Fetch received
	silent   bool       // Fetch requests get no answer
}

func newFakeFetchBroker(t *testing.T, maxFetch int16, records ...[]byte) *fakeFetchBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFetchBroker{ln: ln, maxFetch: maxFetch, records: records, versions: make(chan int16, len(records)+1)}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *fakeFetchBroker) serve() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.serveConn(conn)
		conn.Close()
	}
}

func (f *fakeFetchBroker) serveConn(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		var size [4]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(body)), int16(binary.BigEndian.Uint16(body[2:]))
		corr := body[4:8]
		out := append([]byte{0, 0, 0, 0}, corr...)
		switch key {
		case 18:
			resp := kmsg.NewApiVersionsResponse()
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MaxVersion = 1, f.maxFetch
			resp.ApiKeys = append(resp.ApiKeys, k)
			out = resp.AppendTo(out)
		case 1:
			f.versions <- version
			if f.silent {
				continue
			}
			resp := kmsg.NewFetchResponse()
			resp.Version = version
			tp := kmsg.NewFetchResponseTopic()
			tp.Topic = "t"
			p := kmsg.NewFetchResponseTopicPartition()
			if len(f.records) > 0 {
				p.RecordBatches, f.records = f.records[0], f.records[1:]
			}
			tp.Partitions = append(tp.Partitions, p)
			resp.Topics = append(resp.Topics, tp)
			if resp.IsFlexible() {
				out = append(out, 1, 7, 2, 'h', 'i') // one tag (7) of 2 bytes in the header
			}
			out = resp.AppendTo(out)
		default:
			return
		}
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

func fetchRecords(t *testing.T, resp kmsg.Response) []byte {
	t.Helper()
	fr := resp.(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("response: %+v", fr)
	}
	return fr.Topics[0].Partitions[0].RecordBatches
}

// TestFetchConnReusesReleasedBuffer: a response's buffer is reused only once it is
// released; one still held keeps its bytes while the next fetch reads elsewhere.
func TestFetchConnReusesReleasedBuffer(t *testing.T) {
	a, b, c := bytes.Repeat([]byte("a"), 5000), bytes.Repeat([]byte("b"), 3000), bytes.Repeat([]byte("c"), 4000)
	fb := newFakeFetchBroker(t, 16, a, b, c)
	fc := newFetchConn(fb.ln.Addr().String(), "test", 5*time.Second)
	defer fc.close()
	ctx := context.Background()
	fetch := func() kmsg.Response {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis = 16, 10
		resp, err := fc.request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	r1 := fetch()
	if got := fetchRecords(t, r1); !bytes.Equal(got, a) {
		t.Fatalf("first fetch: %d bytes of %q", len(got), got[:1])
	}
	r2 := fetch() // r1 not released: r2 must not overwrite it
	if got := fetchRecords(t, r1); !bytes.Equal(got, a) {
		t.Fatal("the first response changed under a second fetch before its release")
	}
	if got := fetchRecords(t, r2); !bytes.Equal(got, b) {
		t.Fatal("second fetch: wrong records")
	}
	fc.release(r1)
	r3 := fetch()
	if got := fetchRecords(t, r3); !bytes.Equal(got, c) {
		t.Fatal("third fetch: wrong records")
	}
	if !bufHolds(fc.buf, fetchRecords(t, r3)) {
		t.Fatal("the third fetch did not reuse the released buffer")
	}
	if !bufHolds(fc.buf, fetchRecords(t, r1)) {
		t.Fatal("the first fetch did not read into the reusable buffer")
	}
	if bufHolds(fc.buf, fetchRecords(t, r2)) {
		t.Fatal("the second fetch read into the buffer the first response still held")
	}
}

// bufHolds reports whether s lies within buf's backing array.
func bufHolds(buf, s []byte) bool {
	if len(s) == 0 || cap(buf) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= start && p < start+uintptr(cap(buf))
}

// TestFetchConnVersionAndCancel: the Fetch version is capped at the broker's, and a
// cancelled context interrupts a request whose answer does not come.
func TestFetchConnVersionAndCancel(t *testing.T) {
	fb := newFakeFetchBroker(t, 11, []byte("x"))
	fc := newFetchConn(fb.ln.Addr().String(), "test", 5*time.Second)
	defer fc.close()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 16
	if _, err := fc.request(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if v := <-fb.versions; v != 11 {
		t.Fatalf("Fetch version %d sent, want 11", v)
	}

	// A broker that answers ApiVersions and never a Fetch.
	quiet := &fakeFetchBroker{maxFetch: 16, versions: make(chan int16, 1), silent: true}
	var err error
	if quiet.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer quiet.ln.Close()
	go quiet.serve()
	silent := newFetchConn(quiet.ln.Addr().String(), "test", 30*time.Second)
	defer silent.close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	req = kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis = 16, 10000
	_, err = silent.request(ctx, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the cancelled request returned after %v", d)
	}
	if v := <-quiet.versions; v != 16 {
		t.Fatalf("Fetch version %d sent to the quiet broker, want 16", v)
	}
}
