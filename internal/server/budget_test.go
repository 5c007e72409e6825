package server

import (
	"context"
	"testing"
	"time"
)

func TestBudgetBlocksUntilReleased(t *testing.T) {
	b := newBudget(100)
	n, err := b.acquire(context.Background(), 80)
	if err != nil || n != 80 {
		t.Fatal(n, err)
	}
	got := make(chan int64)
	go func() {
		m, _ := b.acquire(context.Background(), 50)
		got <- m
	}()
	select {
	case <-got:
		t.Fatal("acquired beyond the budget")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(n)
	if m := <-got; m != 50 {
		t.Fatalf("acquired %d", m)
	}
	// A request larger than the whole budget takes all of it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(ctx, 1000); err == nil {
		t.Fatal("acquired while 50 bytes were taken")
	}
	b.release(50)
	if m, err := b.acquire(context.Background(), 1000); err != nil || m != 100 {
		t.Fatalf("oversized: %d %v", m, err)
	}
}
