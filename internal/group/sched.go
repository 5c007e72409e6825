package group

import (
	"sync"
	"time"
)

// scheduler runs callbacks after a delay and can be closed: close stops every
// pending timer and waits for callbacks already running. Timers are keyed so
// that re-arming one replaces it; a replaced or cancelled timer that fires
// anyway (it raced with the replacement) does nothing.
type scheduler struct {
	mu      sync.Mutex
	closed  bool
	timers  map[timerKey]*time.Timer
	running sync.WaitGroup
}

// timerKey names one timer: kind is what it is for, group and member whose.
type timerKey struct {
	kind   timerKind
	group  string
	member string
}

type timerKind uint8

const (
	timerHeartbeat       timerKind = iota // classic member session timeout
	timerJoin                             // classic join phase end (rebalance timeout or initial delay)
	timerPendingMember                    // classic member that got MEMBER_ID_REQUIRED and never came back
	timerSync                             // classic members that never sent SyncGroup
	timerConsumerSession                  // KIP-848 member session timeout
	timerConsumerRevoke                   // KIP-848 member that does not revoke within its rebalance timeout
	timerExpireOffsets                    // offset retention sweep
)

func newScheduler() *scheduler {
	return &scheduler{timers: make(map[timerKey]*time.Timer)}
}

// after arms (or re-arms) the timer k to call fn after d.
func (s *scheduler) after(k timerKey, d time.Duration, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if old := s.timers[k]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		if s.closed || s.timers[k] != t {
			s.mu.Unlock()
			return
		}
		delete(s.timers, k)
		s.running.Add(1)
		s.mu.Unlock()
		defer s.running.Done()
		fn()
	})
	s.timers[k] = t
}

func (s *scheduler) cancel(k timerKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timers[k]; t != nil {
		t.Stop()
		delete(s.timers, k)
	}
}

// cancelGroup stops every timer of a group.
func (s *scheduler) cancelGroup(group string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.timers {
		if k.group == group {
			t.Stop()
			delete(s.timers, k)
		}
	}
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	for k, t := range s.timers {
		t.Stop()
		delete(s.timers, k)
	}
	s.mu.Unlock()
	s.running.Wait()
}
