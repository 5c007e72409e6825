package server

// Broker-wide budgets of the request intake: the bytes of requests in flight
// (queued.max.request.bytes) and the requests read but not yet being served
// (queued.max.requests). A connection that cannot get what it needs stops reading
// (back pressure through TCP), as Kafka mutes a channel when its memory pool is empty
// or stops its network threads when the request queue is full.
//
// A frame's bytes are charged as they arrive, not when its size is announced: a
// reservation grows one step at a time, each step taken before the bytes it covers
// are read, so a client that announces a large frame and stalls holds what it sent
// plus one step (frameStep), not the frame, and cannot starve the others.
//
// Growing reservations could deadlock: frames part way through, each holding some
// bytes and waiting for more, could hold the whole budget between them with none able
// to finish. A step is granted only if afterwards every frame part way through can
// still finish one after another (the banker's algorithm for one resource): taken by
// smallest remaining need, each must fit in what the partial frames do not hold plus
// what the frames before it give back when they finish. Everything else held (whole
// amounts from acquire, finished frames) is given back within bounded time: a frame
// is served and released, a stalled one is cut at its frame deadline. Because of
// this rule a frame larger than the whole budget could never finish; the server
// keeps the budget at least socket.request.max.bytes.

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

type budget struct {
	mu    sync.Mutex
	max   int64
	avail int64
	// partial are the reservations holding some of their bytes and needing more;
	// partialHeld is what they hold. At most one per connection.
	partial     []*reservation
	partialHeld int64
	scratch     []*reservation // safeAfter's sorting space
	freed       chan struct{}  // closed and replaced whenever a waiter might now proceed
}

func newBudget(max int64) *budget {
	return &budget{max: max, avail: max, freed: make(chan struct{})}
}

// acquire takes n bytes at once (at most the whole budget: a larger amount waits
// until it has the budget to itself). Give them back with release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.max)
	for {
		b.mu.Lock()
		if b.avail >= n {
			b.avail -= n
			b.mu.Unlock()
			return n, nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	b.wake()
	b.mu.Unlock()
}

// inUse returns what is taken and the budget (metrics).
func (b *budget) inUse() (used, max int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max - b.avail, b.max
}

// wake lets every waiter look again. Called with mu held.
func (b *budget) wake() {
	close(b.freed)
	b.freed = make(chan struct{})
}

// reservation is one frame's claim on the budget, taken in steps with grow. Once it
// holds the whole frame it is an ordinary holding: release(held) gives it back.
type reservation struct {
	b    *budget
	held int64 // taken so far
	need int64 // still to take
	idx  int   // index in b.partial, or -1
}

// reserve starts a claim on n bytes; nothing is taken yet. n must not exceed the
// budget (see the package comment above).
func (b *budget) reserve(n int64) *reservation {
	return &reservation{b: b, need: n, idx: -1}
}

// grow takes k more bytes (at most what is still needed), waiting until they are free
// and taking them leaves every frame part way through able to finish.
func (r *reservation) grow(ctx context.Context, k int64) error {
	b := r.b
	k = min(k, r.need)
	for {
		b.mu.Lock()
		if b.avail >= k && b.safeAfter(r, k) {
			b.avail -= k
			was := r.idx >= 0
			if was {
				b.removePartial(r)
			}
			r.held += k
			r.need -= k
			if r.need > 0 {
				r.idx = len(b.partial)
				b.partial = append(b.partial, r)
				b.partialHeld += r.held
			} else if was {
				b.wake() // its holding no longer counts against the frames part way through
			}
			b.mu.Unlock()
			return nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cancel gives back what r holds (a frame abandoned part way through).
func (r *reservation) cancel() {
	b := r.b
	b.mu.Lock()
	if r.idx >= 0 {
		b.removePartial(r)
	}
	b.avail += r.held
	r.held, r.need = 0, 0
	b.wake()
	b.mu.Unlock()
}

func (b *budget) removePartial(r *reservation) {
	last := len(b.partial) - 1
	b.partial[r.idx] = b.partial[last]
	b.partial[r.idx].idx = r.idx
	b.partial[last] = nil
	b.partial = b.partial[:last]
	b.partialHeld -= r.held
	r.idx = -1
}

// safeAfter reports whether, once r has taken k more, the frames part way through
// can all finish in some order. Called with mu held.
func (b *budget) safeAfter(r *reservation, k int64) bool {
	stays := r.need > k // r is still part way through afterwards
	held := b.partialHeld
	if r.idx >= 0 {
		held -= r.held
	}
	if stays {
		held += r.held + k
	}
	free := b.max - held // what the partial frames do not hold: the rest comes back in time
	needOf := func(p *reservation) int64 {
		if p == r {
			return p.need - k
		}
		return p.need
	}
	heldOf := func(p *reservation) int64 {
		if p == r {
			return p.held + k
		}
		return p.held
	}
	s := b.scratch[:0]
	for _, p := range b.partial {
		if p != r {
			s = append(s, p)
		}
	}
	if stays {
		s = append(s, r)
	}
	defer func() { clear(s); b.scratch = s[:0] }()
	// Fast path: every one fits in what is free as it stands.
	if !slices.ContainsFunc(s, func(p *reservation) bool { return needOf(p) > free }) {
		return true
	}
	slices.SortFunc(s, func(x, y *reservation) int { return cmp.Compare(needOf(x), needOf(y)) })
	for _, p := range s {
		if needOf(p) > free {
			return false
		}
		free += heldOf(p)
	}
	return true
}
