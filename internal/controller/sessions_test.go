package controller

import (
	"math"
	"testing"
	"time"
)

// Kafka's BrokerHeartbeatManager.calculateNextBrokerState, case by case.
func TestNextBrokerState(t *testing.T) {
	for _, c := range []struct {
		name string
		in   heartbeatInput
		want brokerState
	}{
		{"fenced, behind its registration: stays fenced",
			heartbeatInput{current: stateFenced, metadataOffset: 9, registrationOffset: 10}, stateFenced},
		{"fenced, caught up: unfenced",
			heartbeatInput{current: stateFenced, metadataOffset: 10, registrationOffset: 10}, stateUnfenced},
		{"fenced, caught up but wants to stay fenced",
			heartbeatInput{current: stateFenced, metadataOffset: 10, registrationOffset: 10, wantFence: true}, stateFenced},
		{"fenced, wants to shut down: now",
			heartbeatInput{current: stateFenced, wantShutDown: true}, stateShutdownNow},
		{"unfenced: stays",
			heartbeatInput{current: stateUnfenced, metadataOffset: 20, registrationOffset: 10}, stateUnfenced},
		{"unfenced, wants fencing",
			heartbeatInput{current: stateUnfenced, wantFence: true}, stateFenced},
		{"unfenced, wants fencing and shutdown",
			heartbeatInput{current: stateUnfenced, wantFence: true, wantShutDown: true}, stateShutdownNow},
		{"unfenced, wants shutdown, leads partitions: controlled shutdown",
			heartbeatInput{current: stateUnfenced, wantShutDown: true, leads: true}, stateControlledShutdown},
		{"unfenced, wants shutdown, leads nothing: now",
			heartbeatInput{current: stateUnfenced, wantShutDown: true}, stateShutdownNow},
		{"controlled shutdown, still leads",
			heartbeatInput{current: stateControlledShutdown, leads: true, shutdownOffset: 5, lowestActiveOffset: 9}, stateControlledShutdown},
		{"controlled shutdown, its entry not committed yet",
			heartbeatInput{current: stateControlledShutdown, shutdownOffset: 0, lowestActiveOffset: 9}, stateControlledShutdown},
		{"controlled shutdown, an active broker has not seen it yet",
			heartbeatInput{current: stateControlledShutdown, shutdownOffset: 5, lowestActiveOffset: 4}, stateControlledShutdown},
		{"controlled shutdown, every active broker has seen it",
			heartbeatInput{current: stateControlledShutdown, shutdownOffset: 5, lowestActiveOffset: 5}, stateShutdownNow},
		{"controlled shutdown, no active broker left",
			heartbeatInput{current: stateControlledShutdown, shutdownOffset: 5, lowestActiveOffset: math.MaxInt64}, stateShutdownNow},
	} {
		if got := nextBrokerState(c.in); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Sessions expire after the timeout, not at it; fenced brokers have none to expire.
func TestSessionsExpire(t *testing.T) {
	ti := newTestImage(t)
	ti.broker(1, "", "active")
	ti.broker(2, "", "active")
	ti.broker(3, "", "fenced")
	t0 := time.Unix(1000, 0)
	s := newSessions(9 * time.Second)
	s.activate(ti.im, t0, ti.im.Offset().Index+1)
	s.get(2, t0).lastContact = t0.Add(3 * time.Second)
	if got := s.stale(ti.im, t0.Add(9*time.Second)); len(got) != 0 {
		t.Fatalf("stale at exactly the timeout: %v", got)
	}
	if got := s.stale(ti.im, t0.Add(9*time.Second+time.Millisecond)); len(got) != 1 || got[0] != 1 {
		t.Fatalf("stale just after broker 1's timeout: %v, want [1]", got)
	}
	if got := s.stale(ti.im, t0.Add(time.Hour)); len(got) != 2 {
		t.Fatalf("stale an hour later: %v, want [1 2] (3 is fenced)", got)
	}
	// Brokers registered before this controller became active must reach its first
	// entry to count as caught up.
	if got, want := s.registrationOffset(ti.im.Broker(1)), int64(ti.im.Offset().Index+1); got != want {
		t.Fatalf("registration offset of a broker registered before activation: %d, want %d", got, want)
	}
}
