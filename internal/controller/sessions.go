package controller

// Broker sessions: the active controller's soft state about brokers, which is not in the
// metadata log (Kafka's BrokerHeartbeatManager): when each broker last heartbeated, the
// metadata offset it reported, and where its controlled shutdown stands. A standby
// controller has none; on becoming active it starts every registered broker's session
// afresh (as if each had just heartbeated), so a failover delays fencing by up to one
// session timeout rather than fencing every broker at once. One exception, where Vltava
// differs from Kafka: the broker that shares a process with the previous quorum leader
// gets its session from the moment this node last heard from that leader. When the
// active controller's node dies, its broker dies with it; counting its session from the
// takeover would add the election's 1-3 s to the failover of every partition it led. A
// live broker there loses nothing: it heartbeats the new controller within its interval,
// and a session that expires anyway only fences it until its next heartbeat.
//
// The heartbeat's state machine (nextBrokerState) is Kafka's: a fenced broker is
// unfenced once the metadata offset it reports has reached its registration's; an
// unfenced one that wants to shut down enters controlled shutdown while it leads
// partitions, and is told to shut down once it leads none and every active broker has
// seen the offset at which its controlled shutdown was recorded.
//
// Offsets here are metadata offsets as the image counts them: the raft index of the last
// entry applied (metadata.Image.Offset().Index), which is also what a broker reports in
// BrokerHeartbeat's CurrentMetadataOffset.

import (
	"math"
	"time"

	"github.com/vltava/vltava/internal/metadata"
)

// session is one broker's soft state.
type session struct {
	lastContact time.Time
	// metadataOffset is the offset the broker last reported (-1: none since this
	// controller became active).
	metadataOffset int64
	// shutdownOffset is the offset of the entry that recorded its controlled shutdown
	// (-1: not in controlled shutdown; 0 while that entry is not committed yet).
	shutdownOffset int64
	// heard: the incarnation registered or heartbeated to this controller. A session
	// started at activation is assumed, not heard: it delays fencing, but does not make
	// a new incarnation a duplicate (the node restarted with its controller, as a single
	// node does after kill -9, must not wait out the session timeout).
	heard bool
}

// sessions holds the soft state of every registered broker while this controller is
// active.
type sessions struct {
	timeout time.Duration
	m       map[int32]*session
	// registered holds the exact offset of the registrations this controller wrote;
	// other brokers registered before activation, at or below activated.
	registered map[int32]uint64
	activated  uint64
}

func newSessions(timeout time.Duration) *sessions {
	return &sessions{timeout: timeout, m: map[int32]*session{}, registered: map[int32]uint64{}}
}

// activate starts a session for every registered broker at now; activated is the
// offset of this controller's first entry (every earlier registration is below it).
func (s *sessions) activate(im *metadata.Image, now time.Time, activated uint64) {
	clear(s.m)
	clear(s.registered)
	s.activated = activated
	for b := range im.Brokers() {
		s.m[b.ID] = &session{lastContact: now, metadataOffset: -1, shutdownOffset: -1}
	}
}

// heardBefore starts the session of a broker not heard from since the activation at
// at, when that is earlier than its start.
func (s *sessions) heardBefore(id int32, at time.Time) {
	if ss := s.m[id]; ss != nil && !ss.heard && at.Before(ss.lastContact) {
		ss.lastContact = at
	}
}

// get returns id's session, starting one at now if there is none.
func (s *sessions) get(id int32, now time.Time) *session {
	ss := s.m[id]
	if ss == nil {
		ss = &session{lastContact: now, metadataOffset: -1, shutdownOffset: -1}
		s.m[id] = ss
	}
	return ss
}

// register starts a new incarnation's session.
func (s *sessions) register(id int32, now time.Time) {
	s.m[id] = &session{lastContact: now, metadataOffset: -1, shutdownOffset: -1, heard: true}
	delete(s.registered, id)
}

// unregister ends a broker's session with its registration.
func (s *sessions) unregister(id int32) {
	delete(s.m, id)
	delete(s.registered, id)
}

// registrationOffset returns the offset a broker must reach to be caught up: its
// registration's, as exactly as this controller knows it.
func (s *sessions) registrationOffset(b *metadata.Broker) int64 {
	if off, ok := s.registered[b.ID]; ok {
		return int64(off)
	}
	return int64(max(s.activated, uint64(b.Epoch)))
}

// validSession reports whether b, registered, has a live session: it is unfenced and
// was heard from within the session timeout.
func (s *sessions) validSession(b *metadata.Broker, now time.Time) bool {
	ss := s.m[b.ID]
	return ss != nil && ss.heard && !b.Fenced && !now.After(ss.lastContact.Add(s.timeout))
}

// stale returns the unfenced brokers of im whose session expired at now, by ID.
func (s *sessions) stale(im *metadata.Image, now time.Time) []int32 {
	var out []int32
	for b := range im.Brokers() {
		if b.Fenced {
			continue
		}
		if ss := s.get(b.ID, now); now.After(ss.lastContact.Add(s.timeout)) {
			out = append(out, b.ID)
		}
	}
	return out
}

// lowestActiveOffset is the lowest metadata offset reported by the brokers that are
// active (unfenced, not shutting down) in im: every one of them has applied the entries
// up to it. MaxInt64 when there are none.
func (s *sessions) lowestActiveOffset(im *metadata.Image, now time.Time) int64 {
	low := int64(math.MaxInt64)
	for b := range im.Brokers() {
		if !isActive(b) {
			continue
		}
		if ss := s.get(b.ID, now); !ss.shuttingDown() {
			low = min(low, ss.metadataOffset)
		}
	}
	return low
}

func (ss *session) shuttingDown() bool { return ss.shutdownOffset >= 0 }

// brokerState is a broker's state for the heartbeat's state machine (Kafka's
// BrokerControlState).
type brokerState int

const (
	stateFenced brokerState = iota
	stateUnfenced
	stateControlledShutdown
	stateShutdownNow
)

func (s brokerState) String() string {
	return [...]string{"fenced", "unfenced", "controlled shutdown", "shutdown now"}[s]
}

func (s brokerState) fenced() bool { return s == stateFenced || s == stateShutdownNow }

// heartbeatInput is what the state machine decides on.
type heartbeatInput struct {
	current brokerState
	// From the request.
	metadataOffset          int64
	wantFence, wantShutDown bool
	// registrationOffset is the offset of the broker's registration.
	registrationOffset int64
	// leads: the broker leads at least one partition.
	leads bool
	// shutdownOffset is where its controlled shutdown was recorded (see session);
	// lowestActiveOffset is sessions.lowestActiveOffset.
	shutdownOffset, lowestActiveOffset int64
}

// nextBrokerState is Kafka's BrokerHeartbeatManager.calculateNextBrokerState.
func nextBrokerState(in heartbeatInput) brokerState {
	switch in.current {
	case stateFenced:
		switch {
		case in.wantShutDown:
			return stateShutdownNow
		case !in.wantFence && in.metadataOffset >= in.registrationOffset:
			return stateUnfenced
		}
		return stateFenced
	case stateUnfenced:
		switch {
		case in.wantFence && in.wantShutDown:
			return stateShutdownNow
		case in.wantFence:
			return stateFenced
		case in.wantShutDown && in.leads:
			return stateControlledShutdown
		case in.wantShutDown:
			return stateShutdownNow
		}
		return stateUnfenced
	case stateControlledShutdown:
		// Done once it leads nothing and every active broker has seen that (the
		// entry that moved its leaderships is committed at shutdownOffset).
		if !in.leads && in.shutdownOffset > 0 && in.shutdownOffset <= in.lowestActiveOffset {
			return stateShutdownNow
		}
		return stateControlledShutdown
	}
	return stateShutdownNow
}

// currentState is a registered broker's state: from the image, and from the session for
// a controlled shutdown this controller runs.
func currentState(b *metadata.Broker, ss *session) brokerState {
	switch {
	case ss.shuttingDown() && !b.Fenced:
		return stateControlledShutdown
	case b.Fenced:
		return stateFenced
	}
	return stateUnfenced
}
