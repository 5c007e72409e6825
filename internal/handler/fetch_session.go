package handler

// Fetch sessions (KIP-227). A client opens a session with a full fetch (epoch 0) and
// then sends only what changed (epoch 1, 2, ...); the broker answers an incremental
// fetch with only the partitions that have records or whose watermarks or error
// changed. A client whose session is gone gets FETCH_SESSION_ID_NOT_FOUND and starts
// over.
//
// The cache follows Kafka's FetchSessionCache. It holds at most
// max.incremental.fetch.session.cache.slots sessions (1000). A full fetch that finds it
// full creates a session only by evicting one: the least recently used, if it has gone
// unused for two minutes (stale); otherwise the one with the fewest partitions among
// those that were over two minutes old when last used, if the new session has more
// partitions. Failing both, the fetch is answered with no session (ID 0) and the client
// fetches without one, so a flood of new sessions cannot push out the ones in use.
// The least recently used session is the head of a list and the smallest evictable one
// the top of a heap: no request scans the sessions. (Kafka also favours follower
// sessions and shards the cache by session ID; Vltava has no followers yet, and each
// operation here is short.)
//
// Locks: the cache's lock guards the cache's bookkeeping, a session's own lock its
// epoch and partitions. Neither is held across a wait: a fetch takes its session's lock
// to check and move the epoch on and to copy what it needs, releases it for the long
// poll and the reads, and takes it again to record what it answered. The cache's lock
// is never taken while a session's lock is held.

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// sessionEvictAfter is how long a session must go unused to be stale, and how old one
// must be to be evicted for a larger one (Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS).
const sessionEvictAfter = 2 * time.Minute

type tp struct {
	topic     string
	partition int32
}

// sessionPartition is what a session knows of one partition: the client's last fetch
// parameters and what the broker last answered (-1 before the first answer, so it is
// always sent once).
type sessionPartition struct {
	fetchOffset    int64
	maxBytes       int32
	leaderEpoch    int32
	highWatermark  int64
	lastStable     int64
	logStartOffset int64
}

type fetchSession struct {
	id      int32
	created time.Time

	// Cache bookkeeping, guarded by fetchSessions.mu.
	cached     bool
	used       time.Time
	prev, next *fetchSession // in the least-recently-used list
	heapIdx    int           // in the evictable heap; -1 if not in it
	size       int           // partitions when last used

	mu    sync.Mutex // guards what follows
	epoch int32      // the epoch the next request must carry
	order []tp       // response order; partitions that returned records move to the end
	parts map[tp]*sessionPartition
}

type fetchSessions struct {
	mu             sync.Mutex
	max            int
	now            func() time.Time
	byID           map[int32]*fetchSession
	oldest, newest *fetchSession // the least-recently-used list
	evictable      sessionHeap
}

func newFetchSessions(max int, now func() time.Time) *fetchSessions {
	return &fetchSessions{max: max, now: now, byID: map[int32]*fetchSession{}}
}

// create adds a session holding parts (in order), if there is room or room can be
// made; nil otherwise.
func (fs *fetchSessions) create(order []tp, parts map[tp]*sessionPartition) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := fs.now()
	if fs.max <= 0 || len(fs.byID) >= fs.max && !fs.evictFor(len(parts), now) {
		return nil
	}
	var id int32
	for id == 0 || fs.byID[id] != nil {
		id = rand.Int32()
	}
	s := &fetchSession{id: id, created: now, heapIdx: -1, epoch: 1, order: order, parts: parts}
	fs.byID[id] = s
	s.cached = true
	fs.touchLocked(s, len(parts), now)
	return s
}

// evictFor evicts a session to make room for a new one of size partitions, and reports
// whether it did.
func (fs *fetchSessions) evictFor(size int, now time.Time) bool {
	if s := fs.oldest; s != nil && now.Sub(s.used) > sessionEvictAfter {
		fs.removeLocked(s)
		return true
	}
	// Kafka's order is (size, id): a new session (id 0 in the comparison) may evict
	// only a smaller one.
	if len(fs.evictable) > 0 && size > fs.evictable[0].size {
		fs.removeLocked(fs.evictable[0])
		return true
	}
	return false
}

func (fs *fetchSessions) get(id int32) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.byID[id]
}

func (fs *fetchSessions) remove(id int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s := fs.byID[id]; s != nil {
		fs.removeLocked(s)
	}
}

// touch records a use of s, which now has size partitions.
func (fs *fetchSessions) touch(s *fetchSession, size int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s.cached { // not evicted meanwhile
		fs.touchLocked(s, size, fs.now())
	}
}

func (fs *fetchSessions) touchLocked(s *fetchSession, size int, now time.Time) {
	fs.unlink(s)
	s.used = now
	s.prev, s.next = fs.newest, nil
	if fs.newest != nil {
		fs.newest.next = s
	} else {
		fs.oldest = s
	}
	fs.newest = s
	s.size = size
	switch {
	case s.heapIdx >= 0:
		heap.Fix(&fs.evictable, s.heapIdx)
	case now.Sub(s.created) > sessionEvictAfter:
		heap.Push(&fs.evictable, s)
	}
}

func (fs *fetchSessions) removeLocked(s *fetchSession) {
	fs.unlink(s)
	if s.heapIdx >= 0 {
		heap.Remove(&fs.evictable, s.heapIdx)
	}
	delete(fs.byID, s.id)
	s.cached = false
}

// unlink takes s out of the least-recently-used list (if it is in it).
func (fs *fetchSessions) unlink(s *fetchSession) {
	if s.prev != nil {
		s.prev.next = s.next
	} else if fs.oldest == s {
		fs.oldest = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else if fs.newest == s {
		fs.newest = s.prev
	}
	s.prev, s.next = nil, nil
}

// sessionHeap orders evictable sessions by (size, id), smallest first.
type sessionHeap []*fetchSession

func (h sessionHeap) Len() int { return len(h) }
func (h sessionHeap) Less(i, j int) bool {
	if h[i].size != h[j].size {
		return h[i].size < h[j].size
	}
	return h[i].id < h[j].id
}
func (h sessionHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *sessionHeap) Push(x any) {
	s := x.(*fetchSession)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}
func (h *sessionHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.heapIdx = -1
	*h = old[:len(old)-1]
	return s
}

// nextEpoch is the epoch after e (KIP-227: it wraps to 1).
func nextEpoch(e int32) int32 {
	if e == 2147483647 {
		return 1
	}
	return e + 1
}

// add puts k in the session (at the end of the order if new); mu is held.
func (s *fetchSession) add(k tp, sp *sessionPartition) {
	if _, ok := s.parts[k]; !ok {
		s.order = append(s.order, k)
	}
	s.parts[k] = sp
}

// forget takes keys out of the session, in one pass over its order; mu is held.
func (s *fetchSession) forget(keys []tp) {
	n := len(s.parts)
	for _, k := range keys {
		delete(s.parts, k)
	}
	if len(s.parts) == n {
		return
	}
	s.order = slices.DeleteFunc(s.order, func(k tp) bool { return s.parts[k] == nil })
}
