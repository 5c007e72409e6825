package server_test

// The request intake: large frames arrive intact whichever buffers they are read into,
// stalled ones are cut, queued.max.requests and max.connections.per.ip hold.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b
}

// Frames read into one pooled buffer, into pooled buffers that double as the frame
// arrives, and into a mapping: the records come back byte for byte.
func TestLargeFramesArriveIntact(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "big", 1, map[string]*string{"max.message.bytes": ptr("41943040")})
	r := dialRaw(t, n.addr)
	sizes := []int{700 << 10, 3<<20 + 12345, 20<<20 + 777}
	var want [][]byte
	for i, size := range sizes {
		v := randomBytes(uint64(i), size)
		want = append(want, v)
		b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: v, Timestamp: time.Now().UnixMilli()}})
		if err != nil {
			t.Fatal(err)
		}
		if p := produceRaw(t, r, "big", -1, b); p.ErrorCode != 0 || p.BaseOffset != int64(i) {
			t.Fatalf("produce %d bytes: %+v", size, p)
		}
	}
	cl := n.client(kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(64<<20), kgo.BrokerMaxReadBytes(128<<20))
	ctx := ctxT(t)
	for got := 0; got < len(want); {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, len(want), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(rec *kgo.Record) {
			if !bytes.Equal(rec.Value, want[got]) {
				t.Fatalf("record %d (%d bytes) came back different", got, len(want[got]))
			}
			got++
		})
	}
}

// A request whose handler keeps parts of it (JoinGroup's protocol metadata, held by the
// group) is moved off its mapping before it is served: the group still has the bytes
// after more large frames have come and gone.
func TestLargeRetainedRequestKept(t *testing.T) {
	// The group record carrying the metadata must fit in __consumer_offsets.
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0", "message.max.bytes": "41943040"})
	r := dialRaw(t, n.addr)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g" // as clients do first: it creates __consumer_offsets, whose leader coordinates
	if resp := r.do(fc).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != 0 {
		t.Fatalf("find coordinator: %d", resp.ErrorCode)
	}
	meta := randomBytes(7, 20<<20+99)
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(3)
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", 30000, 30000
	join.ProtocolType = "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}}
	jr := r.do(join).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || len(jr.Members) != 1 || !bytes.Equal(jr.Members[0].ProtocolMetadata, meta) {
		t.Fatalf("join: error %d, %d members", jr.ErrorCode, len(jr.Members))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.SetVersion(1)
	sync.Group, sync.Generation, sync.MemberID = "g", jr.Generation, jr.MemberID
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: []byte{0, 0}}}
	if sr := r.do(sync).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 {
		t.Fatalf("sync: %d", sr.ErrorCode)
	}
	// More large frames, transient ones, through mappings of their own.
	other := dialRaw(t, n.addr)
	n.createTopic(t, "t", 1, nil)
	for i := range 3 {
		b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: randomBytes(uint64(100+i), 20<<20), Timestamp: time.Now().UnixMilli()}})
		if err != nil {
			t.Fatal(err)
		}
		if p := produceRaw(t, other, "t", 1, b); p.ErrorCode != 0 {
			t.Fatalf("produce: %+v", p)
		}
	}
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Groups = []string{"g"}
	dr := r.do(desc).(*kmsg.DescribeGroupsResponse)
	if len(dr.Groups) != 1 || len(dr.Groups[0].Members) != 1 {
		t.Fatalf("describe: %+v", dr.Groups)
	}
	if !bytes.Equal(dr.Groups[0].Members[0].ProtocolMetadata, meta) {
		t.Fatal("the group's member metadata changed after its request was freed")
	}
}

// A frame that stops arriving is cut at its frame deadline, whichever buffers it is
// read into.
func TestStalledLargeFramesAreCut(t *testing.T) {
	n := startNode(t, map[string]string{"request.timeout.ms": "300"})
	for _, c := range []struct{ size, sent int }{
		{2 << 20, 3 << 19}, // pooled buffers, stalled after its first doubling
		{20 << 20, 3 << 20},
	} {
		r := dialRaw(t, n.addr)
		b := binary.BigEndian.AppendUint32(nil, uint32(c.size))
		b = append(b, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0) // Produce v9, correlation id 1, empty client id
		r.write(append(b, make([]byte, c.sent-10)...))
		r.expectClosed()
	}
}

// Frames announced and then not sent hold one step of the request budget each, not
// their size: together they announce the whole budget, and a normal request is still
// answered while they hold on (before, it waited for their frame deadline).
func TestStalledAnnouncersHoldOnlyWhatArrived(t *testing.T) {
	const budget = 100 << 20
	n := startNode(t, map[string]string{"queued.max.request.bytes": "104857600", "socket.request.max.bytes": "104857600"})
	sizes := []int{budget / 6, budget / 6, budget / 6, 16 << 20, 16 << 20, budget - 3*(budget/6) - 32<<20}
	for _, size := range sizes {
		r := dialRaw(t, n.addr)
		b := binary.BigEndian.AppendUint32(nil, uint32(size))
		r.write(append(b, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0)) // Produce v9, correlation id 1, empty client id
	}
	waitFor(t, "the six frames to hold their first step", func() bool { return server.RequestBytesHeld(n.srv) == int64(len(sizes))<<20 })
	r := dialRaw(t, n.addr)
	if resp := r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("api versions: %d", resp.ErrorCode)
	}
}

// queued.max.requests bounds the requests read and not yet being served across the
// broker: with one slot, a request pipelined behind a long poll holds it, and another
// connection's request is not read until the long poll ends, which it cannot do before
// its max wait (no records arrive).
func TestQueuedMaxRequests(t *testing.T) {
	n := startNode(t, map[string]string{"queued.max.requests": "1"})
	n.createTopic(t, "q", 1, nil)

	const maxWait = 2 * time.Second
	poll := dialRaw(t, n.addr)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, int32(maxWait/time.Millisecond), 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "q"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	versions := kmsg.NewPtrApiVersionsRequest()
	const frameBytes = 4 << 10 // each of these small frames holds one 4 KiB pooled buffer
	start := time.Now()
	poll.write(frame(fetch, 1))
	waitFor(t, "the fetch to be served (its slot given back, its bytes still held)", func() bool {
		return server.QueuedRequests(n.srv) == 0 && server.RequestBytesHeld(n.srv) == frameBytes
	})
	poll.write(append(frame(versions, 2), frame(versions, 3)...))
	waitFor(t, "one pipelined request to hold the slot and the other to wait for it", func() bool {
		return server.QueuedRequests(n.srv) == 1 && server.RequestBytesHeld(n.srv) == 3*frameBytes
	})

	other := dialRaw(t, n.addr)
	other.write(frame(versions, 9))
	if corr, _, err := other.readFrame(); err != nil || corr != 9 {
		t.Fatalf("other connection: corr %d, %v", corr, err)
	}
	if took := time.Since(start); took < maxWait {
		t.Fatalf("another connection's request was answered %v after the long poll began, before its max wait of %v: it was read while the only queued.max.requests slot was taken", took, maxWait)
	}
	for want := int32(1); want <= 3; want++ {
		if corr, _, err := poll.readFrame(); err != nil || corr != want {
			t.Fatalf("pipelined response %d: corr %d, %v", want, corr, err)
		}
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	versions := kmsg.NewPtrApiVersionsRequest()
	served := func(addr string) (*rawConn, bool) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
		t.Cleanup(func() { c.Close() })
		r.write(frame(versions, 1))
		_, _, err = r.readFrame()
		return r, err == nil
	}
	t.Run("limit", func(t *testing.T) {
		n := startNode(t, map[string]string{"max.connections.per.ip": "2"})
		a, ok1 := served(n.addr)
		_, ok2 := served(n.addr)
		if !ok1 || !ok2 {
			t.Fatal("connections within the limit were closed")
		}
		if _, ok := served(n.addr); ok {
			t.Fatal("a third connection from 127.0.0.1 was served with max.connections.per.ip=2")
		}
		// Once one closes, another is let in (the broker notices the close on its own).
		a.c.Close()
		waitFor(t, "a connection to be served after one of the two closed", func() bool { _, ok := served(n.addr); return ok })
	})
	t.Run("overrides", func(t *testing.T) {
		n := startNode(t, map[string]string{"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "localhost:1"})
		if _, ok := served(n.addr); !ok {
			t.Fatal("the connection allowed by the override was closed")
		}
		if _, ok := served(n.addr); ok {
			t.Fatal("a second connection from localhost was served with its override at 1")
		}
	})
	t.Run("refused at start", func(t *testing.T) {
		for _, c := range []struct{ key, value, want string }{
			{"max.connections.per.ip", "0", "max.connections.per.ip"},
			{"max.connections.per.ip.overrides", "127.0.0.1", "max.connections.per.ip.overrides"},
			{"max.connections.per.ip.overrides", "127.0.0.1:many", "max.connections.per.ip.overrides"},
		} {
			cfg, err := config.Load("", nil, map[string]string{"log.dirs": t.TempDir(), "listeners": "PLAINTEXT://127.0.0.1:0", c.key: c.value})
			if err == nil {
				var srv *server.Server
				srv, err = server.New(cfg, broker.Options{})
				if err == nil {
					srv.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s=%s: %v, want an error naming %s", c.key, c.value, err, c.want)
			}
		}
	})
}

// waitFor waits for cond, checking it every few milliseconds, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond) // paces the checks; cond is what is waited for
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
