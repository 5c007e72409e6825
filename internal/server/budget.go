package server

// The request memory budget (queued.max.request.bytes): every frame's bytes are
// taken from one broker-wide budget before the frame is read and given back once
// it has been handled, so the memory held by requests in flight, including those of
// clients that stall half way through a frame, is bounded whatever the number of
// connections. A connection that cannot get its frame's bytes stops reading (back
// pressure through TCP), as Kafka mutes a channel when its memory pool is empty.

import (
	"context"
	"sync"
)

type budget struct {
	mu    sync.Mutex
	max   int64
	avail int64
	freed chan struct{} // closed and replaced on every release that someone waits for
}

func newBudget(max int64) *budget {
	return &budget{max: max, avail: max, freed: make(chan struct{})}
}

// acquire takes n bytes (at most the whole budget: a frame larger than the budget
// waits until it has the budget to itself).
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
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
