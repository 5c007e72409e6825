package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

// Activation writes a NoOp, then the cluster ID and metadata.version.
func TestActivationBootstrapsTheClusterID(t *testing.T) {
	h := newHarness(t)
	im := h.image()
	if im.ClusterID() != testClusterID || im.FeatureLevel(MetadataVersionFeature) != DefaultMetadataVersion {
		t.Fatalf("cluster ID %q, metadata.version %d", im.ClusterID(), im.FeatureLevel(MetadataVersionFeature))
	}
	if im.Offset().Index != 2 {
		t.Fatalf("image at %d, want 2 (the NoOp, then the cluster ID)", im.Offset().Index)
	}
	// A new term writes only its NoOp.
	h.loseLeadership()
	h.lead(h.term + 1)
	if got := h.image().Offset().Index; got != 3 || !h.c.isActive() {
		t.Fatalf("after a new term: image at %d (want 3), active %v", got, h.c.isActive())
	}
}

// Registration -> fenced -> heartbeat caught up -> unfenced, with the epoch the offset of
// the registration's entry.
func TestRegistrationAndUnfencing(t *testing.T) {
	h := newHarness(t)
	inc := uuid.New()
	resp := h.do(registration(1, inc, "r1")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("registration: %s", codeName(resp.ErrorCode))
	}
	b := h.image().Broker(1)
	if b == nil || !b.Fenced || b.Rack != "r1" || b.IncarnationID != inc {
		t.Fatalf("registered broker: %+v", b)
	}
	if resp.BrokerEpoch != b.Epoch || uint64(resp.BrokerEpoch) != h.image().Offset().Index {
		t.Fatalf("epoch %d, registration %d, entry at %d: want all equal", resp.BrokerEpoch, b.Epoch, h.image().Offset().Index)
	}
	epoch := resp.BrokerEpoch

	// Behind its registration: stays fenced, not caught up.
	hb := h.do(heartbeat(1, epoch, epoch-1)).(*kmsg.BrokerHeartbeatResponse)
	if hb.ErrorCode != 0 || !hb.IsFenced || hb.IsCaughtUp || hb.ShouldShutdown {
		t.Fatalf("heartbeat behind the registration: %+v", hb)
	}
	if !h.image().Broker(1).Fenced {
		t.Fatal("unfenced before catching up")
	}
	// Caught up: unfenced.
	hb = h.do(heartbeat(1, epoch, epoch)).(*kmsg.BrokerHeartbeatResponse)
	if hb.ErrorCode != 0 || hb.IsFenced || !hb.IsCaughtUp {
		t.Fatalf("heartbeat caught up: %+v", hb)
	}
	if h.image().Broker(1).Fenced {
		t.Fatal("still fenced in the image")
	}
	// The same incarnation registering again gets the same epoch and writes nothing.
	at := h.image().Offset()
	resp = h.do(registration(1, inc, "r1")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 || resp.BrokerEpoch != epoch || h.image().Offset() != at {
		t.Fatalf("re-registration of the same incarnation: %+v, image %v -> %v", resp, at, h.image().Offset())
	}
	// A new incarnation while the session lives is a duplicate.
	resp = h.do(registration(1, uuid.New(), "r1")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != kerr.DuplicateBrokerRegistration.Code {
		t.Fatalf("a second incarnation during the session: %s", codeName(resp.ErrorCode))
	}
	// Heartbeats with the wrong epoch or from unknown brokers are stale.
	for _, r := range []*kmsg.BrokerHeartbeatRequest{heartbeat(1, epoch+1, 100), heartbeat(7, 1, 100)} {
		if c := h.do(r).(*kmsg.BrokerHeartbeatResponse).ErrorCode; c != kerr.StaleBrokerEpoch.Code {
			t.Fatalf("heartbeat %d/%d: %s, want STALE_BROKER_EPOCH", r.BrokerID, r.BrokerEpoch, codeName(c))
		}
	}
}

// A restarted broker (new incarnation) is accepted once its old session expired, fenced,
// with a higher epoch; an old incarnation still unfenced has its leaderships moved in
// the same entry.
func TestNewIncarnationAfterSessionExpiry(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(2)
	h.createOK("t", 4, 2)
	// Broker 1 stops; broker 2 keeps heartbeating, but only ticks after broker 1's
	// registration could fence it: register before the tick that would.
	h.now = h.now.Add(10 * time.Second)
	h.c.now = h.now
	h.beat(2, epochs[2])
	resp := h.do(registration(1, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 || resp.BrokerEpoch <= epochs[1] {
		t.Fatalf("new incarnation after the session expired: %s epoch %d (old %d)", codeName(resp.ErrorCode), resp.BrokerEpoch, epochs[1])
	}
	im := h.image()
	if !im.Broker(1).Fenced {
		t.Fatal("the new incarnation is not fenced")
	}
	for _, p := range im.Topic("t").Partitions {
		if p.Leader == 1 || slices.Contains(p.ISR(), 1) {
			t.Fatalf("a partition still has the old incarnation: leader %d isr %v", p.Leader, p.ISR())
		}
	}
	// Caught up, it is unfenced and may rejoin leadership only where it is in the ISR.
	hb := h.beat(1, resp.BrokerEpoch)
	if hb.IsFenced {
		t.Fatalf("the new incarnation is not unfenced: %+v", hb)
	}
}

func TestRegistrationErrors(t *testing.T) {
	h := newHarness(t)
	h.register(1, "")
	dir := uuid.New()
	withDir := registration(2, uuid.New(), "")
	withDir.LogDirs = [][16]byte{dir}
	if c := h.do(withDir).(*kmsg.BrokerRegistrationResponse).ErrorCode; c != 0 {
		t.Fatalf("registration with a log dir: %s", codeName(c))
	}
	for _, c := range []struct {
		name string
		mod  func(r *kmsg.BrokerRegistrationRequest)
		want *kerr.Error
	}{
		{"another cluster", func(r *kmsg.BrokerRegistrationRequest) { r.ClusterID = "other" }, kerr.InconsistentClusterID},
		{"no host", func(r *kmsg.BrokerRegistrationRequest) { r.Listeners[0].Host = "" }, kerr.InvalidRegistration},
		{"port 0", func(r *kmsg.BrokerRegistrationRequest) { r.Listeners[0].Port = 0 }, kerr.InvalidRegistration},
		{"listener twice", func(r *kmsg.BrokerRegistrationRequest) { r.Listeners = append(r.Listeners, r.Listeners[0]) }, kerr.InvalidRegistration},
		{"unknown security protocol", func(r *kmsg.BrokerRegistrationRequest) { r.Listeners[0].SecurityProtocol = 9 }, kerr.InvalidRegistration},
		{"eligible.leader.replicas.version not named (level 1 is finalized)", func(r *kmsg.BrokerRegistrationRequest) { r.Features = nil }, kerr.UnsupportedVersion},
		{"metadata.version not supported", func(r *kmsg.BrokerRegistrationRequest) {
			r.Features = []kmsg.BrokerRegistrationRequestFeature{{Name: MetadataVersionFeature, MinSupportedVersion: 2, MaxSupportedVersion: 5}}
		}, kerr.UnsupportedVersion},
		{"a log dir of another broker", func(r *kmsg.BrokerRegistrationRequest) { r.LogDirs = [][16]byte{dir} }, kerr.InvalidRegistration},
		{"a log dir twice", func(r *kmsg.BrokerRegistrationRequest) { d := uuid.New(); r.LogDirs = [][16]byte{d, d} }, kerr.InvalidRegistration},
		{"a ZooKeeper broker", func(r *kmsg.BrokerRegistrationRequest) { r.IsMigratingZkBroker = true }, kerr.BrokerIDNotRegistered},
	} {
		r := registration(3, uuid.New(), "")
		c.mod(r)
		if got := h.do(r).(*kmsg.BrokerRegistrationResponse).ErrorCode; got != c.want.Code {
			t.Errorf("%s: %s, want %s", c.name, codeName(got), c.want.Message)
		}
	}
	if h.image().Broker(3) != nil {
		t.Fatal("a refused registration was recorded")
	}
	// A broker naming metadata.version with a range that holds level 1 registers.
	r := registration(3, uuid.New(), "")
	r.Features = append(r.Features, kmsg.BrokerRegistrationRequestFeature{Name: MetadataVersionFeature, MinSupportedVersion: 1, MaxSupportedVersion: 3})
	if c := h.do(r).(*kmsg.BrokerRegistrationResponse).ErrorCode; c != 0 {
		t.Fatalf("registration with a supported metadata.version range: %s", codeName(c))
	}
}

// A broker that stops heartbeating is fenced one tick after its session timeout, and the
// partitions it led get other leaders from their ISR.
func TestSessionTimeoutFencesAndMovesLeaders(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	topic := h.createOK("t", 6, 3)
	led := 0
	for _, p := range topic.Partitions {
		if p.Leader == 1 {
			led++
		}
	}
	if led != 2 {
		t.Fatalf("broker 1 leads %d of 6 partitions, want 2 (leaders balanced)", led)
	}
	// Brokers 2 and 3 heartbeat every 2 s; broker 1 is silent.
	for _, step := range []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, time.Second} {
		h.advance(step)
		h.beat(2, epochs[2])
		h.beat(3, epochs[3])
		if h.image().Broker(1).Fenced {
			t.Fatalf("broker 1 fenced at or before its session timeout")
		}
	}
	h.advance(time.Millisecond) // just past broker 1's session timeout
	im := h.image()
	if !im.Broker(1).Fenced || im.Broker(2).Fenced || im.Broker(3).Fenced {
		t.Fatalf("after broker 1's session timeout: fenced %v %v %v", im.Broker(1).Fenced, im.Broker(2).Fenced, im.Broker(3).Fenced)
	}
	for i, p := range im.Topic("t").Partitions {
		if p.Leader == 1 || slices.Contains(p.ISR(), 1) || p.Leader == metadata.NoLeader {
			t.Fatalf("partition %d: leader %d isr %v", i, p.Leader, p.ISR())
		}
		if old := topic.Partitions[i]; old.Leader == 1 && p.LeaderEpoch != old.LeaderEpoch+1 {
			t.Fatalf("partition %d: leader epoch %d after a new leader, was %d", i, p.LeaderEpoch, old.LeaderEpoch)
		}
	}
	// A fenced broker's heartbeat says so; once caught up it is unfenced, and it does not
	// rejoin the ISRs by itself (the leaders add it back when it catches up).
	hb := h.beat(1, epochs[1], func(r *kmsg.BrokerHeartbeatRequest) { r.WantFence = true })
	if !hb.IsFenced {
		t.Fatalf("heartbeat of a fenced broker wanting to stay fenced: %+v", hb)
	}
	if hb = h.beat(1, epochs[1]); hb.IsFenced {
		t.Fatalf("heartbeat of a caught-up fenced broker: %+v", hb)
	}
}

// A controller that takes over from a quorum leader it last heard from 2.5 s ago starts
// the session of the broker in that leader's process 2.5 s back (that node died with its
// broker, as a combined node killed with kill -9 does): fenced 6.5 s after the takeover,
// not 9 s. The other brokers' sessions start at the takeover.
func TestTakeoverBackdatesThePredecessorsSession(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	h.createOK("t", 6, 3)
	h.term++
	h.step(func() { h.c.leader(quorum.LeaderInfo{LeaderID: 3, Term: h.term}) })
	h.advance(5 * time.Second) // node 3 leads, then dies
	h.term++
	h.step(func() {
		h.c.leader(quorum.LeaderInfo{LeaderID: 1, Term: h.term, Predecessor: 3, PredecessorSilence: 2500 * time.Millisecond})
	})
	if !h.c.isActive() {
		t.Fatal("not active after the takeover")
	}
	for range 3 {
		h.advance(2 * time.Second)
		h.beat(1, epochs[1])
		if h.image().Broker(3).Fenced {
			t.Fatalf("broker 3 fenced %v after the takeover, before its backdated session ended", h.now)
		}
	}
	h.advance(501 * time.Millisecond) // 6.501 s after the takeover
	im := h.image()
	if !im.Broker(3).Fenced || im.Broker(1).Fenced || im.Broker(2).Fenced {
		t.Fatalf("6.5 s after the takeover: fenced %v %v %v, want only broker 3", im.Broker(1).Fenced, im.Broker(2).Fenced, im.Broker(3).Fenced)
	}
	for i, p := range im.Topic("t").Partitions {
		if p.Leader == 3 || p.Leader == metadata.NoLeader {
			t.Fatalf("partition %d: leader %d after broker 3 was fenced", i, p.Leader)
		}
	}
	// Broker 2, silent as well but not the predecessor, keeps its session from the takeover.
	h.advance(2 * time.Second)
	if h.image().Broker(2).Fenced {
		t.Fatal("broker 2 fenced 8.5 s after the takeover")
	}
	h.advance(time.Second)
	if !h.image().Broker(2).Fenced {
		t.Fatal("broker 2 not fenced 9.5 s after the takeover")
	}
}

// Controlled shutdown: the broker's leaderships move to other ISR members first; it is
// told to shut down once it leads nothing and every active broker has seen that.
func TestControlledShutdown(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(3)
	h.createOK("t", 6, 2)
	h.createOK("solo", 1, 1)
	soloLeader := h.image().Topic("solo").Partitions[0].Leader
	shutdown := func(r *kmsg.BrokerHeartbeatRequest) { r.WantShutdown = true }

	hb := h.beat(soloLeader, epochs[soloLeader], shutdown)
	if hb.ErrorCode != 0 || hb.IsFenced || hb.ShouldShutdown {
		t.Fatalf("first shutdown heartbeat: %+v, want in controlled shutdown", hb)
	}
	im := h.image()
	b := im.Broker(soloLeader)
	if !b.InControlledShutdown || b.Fenced {
		t.Fatalf("broker %d in the image: %+v", soloLeader, b)
	}
	for _, tp := range []string{"t", "solo"} {
		for i, p := range im.Topic(tp).Partitions {
			if p.Leader == soloLeader {
				t.Fatalf("%s-%d is still led by the broker shutting down", tp, i)
			}
			// With ELR (a new cluster's default) the replica leaves the ISR for the ELR
			// and is remembered as the last leader (KIP-966).
			if tp == "solo" && (p.Leader != metadata.NoLeader || len(p.ISR()) != 0 || !slices.Equal(p.ELR(), []int32{soloLeader}) ||
				!slices.Equal(p.LastKnownELR(), []int32{soloLeader})) {
				t.Fatalf("solo-0 with its only replica shutting down: leader %d isr %v elr %v last known %v, want -1, [], [%d], [%d]",
					p.Leader, p.ISR(), p.ELR(), p.LastKnownELR(), soloLeader, soloLeader)
			}
		}
	}
	// The other brokers have not reported the offset of that change yet.
	shutdownAt := int64(im.Offset().Index)
	hb = h.do(func() *kmsg.BrokerHeartbeatRequest {
		r := heartbeat(soloLeader, epochs[soloLeader], shutdownAt)
		shutdown(r)
		return r
	}()).(*kmsg.BrokerHeartbeatResponse)
	if hb.ShouldShutdown {
		t.Fatal("told to shut down before the other brokers saw its leaderships move")
	}
	for id, e := range epochs {
		if id != soloLeader {
			h.do(heartbeat(id, e, shutdownAt))
		}
	}
	hb = h.beat(soloLeader, epochs[soloLeader], shutdown)
	if !hb.ShouldShutdown || !hb.IsFenced {
		t.Fatalf("once the others caught up: %+v, want should shut down", hb)
	}
	if !h.image().Broker(soloLeader).Fenced {
		t.Fatal("a broker told to shut down is not fenced")
	}
	// A broker leading nothing shuts down at once.
	var other int32
	for id := range epochs {
		if id != soloLeader && !leadsAny(h.image(), id) {
			other = id
		}
	}
	if other != 0 {
		if hb := h.beat(other, epochs[other], shutdown); !hb.ShouldShutdown {
			t.Fatalf("a broker leading nothing: %+v, want shut down now", hb)
		}
	}
}

func TestAllocateProducerIDs(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(2)
	alloc := func(id int32, epoch int64) *kmsg.AllocateProducerIDsResponse {
		r := kmsg.NewPtrAllocateProducerIDsRequest()
		r.BrokerID, r.BrokerEpoch = id, epoch
		return h.do(r).(*kmsg.AllocateProducerIDsResponse)
	}
	a, b := alloc(1, epochs[1]), alloc(2, epochs[2])
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.ProducerIDStart != 0 || a.ProducerIDLen != 1000 || b.ProducerIDStart != 1000 {
		t.Fatalf("blocks %+v and %+v, want [0,1000) and [1000,2000)", a, b)
	}
	if c := alloc(1, epochs[1]+5).ErrorCode; c != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("stale epoch: %s", codeName(c))
	}
	if got := h.image().NextProducerID(); got != 2000 {
		t.Fatalf("next producer ID %d, want 2000", got)
	}
}

// Fencing a broker that is in more ISRs than one entry holds takes several entries
// (Kafka's non-atomic results): its leaderships and ISR places move first, the fencing
// comes last.
func TestFencingSplitsLargeChanges(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(2)
	h.createOK("a", 6000, 2)
	h.createOK("b", 6000, 2)
	before := h.image().Offset().Index
	h.advance(5 * time.Second)
	h.beat(2, epochs[2])
	h.advance(5 * time.Second) // broker 1's session expired at the tick
	im := h.image()
	if !im.Broker(1).Fenced {
		t.Fatal("broker 1 not fenced")
	}
	if entries := im.Offset().Index - before; entries < 2 { // 12,001 records
		t.Fatalf("the fencing took %d entries, want at least 2", entries)
	}
	for _, name := range []string{"a", "b"} {
		for i, p := range im.Topic(name).Partitions {
			if p.Leader != 2 || !slices.Equal(p.ISR(), []int32{2}) {
				t.Fatalf("%s-%d: leader %d isr %v", name, i, p.Leader, p.ISR())
			}
		}
	}
}

// Controlled shutdown in entries of a few kilobytes: after every entry, every partition
// is led by an active broker or by none, and the answer comes after the last.
func TestControlledShutdownSplitsLargeChanges(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxEntryBytes = 4 << 10 })
	epochs := h.unfencedBrokers(3)
	for i := range 10 {
		h.createOK(fmt.Sprintf("t%d", i), 30, 3)
	}
	h.manual = true
	hb := h.send(func() *kmsg.BrokerHeartbeatRequest {
		r := heartbeat(1, epochs[1], int64(h.image().Offset().Index))
		r.WantShutdown = true
		return r
	}())
	entries := len(h.queue)
	if entries < 2 {
		t.Fatalf("the controlled shutdown took %d entries, want several", entries)
	}
	for range entries {
		if *hb != nil {
			t.Fatal("answered before the last entry committed")
		}
		h.commit(1)
		im := h.image()
		for tp := range im.Topics() {
			for i, p := range tp.Partitions {
				if p.Leader != metadata.NoLeader && !isActive(im.Broker(p.Leader)) {
					t.Fatalf("%s-%d led by broker %d, which is not active", tp.Name, i, p.Leader)
				}
			}
		}
	}
	if *hb == nil || (*hb).(*kmsg.BrokerHeartbeatResponse).ShouldShutdown {
		t.Fatalf("answer after the last entry: %+v", *hb)
	}
	if !h.image().Broker(1).InControlledShutdown || leadsAny(h.image(), 1) {
		t.Fatal("broker 1 not in controlled shutdown, or still leading")
	}
}

// A broker restarted (kill -9) while its registration is unfenced, with the controller
// restarted too (the single node): the new controller starts the old incarnation's
// session afresh at activation, but has heard nothing from it, so the new incarnation
// is not a duplicate: it registers at once (leaderships moved, fenced) instead of
// waiting out broker.session.timeout.ms. Once the old incarnation has heartbeated to
// this controller, a second incarnation is a duplicate again.
func TestNewIncarnationRightAfterActivation(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(2)
	h.createOK("t", 2, 2)
	h.loseLeadership()
	h.lead(h.term + 1)
	resp := h.do(registration(1, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("a new incarnation of a broker not heard from since activation: %s", codeName(resp.ErrorCode))
	}
	if !h.image().Broker(1).Fenced {
		t.Fatal("the new incarnation is not fenced")
	}
	h.beat(2, h.image().Broker(2).Epoch)
	resp = h.do(registration(2, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != kerr.DuplicateBrokerRegistration.Code {
		t.Fatalf("a second incarnation of a broker heard from: %s, want DUPLICATE_BROKER_REGISTRATION", codeName(resp.ErrorCode))
	}
}
