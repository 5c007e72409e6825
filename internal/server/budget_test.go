package server

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
)

func TestBudgetBlocksUntilReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(100)
		n, err := b.acquire(context.Background(), 80)
		if err != nil || n != 80 {
			t.Fatal(n, err)
		}
		var got int64
		go func() { got, _ = b.acquire(context.Background(), 50) }()
		synctest.Wait()
		if got != 0 {
			t.Fatal("acquired beyond the budget")
		}
		b.release(n)
		synctest.Wait()
		if got != 50 {
			t.Fatalf("acquired %d", got)
		}
		// A request larger than the whole budget takes all of it, once it is all free.
		ctx, cancel := context.WithCancel(context.Background())
		var err2 error
		go func() { _, err2 = b.acquire(ctx, 1000) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		if err2 == nil {
			t.Fatal("acquired while 50 bytes were taken")
		}
		b.release(50)
		if m, err := b.acquire(context.Background(), 1000); err != nil || m != 100 {
			t.Fatalf("oversized: %d %v", m, err)
		}
	})
}

// Frames announced but not sent hold one step each, not their size: a whole
// acquisition of what is left goes through at once.
func TestReservationHoldsOnlyWhatArrived(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	var rs []*reservation
	for range 6 {
		r := b.reserve(16) // six frames of 16: together nearly the whole budget
		if err := r.grow(ctx, 2); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if n, err := b.acquire(ctx, 88); err != nil || n != 88 {
		t.Fatalf("acquire beside six stalled frames: %d %v", n, err)
	}
	b.release(88)
	for _, r := range rs {
		r.cancel()
	}
	if b.avail != 100 || len(b.partial) != 0 || b.partialHeld != 0 {
		t.Fatalf("after cancel: avail %d partial %d held %d", b.avail, len(b.partial), b.partialHeld)
	}
}

// Frames that grow step by step never deadlock holding the budget between them:
// three 60-byte frames against a budget of 100, their bytes arriving in turns of 10,
// each released once whole.
func TestReservationsCannotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(100)
		var wg sync.WaitGroup
		var arrive [3]chan struct{}
		for i := range arrive {
			arrive[i] = make(chan struct{}, 6)
			wg.Go(func() {
				r := b.reserve(60)
				for r.need > 0 {
					<-arrive[i]
					if err := r.grow(context.Background(), 10); err != nil {
						t.Error(err)
						return
					}
				}
				b.release(r.held) // served
			})
		}
		for range 6 { // the clients send a step each in turn
			for i := range arrive {
				arrive[i] <- struct{}{}
			}
			synctest.Wait()
		}
		wg.Wait() // synctest fails the test if they deadlock
		if b.avail != 100 || len(b.partial) != 0 {
			t.Fatalf("avail %d, %d partial after all released", b.avail, len(b.partial))
		}
	})
}

// The frame nearest to finishing may go on; a step that would leave neither able to
// finish waits, and a frame that finishes and is released lets the other on.
func TestReservationOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(100)
		ctx := context.Background()
		a, c := b.reserve(90), b.reserve(90)
		for _, step := range []*reservation{a, c, a} {
			if err := step.grow(ctx, 10); err != nil {
				t.Fatal(err)
			}
		}
		// a holds 20, c 10. Another step for c would leave 60 free for the 70 each
		// still needs: it waits.
		done := false
		go func() { c.grow(ctx, 10); done = true }()
		synctest.Wait()
		if done {
			t.Fatal("c grew into a state where neither frame can finish")
		}
		if err := a.grow(ctx, 70); err != nil { // a is whole
			t.Fatal(err)
		}
		synctest.Wait()
		if done {
			t.Fatal("c grew into bytes a still holds")
		}
		b.release(a.held) // a served
		synctest.Wait()
		if !done {
			t.Fatal("c still waits after a was released")
		}
		c.cancel()
		if b.avail != 100 {
			t.Fatalf("avail %d", b.avail)
		}
	})
}
