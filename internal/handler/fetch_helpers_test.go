package handler

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/vfs"
)

// fetchTest is a handler over a broker with topic "t" of some partitions, and what a
// test needs to drive fetches at it.
type fetchTest struct {
	t      testing.TB
	h      *Handler
	b      *broker.Broker
	client *Client
}

// newFetchTest opens a broker on fsys (data in dir) with broker configs over, and a
// topic "t" of parts partitions. now is the broker's clock (nil: time.Now).
func newFetchTest(t testing.TB, fsys vfs.FS, dir string, parts int32, over map[string]string, now func() time.Time) *fetchTest {
	t.Helper()
	ov := map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0"}
	for k, v := range over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(cfg, broker.Options{FS: fsys, Logger: logger, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.SetAdvertised([]string{"127.0.0.1:9092"})
	groups := group.New(group.Config{NumPartitions: 1, InitialRebalanceDelay: -1, Logger: logger, Topics: b.GroupTopics, Now: b.Now}, b.GroupStore())
	t.Cleanup(groups.Close)
	h, err := New(b, groups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("t", parts, 1, map[string]string{"max.message.bytes": "8388608"}, false); err != nil {
		t.Fatal(err)
	}
	return &fetchTest{t: t, h: h, b: b, client: &Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}}
}

// appendBatch appends a batch of n records of size-byte values to partition p and
// returns the batch's size in the log.
func (ft *fetchTest) appendBatch(p int32, n, size int) int {
	ft.t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: bytes.Repeat([]byte{byte('a' + i%26)}, size), Timestamp: ft.b.Now().UnixMilli()}
	}
	raw, err := batch.Build(batch.BuildOptions{}, recs)
	if err != nil {
		ft.t.Fatal(err)
	}
	if _, err := ft.b.Partition("t", p).Append(raw); err != nil {
		ft.t.Fatal(err)
	}
	return len(raw)
}

// fpart is one partition of a fetch request.
type fpart struct {
	p      int32
	offset int64
	max    int32
}

// freq is a fetch request of topic "t" (v12: names, sessions, flexible).
type freq struct {
	maxBytes, minBytes, maxWait int32
	session, epoch              int32
	parts                       []fpart
	forget                      []int32
}

func (ft *fetchTest) frame(r freq) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = -1, r.maxBytes, r.minBytes, r.maxWait
	req.SessionID, req.SessionEpoch = r.session, r.epoch
	if len(r.parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for _, p := range r.parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p.p, p.offset, p.max, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(r.forget) > 0 {
		req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: "t", Partitions: r.forget})
	}
	fr := binary.BigEndian.AppendUint16(nil, 1)
	fr = binary.BigEndian.AppendUint16(fr, 12)
	fr = binary.BigEndian.AppendUint32(fr, 7)
	fr = binary.BigEndian.AppendUint16(fr, 1)
	fr = append(fr, 'c', 0)
	return req.AppendTo(fr)
}

// serve answers r; the caller releases the response.
func (ft *fetchTest) serve(r freq, sendfile bool) *Response {
	ft.t.Helper()
	serve := ft.h.Serve
	if sendfile {
		serve = ft.h.ServeSendfile
	}
	resp, ok := serve(context.Background(), ft.client, ft.frame(r))
	if !ok || resp == nil {
		ft.t.Fatalf("fetch %+v refused", r)
	}
	return resp
}

// fetch answers r and decodes the response (the response is released).
func (ft *fetchTest) fetch(r freq) *kmsg.FetchResponse {
	ft.t.Helper()
	resp := ft.serve(r, false)
	defer resp.Release()
	return decodeFetch(ft.t, resp)
}

// responseBytes is the frame a response stands for, its file pieces read in place.
func responseBytes(t testing.TB, r *Response) []byte {
	t.Helper()
	if r.Vec == nil {
		return append([]byte(nil), r.Bytes...)
	}
	var out []byte
	files := r.Files
	for i := 0; i <= len(r.Vec); i++ {
		for len(files) > 0 && files[0].At == i {
			f := files[0]
			buf := make([]byte, f.Len)
			if _, err := f.File.ReadAt(buf, f.Pos); err != nil {
				t.Fatalf("read pinned %s at %d: %v", f.File.Name(), f.Pos, err)
			}
			out = append(out, buf...)
			files = files[1:]
		}
		if i < len(r.Vec) {
			out = append(out, r.Vec[i]...)
		}
	}
	if got := int(binary.BigEndian.Uint32(out)); got != len(out)-4 {
		t.Fatalf("frame length %d, frame has %d bytes", got, len(out)-4)
	}
	return out
}

// decodeFetch decodes a v12 fetch response frame.
func decodeFetch(t testing.TB, r *Response) *kmsg.FetchResponse {
	t.Helper()
	b := responseBytes(t, r)
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 12
	if err := fr.ReadFrom(b[9:]); err != nil { // size, correlation id, header tags
		t.Fatalf("decode fetch response: %v", err)
	}
	return fr
}

// recordBytes is the record bytes of partition p in fr, and its error code (-100 if
// the partition is not in the response).
func recordBytes(fr *kmsg.FetchResponse, p int32) (int, int16) {
	for _, t := range fr.Topics {
		for _, rp := range t.Partitions {
			if rp.Partition == p {
				return len(rp.RecordBatches), rp.ErrorCode
			}
		}
	}
	return 0, -100
}

// batchCount is the number of whole batches in records.
func batchCount(t testing.TB, records []byte) int {
	t.Helper()
	n := 0
	for len(records) > 0 {
		if len(records) < 12 {
			t.Fatalf("%d bytes left, not a batch", len(records))
		}
		size := 12 + int(binary.BigEndian.Uint32(records[8:]))
		if size > len(records) {
			t.Fatalf("partial batch: %d of %d bytes", len(records), size)
		}
		records = records[size:]
		n++
	}
	return n
}

func recordsOf(fr *kmsg.FetchResponse, p int32) []byte {
	for _, t := range fr.Topics {
		for _, rp := range t.Partitions {
			if rp.Partition == p {
				return rp.RecordBatches
			}
		}
	}
	return nil
}
