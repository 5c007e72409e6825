package partition

import (
	"errors"
	"testing"
	"time"
)

// The purgatory alone: waiters keyed by offset, completed in offset order whatever the
// order they came in, failed at their deadline, by leadership loss, or with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below min.insync.replicas.
func TestAckQueue(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	q := &ackQueue{max: 4}
	mk := func(end int64, d time.Duration) *AckWaiter {
		if err := q.reserve(); err != nil {
			t.Fatal(err)
		}
		w := &AckWaiter{end: end, deadline: t0.Add(d), done: make(chan struct{})}
		q.add(w)
		return w
	}
	done := func(w *AckWaiter) (bool, error) {
		select {
		case <-w.done:
			return true, w.err
		default:
			return false, nil
		}
	}
	a, b, dup := mk(10, time.Minute), mk(20, time.Second), mk(5, time.Minute) // a retried duplicate of an earlier batch
	if err := q.reserve(); err != nil {
		t.Fatal(err)
	}
	if err := q.reserve(); !errors.Is(err, ErrTooManyAckWaiters) {
		t.Fatalf("fifth place: %v", err)
	}
	q.release()
	q.complete(9, true, true)
	if ok, err := done(dup); !ok || err != nil {
		t.Fatalf("duplicate below the high watermark: %v %v", ok, err)
	}
	if ok, _ := done(a); ok {
		t.Fatalf("a done below its end")
	}
	q.expire(t0.Add(time.Second))
	if ok, err := done(b); !ok || !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("b at its deadline: %v %v", ok, err)
	}
	q.complete(10, false, true)
	if ok, err := done(a); !ok || !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("a with the ISR below min: %v %v", ok, err)
	}
	c := mk(30, time.Minute)
	q.complete(100, true, false)
	if ok, err := done(c); !ok || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("c after leadership loss: %v %v", ok, err)
	}
	d := mk(40, time.Minute)
	q.remove(d, errors.New("gave up"))
	q.remove(d, errors.New("twice")) // no double close
	if q.len() != 0 {
		t.Fatalf("%d left", q.len())
	}
}
