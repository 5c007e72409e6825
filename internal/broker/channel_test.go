package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/wire"
)

// fakePeer is the quorum member as the channel sees it: a leader that tests move.
type fakePeer struct {
	mu      sync.Mutex
	leader  quorum.LeaderInfo
	changed chan struct{}
	err     error
}

func newFakePeer(id uint64) *fakePeer {
	return &fakePeer{leader: quorum.LeaderInfo{LeaderID: id, Term: 1}, changed: make(chan struct{})}
}

func (p *fakePeer) Leader() (quorum.LeaderInfo, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader, p.changed
}

func (p *fakePeer) setLeader(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leader = quorum.LeaderInfo{LeaderID: id, Term: p.leader.Term + 1}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *fakePeer) Status(context.Context) (quorum.Status, error) { return quorum.Status{}, nil }
func (p *fakePeer) Err() error                                    { return p.err }

// fakeController is a controller listener on loopback answering with answer.
type fakeController struct {
	ln       net.Listener
	requests atomic.Int32
	conns    atomic.Int32
	answer   func(req kmsg.Request) kmsg.Response // nil response: close the connection
	wg       sync.WaitGroup
}

func startFakeController(t *testing.T, answer func(kmsg.Request) kmsg.Response) *fakeController {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{ln: ln, answer: answer}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer nc.Close()
				f.serve(nc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeController) serve(nc net.Conn) {
	br := bufio.NewReader(nc)
	for {
		n, err := wire.ReadSize(br, 1<<20)
		if err != nil {
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		h, body, err := wire.ParseHeader(frame, func(key, version int16) bool {
			r := kmsg.RequestForKey(key)
			r.SetVersion(version)
			return r.IsFlexible()
		})
		if err != nil {
			return
		}
		req := kmsg.RequestForKey(h.APIKey)
		req.SetVersion(h.APIVersion)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		f.requests.Add(1)
		resp := f.answer(req)
		if resp == nil {
			return
		}
		resp.SetVersion(h.APIVersion)
		out := wire.AppendResponseHeader(nil, h.CorrelationID, resp.IsFlexible())
		out = resp.AppendTo(out)
		wire.FinishFrame(out, 0)
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func (f *fakeController) addr() string { return f.ln.Addr().String() }

func heartbeatAnswer(code int16) func(kmsg.Request) kmsg.Response {
	return func(req kmsg.Request) kmsg.Response {
		r := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		r.ErrorCode = code
		return r
	}
}

func testChannel(peer *fakePeer, voters map[int32]string) *ControllerChannel {
	return &ControllerChannel{self: 9, peer: peer, voters: voters, clientID: "test", maxFrame: 1 << 20,
		backoff: time.Millisecond, dial: time.Second}
}

func testHeartbeat() *kmsg.BrokerHeartbeatRequest {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.Version = 1
	req.BrokerID, req.BrokerEpoch = 9, 5
	return req
}

// A NOT_CONTROLLER answer is retried; once the quorum names another leader, the channel
// goes there, over one connection per controller.
func TestChannelReresolvesOnNotController(t *testing.T) {
	good := startFakeController(t, heartbeatAnswer(0))
	peer := newFakePeer(1)
	stale := startFakeController(t, func(req kmsg.Request) kmsg.Response {
		peer.setLeader(2) // the quorum moves on while the old leader answers
		return heartbeatAnswer(kerr.NotController.Code)(req)
	})
	ch := testChannel(peer, map[int32]string{1: stale.addr(), 2: good.addr()})
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ch.Send(ctx, testHeartbeat())
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode; code != 0 {
		t.Fatalf("answer %v, want the new controller's", kerr.ErrorForCode(code))
	}
	if stale.requests.Load() != 1 || good.requests.Load() != 1 {
		t.Fatalf("requests: old controller %d, new %d", stale.requests.Load(), good.requests.Load())
	}
	// The next request reuses the connection to the new controller.
	if _, err := ch.Send(ctx, testHeartbeat()); err != nil {
		t.Fatal(err)
	}
	if good.conns.Load() != 1 || good.requests.Load() != 2 {
		t.Fatalf("new controller: %d connections, %d requests", good.conns.Load(), good.requests.Load())
	}
}

// A connection the controller closes mid-request is dialled again and the request
// retried.
func TestChannelRetriesABrokenConnection(t *testing.T) {
	var n atomic.Int32
	f := startFakeController(t, func(req kmsg.Request) kmsg.Response {
		if n.Add(1) == 1 {
			return nil // closes the connection without answering
		}
		return heartbeatAnswer(0)(req)
	})
	ch := testChannel(newFakePeer(1), map[int32]string{1: f.addr()})
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ch.Send(ctx, testHeartbeat()); err != nil {
		t.Fatal(err)
	}
	if f.conns.Load() != 2 || f.requests.Load() != 2 {
		t.Fatalf("%d connections, %d requests; want 2 and 2", f.conns.Load(), f.requests.Load())
	}
}

// With only NOT_CONTROLLER answers the channel gives up at the deadline with the last
// answer; with no controller at all, with the context's error.
func TestChannelDeadline(t *testing.T) {
	f := startFakeController(t, heartbeatAnswer(kerr.NotController.Code))
	ch := testChannel(newFakePeer(1), map[int32]string{1: f.addr()})
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := ch.Send(ctx, testHeartbeat())
	if err != nil || resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode != kerr.NotController.Code {
		t.Fatalf("at the deadline: %v %v, want the last NOT_CONTROLLER answer", resp, err)
	}
	if f.requests.Load() < 2 {
		t.Fatalf("%d requests: NOT_CONTROLLER was not retried", f.requests.Load())
	}

	none := testChannel(newFakePeer(0), nil) // no leader known
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := none.Send(ctx, testHeartbeat()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("without a controller: %v, want the deadline", err)
	}
}

// fakeLocal is an in-process controller.
type fakeLocal struct{ calls atomic.Int32 }

func (l *fakeLocal) Active() bool { return true }
func (l *fakeLocal) Handle(_ context.Context, req kmsg.Request) kmsg.Response {
	l.calls.Add(1)
	return heartbeatAnswer(0)(req)
}

// When this node leads, its own controller answers in process; a failed metadata log
// answers KAFKA_STORAGE_ERROR instead of retrying NOT_CONTROLLER.
func TestChannelLocalControllerAndFailedLog(t *testing.T) {
	local := &fakeLocal{}
	peer := newFakePeer(9)
	ch := testChannel(peer, nil)
	defer ch.Close()
	ch.local = local
	if _, err := ch.Send(context.Background(), testHeartbeat()); err != nil || local.calls.Load() != 1 {
		t.Fatalf("local controller: %v, %d calls", err, local.calls.Load())
	}

	f := startFakeController(t, heartbeatAnswer(kerr.NotController.Code))
	peer.setLeader(1)
	peer.err = errors.New("disk gone")
	ch.voters = map[int32]string{1: f.addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ch.Send(ctx, testHeartbeat()); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("with the metadata log failed: %v, want KAFKA_STORAGE_ERROR", err)
	}
}
