package handler

// Fetch sessions (KIP-227). A client opens a session with a full fetch (epoch 0) and
// then sends only what changed (epoch 1, 2, ...); the broker answers an incremental
// fetch with only the partitions that have records or whose watermarks or error
// changed. Sessions live in a bounded cache (max.incremental.fetch.session.cache.slots,
// 1000 in Kafka); when it is full the least recently used session is evicted, and a
// client whose session is gone gets FETCH_SESSION_ID_NOT_FOUND and starts over.

import (
	"math/rand/v2"
	"sync"
	"time"
)

type tp struct {
	topic     string
	partition int32
}

type sessionPartition struct {
	fetchOffset    int64
	maxBytes       int32
	leaderEpoch    int32
	highWatermark  int64
	lastStable     int64
	logStartOffset int64
	reported       bool // has been sent at least once
}

type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next request must carry
	used  time.Time
	order []tp // request order, kept stable for responses
	parts map[tp]*sessionPartition
	mu    sync.Mutex // one request of a session at a time
}

type fetchSessions struct {
	mu   sync.Mutex
	max  int
	now  func() time.Time
	byID map[int32]*fetchSession
}

func newFetchSessions(max int, now func() time.Time) *fetchSessions {
	return &fetchSessions{max: max, now: now, byID: map[int32]*fetchSession{}}
}

// create makes a session, evicting the least recently used one if the cache is full.
func (fs *fetchSessions) create() *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.max <= 0 {
		return nil
	}
	if len(fs.byID) >= fs.max {
		var oldest *fetchSession
		for _, s := range fs.byID {
			if oldest == nil || s.used.Before(oldest.used) {
				oldest = s
			}
		}
		delete(fs.byID, oldest.id)
	}
	var id int32
	for id == 0 || fs.byID[id] != nil {
		id = rand.Int32()
	}
	s := &fetchSession{id: id, epoch: 1, used: fs.now(), parts: map[tp]*sessionPartition{}}
	fs.byID[id] = s
	return s
}

func (fs *fetchSessions) get(id int32) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s := fs.byID[id]
	if s != nil {
		s.used = fs.now()
	}
	return s
}

func (fs *fetchSessions) remove(id int32) {
	fs.mu.Lock()
	delete(fs.byID, id)
	fs.mu.Unlock()
}

func (s *fetchSession) add(k tp, sp *sessionPartition) {
	if _, ok := s.parts[k]; !ok {
		s.order = append(s.order, k)
	}
	s.parts[k] = sp
}

func (s *fetchSession) forget(k tp) {
	if _, ok := s.parts[k]; !ok {
		return
	}
	delete(s.parts, k)
	for i, o := range s.order {
		if o == k {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}
