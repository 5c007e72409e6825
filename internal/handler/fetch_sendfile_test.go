package handler_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/vfs"
)

// sendfileHandler is a handler over a broker on fsys with topic "t": partition 0 holds
// about 2.5 MiB in 1 MiB segments, partition 1 nothing, partition 2 three small batches.
func sendfileHandler(t testing.TB, fsys vfs.FS, dir string) (*handler.Handler, *broker.Broker) {
	t.Helper()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(cfg, broker.Options{FS: fsys, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.SetAdvertised([]string{"127.0.0.1:9092"})
	groups := group.New(group.Config{NumPartitions: 1, InitialRebalanceDelay: -1, Logger: logger, Topics: b.GroupTopics, Now: b.Now}, b.GroupStore())
	t.Cleanup(groups.Close)
	h, err := handler.New(b, groups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("t", 3, 1, map[string]string{"segment.bytes": "1048576"}, false); err != nil {
		t.Fatal(err)
	}
	appendValues := func(p int32, n, size int) {
		for i := 0; i < n; i++ {
			rec := batch.Record{Value: bytes.Repeat([]byte{byte('a' + i%26)}, size), Timestamp: time.Now().UnixMilli()}
			raw, err := batch.Build(batch.BuildOptions{}, []batch.Record{rec, rec})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Partition("t", p).Append(raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendValues(0, 40, 32<<10)
	appendValues(2, 3, 100)
	return h, b
}

func fetchFrame(t testing.TB, b *broker.Broker, version int16, maxBytes, partMaxBytes int32, offsets map[int32]int64) []byte {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, maxBytes, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "t", b.Image().Topic("t").ID
	for p := int32(0); p < 3; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offsets[p], partMaxBytes, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	fr := binary.BigEndian.AppendUint16(nil, 1)
	fr = binary.BigEndian.AppendUint16(fr, uint16(version))
	fr = binary.BigEndian.AppendUint32(fr, 7)
	fr = binary.BigEndian.AppendUint16(fr, 1)
	fr = append(fr, 'c')
	if req.IsFlexible() {
		fr = append(fr, 0)
	}
	return req.AppendTo(fr)
}

// frameBytes is the whole frame a response stands for, its file pieces read in place.
func frameBytes(t *testing.T, r *handler.Response) []byte {
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
	if len(files) > 0 {
		t.Fatalf("file pieces past the end of Vec: %+v", files)
	}
	if got := int(binary.BigEndian.Uint32(out)); got != len(out)-4 {
		t.Fatalf("frame length %d, frame has %d bytes", got, len(out)-4)
	}
	return out
}

// TestServeSendfileSameFrame: the frame ServeSendfile describes (fields, records left in
// their files) is byte for byte the one Serve reads and encodes, for every version,
// with records spanning segments and cut by the byte limits; on an OS filesystem large
// records are pinned (small ones read), on the in-memory one none are (the fallback:
// read as before).
func TestServeSendfileSameFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fsys   vfs.FS
		dir    string
		pinned bool
	}{
		{"os", vfs.OS(), t.TempDir(), true},
		{"mem", vfs.NewMem(), "/data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b := sendfileHandler(t, tc.fsys, tc.dir)
			client := &handler.Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}
			ctx := context.Background()
			spanned := false // a partition's records came from more than one segment
			anyPinned := false
			for _, version := range []int16{4, 7, 11, 12, 13, 16} {
				for _, lim := range []struct{ max, part int32 }{{64 << 20, 64 << 20}, {1 << 20, 8 << 20}, {100, 100}, {3 << 20, 1 << 20}} {
					for _, offsets := range []map[int32]int64{{}, {0: 30, 2: 1}, {0: 80, 2: 6}, {0: 1000}} {
						name := fmt.Sprintf("v%d max %d/%d offsets %v", version, lim.max, lim.part, offsets)
						frame := fetchFrame(t, b, version, lim.max, lim.part, offsets)
						want, ok := h.Serve(ctx, client, frame)
						if !ok || want == nil {
							t.Fatalf("%s: Serve refused", name)
						}
						got, ok := h.ServeSendfile(ctx, client, frame)
						if !ok || got == nil {
							t.Fatalf("%s: ServeSendfile refused", name)
						}
						if len(got.Files) > 0 {
							anyPinned = true
							if !tc.pinned {
								t.Fatalf("%s: %d file pieces from files the kernel cannot send", name, len(got.Files))
							}
						}
						if len(got.Files) > 1 && got.Files[0].At == got.Files[1].At {
							spanned = true
						}
						if !bytes.Equal(frameBytes(t, got), frameBytes(t, want)) {
							t.Fatalf("%s: ServeSendfile's frame differs from Serve's", name)
						}
						want.Release()
						got.Release()
					}
				}
			}
			if tc.pinned && (!anyPinned || !spanned) {
				t.Fatalf("pinned %v, across segments %v: want both", anyPinned, spanned)
			}
		})
	}
}

// TestServeSendfileOtherRequests: requests other than a valid fetch get Serve's answer.
func TestServeSendfileOtherRequests(t *testing.T) {
	h, b := sendfileHandler(t, vfs.OS(), t.TempDir())
	client := &handler.Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}
	ctx := context.Background()
	good := fetchFrame(t, b, 12, 1<<20, 1<<20, nil)
	for _, frame := range [][]byte{
		good[:len(good)-3],                       // truncated fetch: refused
		append([]byte{0, 1, 0, 99}, good[4:]...), // unsupported version: refused
		{0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0}, // ApiVersions v3
	} {
		want, wok := h.Serve(ctx, client, frame)
		got, gok := h.ServeSendfile(ctx, client, frame)
		if wok != gok || (want == nil) != (got == nil) {
			t.Fatalf("frame %x: Serve %v %v, ServeSendfile %v %v", frame, want, wok, got, gok)
		}
		if want != nil && !bytes.Equal(frameBytes(t, got), frameBytes(t, want)) {
			t.Fatalf("frame %x: answers differ", frame)
		}
	}
}

// FuzzServeSendfile: whatever frame a client sends on a connection that sends records
// from their files, ServeSendfile answers, refuses or asks to close, never panics, and
// any frame it describes adds up to the length it announces.
func FuzzServeSendfile(f *testing.F) {
	h, b := sendfileHandler(f, vfs.OS(), f.TempDir())
	for _, v := range []int16{4, 7, 11, 12, 13, 16} {
		f.Add(fetchFrame(f, b, v, 1<<20, 1<<20, nil))
		f.Add(fetchFrame(f, b, v, 64<<20, 64<<20, map[int32]int64{0: 10}))
	}
	client := &handler.Client{Host: "127.0.0.1", Addr: "127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no long polls
		resp, _ := h.ServeSendfile(ctx, client, frame)
		if resp != nil {
			frameBytes(t, resp)
			resp.Release()
		}
	})
}
