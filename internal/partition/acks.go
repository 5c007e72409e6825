package partition

// The acks=all purgatory of one partition (Kafka's DelayedProduce, keyed here by offset):
// a waiter per acks=all append, for the offset its batch ends at (a retried duplicate
// waits for its original's end). Waiters complete when the high watermark reaches their
// end, with NOT_ENOUGH_REPLICAS_AFTER_APPEND if by then the maximal ISR is smaller than
// the effective min.insync.replicas; they fail at their deadline (request.timeout.ms),
// when the replica stops leading (NOT_LEADER_OR_FOLLOWER) and when it closes.
//
// The queue is pure: no clock and no goroutines. The partition feeds it under its
// replication lock. Its size is bounded (vltava.replica.ack.waiters.max per partition):
// an acks=all append that finds it full is refused before anything is appended, with
// ErrTooManyAckWaiters (REQUEST_TIMED_OUT to the client, which retries).

import (
	"errors"
	"fmt"
	"time"
)

// ErrTooManyAckWaiters refuses an acks=all append while the partition already has its
// limit of appends waiting for the in-sync replicas.
var ErrTooManyAckWaiters = errors.New("too many acks=all appends waiting for the in-sync replicas")

// DefaultMaxAckWaiters is vltava.replica.ack.waiters.max's default: far above what the
// connections of a broker keep waiting on one partition (each connection waits on at
// most one request at a time), low enough to bound the memory.
const DefaultMaxAckWaiters = 10000

// AckWaiter is one acks=all append waiting for the in-sync replicas.
type AckWaiter struct {
	end      int64 // the offset after the batch (its original's, for a duplicate)
	deadline time.Time
	res      AppendResult
	err      error
	done     chan struct{}
}

// Done is closed once the waiter has its outcome.
func (w *AckWaiter) Done() <-chan struct{} { return w.done }

// Result returns the append's result and the acks outcome; valid once Done is closed.
func (w *AckWaiter) Result() (AppendResult, error) { return w.res, w.err }

// AppendResult is the append's offsets, known as soon as it is in the leader's log.
func (w *AckWaiter) AppendResult() AppendResult { return w.res }

// End is the offset the high watermark must reach.
func (w *AckWaiter) End() int64 { return w.end }

func (w *AckWaiter) finish(err error) {
	w.err = err
	close(w.done)
}

// ackQueue holds the waiters ordered by end, and the reservations of appends on their
// way into the log.
type ackQueue struct {
	max      int
	reserved int
	waiters  []*AckWaiter // ascending end
}

// reserve takes a place for an append about to be made.
func (q *ackQueue) reserve() error {
	if len(q.waiters)+q.reserved >= q.max {
		return fmt.Errorf("%w: %d waiting (vltava.replica.ack.waiters.max)", ErrTooManyAckWaiters, q.max)
	}
	q.reserved++
	return nil
}

// release gives a place back (the append failed).
func (q *ackQueue) release() { q.reserved-- }

// add turns a reservation into a waiter.
func (q *ackQueue) add(w *AckWaiter) {
	q.reserved--
	i := len(q.waiters)
	for i > 0 && q.waiters[i-1].end > w.end {
		i--
	}
	q.waiters = append(q.waiters, nil)
	copy(q.waiters[i+1:], q.waiters[i:])
	q.waiters[i] = w
}

// complete finishes the waiters the high watermark has passed; with leading false,
// every waiter fails with ErrNotLeader.
func (q *ackQueue) complete(hw int64, enough, leading bool) {
	if !leading {
		q.failAll(ErrNotLeader)
		return
	}
	n := 0
	for n < len(q.waiters) && q.waiters[n].end <= hw {
		var err error
		if !enough {
			err = ErrNotEnoughReplicasAfterAppend
		}
		q.waiters[n].finish(err)
		n++
	}
	q.drop(n)
}

// expire fails the waiters whose deadline has come.
func (q *ackQueue) expire(now time.Time) {
	kept := q.waiters[:0]
	for _, w := range q.waiters {
		if !now.Before(w.deadline) {
			w.finish(fmt.Errorf("%w: waiting for offset %d", ErrAckTimeout, w.end-1))
			continue
		}
		kept = append(kept, w)
	}
	clear(q.waiters[len(kept):])
	q.waiters = kept
}

// remove takes w out, finishing it with err, unless it is done already.
func (q *ackQueue) remove(w *AckWaiter, err error) {
	for i, x := range q.waiters {
		if x == w {
			copy(q.waiters[i:], q.waiters[i+1:])
			q.waiters[len(q.waiters)-1] = nil
			q.waiters = q.waiters[:len(q.waiters)-1]
			w.finish(err)
			return
		}
	}
}

func (q *ackQueue) failAll(err error) {
	for _, w := range q.waiters {
		w.finish(err)
	}
	q.drop(len(q.waiters))
}

func (q *ackQueue) drop(n int) {
	if n == 0 {
		return
	}
	rest := copy(q.waiters, q.waiters[n:])
	clear(q.waiters[rest:])
	q.waiters = q.waiters[:rest]
}

func (q *ackQueue) len() int { return len(q.waiters) }
