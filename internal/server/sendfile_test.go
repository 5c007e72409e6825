package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/vfs"
)

// startSendfileServer starts a server over fsys (with its data in dir) on a random
// loopback port, with broker configs over.
func startSendfileServer(t *testing.T, fsys vfs.FS, dir string, over ...map[string]string) *Server {
	t.Helper()
	ov := map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0"}
	for _, o := range over {
		for k, v := range o {
			ov[k] = v
		}
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("VLTAVA_TEST_LOG") != "" {
		out = os.Stderr
	}
	s, err := New(cfg, broker.Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sentFromFiles is the record bytes the server's open connections sent with sendfile.
func sentFromFiles(s *Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for c := range s.conns {
		if c.files != nil {
			n += c.files.sent.Load()
		}
	}
	return n
}

// TestSendfileConsume: a franz-go client consumes what it produced to several
// partitions over loopback. On the OS filesystem the records leave by sendfile; on the
// in-memory one (whose files the kernel cannot send) they are read and written as
// before. Either way every record comes back, in order.
func TestSendfileConsume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fsys     vfs.FS
		dir      string
		sendfile bool
	}{
		{"os", vfs.OS(), t.TempDir(), canSendfile},
		{"mem", vfs.NewMem(), "/data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSendfileServer(t, tc.fsys, tc.dir)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const parts, perPart = 4, 3000
			if _, err := s.Broker().CreateTopic("sf", parts, 1, nil, false); err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addrs()[0]), kgo.DefaultProduceTopic("sf"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			value := func(p int32, i int) string { return fmt.Sprintf("%d-%d-%s", p, i, strings.Repeat("v", i%300)) }
			for i := 0; i < perPart; i++ {
				for p := int32(0); p < parts; p++ {
					cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(value(p, i))}, func(_ *kgo.Record, err error) {
						if err != nil {
							t.Errorf("produce: %v", err)
						}
					})
				}
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Consuming what is all there, fetches are large enough to be sent from the
			// files (at least minSendfileBytes a partition) until the last of each.
			cl, err = kgo.NewClient(kgo.SeedBrokers(s.Addrs()[0]), kgo.ConsumeTopics("sf"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(256<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			next := make([]int, parts)
			for total := 0; total < parts*perPart; {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("poll after %d records: %v", total, err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					p := r.Partition
					if want := value(p, next[p]); string(r.Value) != want || r.Offset != int64(next[p]) {
						t.Fatalf("partition %d offset %d: %.20q, want offset %d %.20q", p, r.Offset, r.Value, next[p], want)
					}
					next[p]++
					total++
				})
			}
			if sent := sentFromFiles(s); (sent > 0) != tc.sendfile {
				t.Fatalf("%d bytes sent with sendfile; want sendfile used: %v", sent, tc.sendfile)
			}
		})
	}
}

// fetchRequestFrame is a sessionless fetch of every partition of topic from offset 0.
func fetchRequestFrame(topic string, parts int32, version int16, maxBytes int32) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, maxBytes, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < parts; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, maxBytes, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 42)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, "sf"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readPath is the frame the handler's ordinary path (pread, writev) makes for a request
// frame (with its size prefix).
func readPath(t *testing.T, s *Server, req []byte) []byte {
	t.Helper()
	resp, ok := s.h.Serve(context.Background(), &handler.Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}, req[4:])
	if !ok || resp == nil {
		t.Fatal("Serve refused the fetch")
	}
	defer resp.Release()
	if resp.Vec == nil {
		return append([]byte(nil), resp.Bytes...)
	}
	return bytes.Join(resp.Vec, nil)
}

// dialSmall connects with a small receive buffer, so a large response cannot all be in
// flight: the server's writes wait for the test to read.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
		if err == nil {
			err = serr
		}
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readResponse reads what the server sends until it closes the connection or a whole
// frame has come.
func readResponse(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if len(got) >= 4 && len(got) == 4+int(binary.BigEndian.Uint32(got)) {
			return got
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("read: %v after %d bytes", err, len(got))
			}
			return got
		}
	}
}

// TestSendfileSameBytesAsRead: the frame a fetch of several partitions puts on the wire
// by sendfile is byte for byte the one the read path makes.
func TestSendfileSameBytesAsRead(t *testing.T) {
	if !canSendfile {
		t.Skip("no sendfile on this platform")
	}
	s := startSendfileServer(t, vfs.OS(), t.TempDir())
	const parts = 5
	if _, err := s.Broker().CreateTopic("sf", parts, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < parts; p++ {
		for i := 0; i < int(p)*7; i++ { // partition 0 stays empty
			appendBatch(t, s, "sf", p, 3, 1000+int(p)*100)
		}
	}
	for _, version := range []int16{4, 11, 12} {
		req := fetchRequestFrame("sf", parts, version, 1<<20)
		want := readPath(t, s, req)
		c := dialSmall(t, s.Addrs()[0])
		before := sentFromFiles(s)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		got := readResponse(t, c)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: sendfile frame (%d bytes) differs from the read path's (%d bytes)", version, len(got), len(want))
		}
		if sentFromFiles(s) == before {
			t.Fatalf("v%d: no bytes sent with sendfile", version)
		}
	}
}

// appendBatch appends a batch of n records of size bytes each (a deterministic pattern)
// to a partition.
func appendBatch(t *testing.T, s *Server, topic string, p int32, n, size int) {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i*31 + j)
		}
		recs[i] = batch.Record{Value: v, Timestamp: time.Now().UnixMilli()}
	}
	raw, err := batch.Build(batch.BuildOptions{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Broker().Partition(topic, p).Append(raw); err != nil {
		t.Fatal(err)
	}
}

// TestSendfileSegmentGoneUnderFetch: while a fetch response is being sent (the client
// reads slowly), its segments are deleted by retention, or the topic is deleted, or a
// segment is truncated. Deleted segments are sent in full from their pinned
// descriptors; a truncated one cannot be, and the connection closes part way. In no
// case does a byte differ from what the read path would have sent.
func TestSendfileSegmentGoneUnderFetch(t *testing.T) {
	if !canSendfile {
		t.Skip("no sendfile on this platform")
	}
	for _, tc := range []struct {
		name     string
		complete bool
		gone     func(t *testing.T, s *Server, dir string)
	}{
		{"retention", true, func(t *testing.T, s *Server, dir string) {
			p := s.Broker().Partition("gone", 0)
			if _, err := p.DeleteRecords(p.HighWatermark()); err != nil {
				t.Fatal(err)
			}
			s.Broker().EnforceRetention()
			if segs := segmentFiles(t, dir); len(segs) != 1 {
				t.Fatalf("segments left after retention: %v", segs)
			}
		}},
		{"topic deleted", true, func(t *testing.T, s *Server, dir string) {
			if _, err := s.Broker().DeleteTopic("gone"); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", false, func(t *testing.T, s *Server, dir string) {
			// Well past what can be in flight (64 KiB of receive buffer, at most 4 MiB
			// of send buffer): the response is still waiting to send it.
			segs := segmentFiles(t, dir)
			if err := os.Truncate(segs[10], 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := startSendfileServer(t, vfs.OS(), dir)
			c, want := startLargeFetch(t, s)
			tc.gone(t, s, filepath.Join(dir, "gone-0"))
			got := readResponse(t, c)
			switch {
			case !bytes.HasPrefix(want, got):
				i := 0
				for i < len(got) && got[i] == want[i] {
					i++
				}
				t.Fatalf("byte %d of %d received differs from the read path's frame", i, len(got))
			case tc.complete && len(got) != len(want):
				t.Fatalf("received %d bytes of a %d-byte frame", len(got), len(want))
			case !tc.complete && len(got) == len(want):
				t.Fatal("a frame with a truncated segment arrived whole")
			}
		})
	}
}

// startLargeFetch fills topic "gone" with 16 MiB in 1 MiB segments and sends a fetch of
// all of it on a connection with a small receive buffer; it returns once the response
// has started (its segments are pinned by then) and the frame the read path makes.
func startLargeFetch(t *testing.T, s *Server) (net.Conn, []byte) {
	t.Helper()
	if _, err := s.Broker().CreateTopic("gone", 1, 1, map[string]string{"segment.bytes": "1048576", "file.delete.delay.ms": "0"}, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16*4; i++ {
		appendBatch(t, s, "gone", 0, 4, 64<<10-100)
	}
	req := fetchRequestFrame("gone", 1, 12, 64<<20)
	want := readPath(t, s, req)
	if len(want) < 15<<20 {
		t.Fatalf("read path frame is %d bytes", len(want))
	}
	c := dialSmall(t, s.Addrs()[0])
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fetch response to start", func() bool { return sentFromFiles(s) > 0 })
	return c, want
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSendfileWriteDeadline: a client that stops reading part way through a response
// sent by sendfile is cut off at the write deadline (request.timeout.ms), as on the read
// path; what it did receive is the start of the right frame.
func TestSendfileWriteDeadline(t *testing.T) {
	if !canSendfile {
		t.Skip("no sendfile on this platform")
	}
	s := startSendfileServer(t, vfs.OS(), t.TempDir(), map[string]string{"request.timeout.ms": "300"})
	c, want := startLargeFetch(t, s)
	waitFor(t, "the server to close the connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
	got := readResponse(t, c)
	if !bytes.HasPrefix(want, got) || len(got) == len(want) {
		t.Fatalf("received %d bytes of a %d-byte frame; a prefix: %v", len(got), len(want), bytes.HasPrefix(want, got))
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}
