package controller

// A harness that drives one core step by step, without goroutines: it plays the writer
// and the log (a metadata.StateMachine it applies committed entries to), commits writes
// at once or on demand, fails them, moves leadership and time.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

const testClusterID = "vltava-test-cluster"

type harness struct {
	t      *testing.T
	c      *core
	sm     *metadata.StateMachine
	term   uint64
	index  uint64
	manual bool     // commit only on commit()
	queue  []*write // proposed, not committed
	now    time.Time
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testConfig() Config {
	cfg, err := Config{NodeID: 1, ClusterID: testClusterID, SessionTimeout: 9 * time.Second,
		HeartbeatInterval: 2 * time.Second, Seed: 42}.withDefaults()
	if err != nil {
		panic(err)
	}
	return cfg
}

// newHarness returns an active controller (node 1, term 1) over an empty log.
func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	cfg := testConfig()
	for _, m := range mod {
		m(&cfg)
	}
	h := &harness{t: t, sm: metadata.NewStateMachine(nil, testLogger(t)), now: time.Unix(1_000_000, 0)}
	h.c = newCore(cfg, h.sm.Image, testLogger(t))
	h.lead(1)
	if !h.c.isActive() {
		t.Fatal("the controller did not become active")
	}
	return h
}

// lead makes node 1 the leader in term.
func (h *harness) lead(term uint64) {
	h.term = term
	h.step(func() { h.c.leader(quorum.LeaderInfo{LeaderID: 1, Term: term}) })
}

// loseLeadership makes another node the leader: what was proposed and not committed is
// gone, as raft truncates a deposed leader's log.
func (h *harness) loseLeadership() {
	h.term++
	for _, w := range h.queue {
		h.c.written(w, 0, &quorum.NotLeaderError{LeaderID: 2, Lost: true})
	}
	h.queue = nil
	h.step(func() { h.c.leader(quorum.LeaderInfo{LeaderID: 2, Term: h.term}) })
}

// step runs fn at the harness's time and proposes the writes it made.
func (h *harness) step(fn func()) {
	h.c.now = h.now
	fn()
	h.propose()
}

func (h *harness) propose() {
	for {
		ws := h.c.takeWrites()
		if len(ws) == 0 {
			return
		}
		for _, w := range ws {
			if w.gen != h.c.gen {
				h.c.written(w, 0, errStale)
				continue
			}
			h.queue = append(h.queue, w)
		}
		if !h.manual {
			h.commit(len(h.queue))
		}
	}
}

// commit commits the first n queued writes.
func (h *harness) commit(n int) {
	h.t.Helper()
	ws := h.queue[:n]
	h.queue = h.queue[n:]
	for _, w := range ws {
		if w.gen != h.c.gen { // the writer drops writes of an abandoned generation
			h.c.written(w, 0, errStale)
			continue
		}
		h.index++
		if err := h.sm.Apply(h.index, h.term, w.data); err != nil {
			h.t.Fatal(err)
		}
		h.c.now = h.now
		h.c.written(w, h.index, nil)
	}
	if h.sm.Refused() != 0 {
		h.t.Fatal("the state machine refused an entry the controller wrote")
	}
	h.propose()
}

// failHead fails the first queued write.
func (h *harness) failHead(err error) {
	w := h.queue[0]
	h.queue = h.queue[1:]
	h.step(func() { h.c.written(w, 0, err) })
}

// advance moves time and ticks.
func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.step(h.c.tick)
}

// send hands a request to the core; the returned pointer holds the answer once there
// is one.
func (h *harness) send(req kmsg.Request) *kmsg.Response {
	p := new(kmsg.Response)
	h.step(func() {
		h.c.handle(&op{req: req, respond: func(r kmsg.Response) {
			if *p != nil {
				h.t.Fatalf("request %T answered twice", req)
			}
			*p = r
		}})
	})
	return p
}

// do sends a request and returns its answer, which must come at once.
func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	p := h.send(req)
	if *p == nil {
		h.t.Fatalf("%T not answered", req)
	}
	return *p
}

func (h *harness) image() *metadata.Image { return h.sm.Image() }

// Requests.

func registration(id int32, inc uuid.UUID, rack string) *kmsg.BrokerRegistrationRequest {
	r := kmsg.NewPtrBrokerRegistrationRequest()
	r.Version, r.BrokerID, r.ClusterID, r.IncarnationID = 4, id, testClusterID, inc
	r.Listeners = []kmsg.BrokerRegistrationRequestListener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9090 + id)}}
	r.Features = []kmsg.BrokerRegistrationRequestFeature{{Name: ELRFeature, MinSupportedVersion: 0, MaxSupportedVersion: 1}}
	if rack != "" {
		r.Rack = &rack
	}
	return r
}

func heartbeat(id int32, epoch, offset int64) *kmsg.BrokerHeartbeatRequest {
	r := kmsg.NewPtrBrokerHeartbeatRequest()
	r.Version, r.BrokerID, r.BrokerEpoch, r.CurrentMetadataOffset = 2, id, epoch, offset
	return r
}

// register registers broker id and returns its epoch.
func (h *harness) register(id int32, rack string) int64 {
	h.t.Helper()
	resp := h.do(registration(id, uuid.New(), rack)).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("register %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.BrokerEpoch
}

// beat sends a heartbeat from broker id at the image's offset.
func (h *harness) beat(id int32, epoch int64, mod ...func(*kmsg.BrokerHeartbeatRequest)) *kmsg.BrokerHeartbeatResponse {
	h.t.Helper()
	r := heartbeat(id, epoch, int64(h.image().Offset().Index))
	for _, m := range mod {
		m(r)
	}
	return h.do(r).(*kmsg.BrokerHeartbeatResponse)
}

// unfencedBrokers registers brokers 1..n (racks cycled from racks, if any) and unfences
// them; it returns their epochs.
func (h *harness) unfencedBrokers(n int, racks ...string) map[int32]int64 {
	h.t.Helper()
	epochs := map[int32]int64{}
	for id := int32(1); id <= int32(n); id++ {
		rack := ""
		if len(racks) > 0 {
			rack = racks[int(id-1)%len(racks)]
		}
		epochs[id] = h.register(id, rack)
	}
	for id, e := range epochs {
		if resp := h.beat(id, e); resp.ErrorCode != 0 || resp.IsFenced {
			h.t.Fatalf("broker %d not unfenced: %+v", id, resp)
		}
	}
	return epochs
}

func createTopic(name string, partitions int32, rf int16, configs ...string) *kmsg.CreateTopicsRequest {
	r := kmsg.NewPtrCreateTopicsRequest()
	r.Version = 7
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], new(configs[i+1])
		t.Configs = append(t.Configs, c)
	}
	r.Topics = append(r.Topics, t)
	return r
}

// createOK creates a topic and fails the test unless it is created.
func (h *harness) createOK(name string, partitions int32, rf int16) *metadata.Topic {
	h.t.Helper()
	resp := h.do(createTopic(name, partitions, rf)).(*kmsg.CreateTopicsResponse)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		h.t.Fatalf("create %s: %v %v", name, kerr.ErrorForCode(c), str(resp.Topics[0].ErrorMessage))
	}
	return h.image().Topic(name)
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// codeName names a Kafka error code for messages.
func codeName(c int16) string {
	if c == 0 {
		return "NONE"
	}
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(c), &ke) {
		return ke.Message
	}
	return fmt.Sprint(c)
}
