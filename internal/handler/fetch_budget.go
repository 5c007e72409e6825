package handler

// The fetch memory budget (vltava.fetch.max.bytes.in.flight, Vltava's own key): record
// bytes that fetch responses read into memory are taken from one broker-wide budget
// before they are read and given back when the response has been written (Release),
// so the memory fetches hold is bounded whatever the number of connections and however
// slowly their clients read. Records sent from their files with sendfile hold no memory
// and take nothing. A fetch that finds the budget spent waits for it, but never past
// its max_wait; then it answers with what fits (possibly no records: the client fetches
// again). The charge is the capacity of the buffers read into, which is what they hold.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/config"
)

type fetchBudget struct {
	mu    sync.Mutex
	max   int64
	avail int64         // may go below 0 by a batch larger than the whole budget (force)
	freed chan struct{} // closed and replaced on every release
}

func newFetchBudget(max int64) *fetchBudget {
	return &fetchBudget{max: max, avail: max, freed: make(chan struct{})}
}

// take takes n bytes (at most the whole budget), waiting for them until deadline or
// until ctx ends; then it takes what is free, at most n, possibly nothing. It reports
// whether it waited.
func (b *fetchBudget) take(ctx context.Context, n int64, deadline time.Time) (got int64, waited bool) {
	n = min(n, b.max)
	var timer *time.Timer
	expired := false
	for {
		b.mu.Lock()
		if b.avail >= n || expired || ctx.Err() != nil {
			got = min(max(b.avail, 0), n)
			b.avail -= got
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return got, waited
		}
		ch := b.freed
		b.mu.Unlock()
		if timer == nil {
			d := time.Until(deadline)
			if d <= 0 {
				expired = true
				continue
			}
			timer = time.NewTimer(d)
		}
		waited = true
		select {
		case <-ch:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
		}
	}
}

// force takes n bytes whether or not they are free: a batch larger than what a fetch
// holding the whole budget could take is still sent (a consumer must never be stuck
// behind it), and others wait until it is written.
func (b *fetchBudget) force(n int64) {
	b.mu.Lock()
	b.avail -= n
	b.mu.Unlock()
}

// inUse returns the bytes taken (more than max while a batch larger than the whole
// budget is forced through) and max.
func (b *fetchBudget) inUse() (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max - b.avail, b.max
}

func (b *fetchBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// intConfig reads an integer broker key from the resolved values; def if absent or not
// a number (load has validated every value already).
func intConfig(cfg config.Broker, key string, def int64) int64 {
	n, err := strconv.ParseInt(cfg.Values[key], 10, 64)
	if err != nil {
		return def
	}
	return n
}
