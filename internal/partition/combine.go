package partition

import (
	"errors"
	"fmt"

	"github.com/vltava/vltava/internal/batch"
)

// Appends are combined across concurrent requests. An appender that finds another one
// placing batches queues its validated batch and waits; the one placing takes the whole
// queue at once, assigns offsets and checks producer state for each batch under p.mu,
// and writes them with one log.AppendBatches (one pwritev per segment). Then it wakes the
// batches it placed and hands its turn to the first appender that queued meanwhile, so no
// appender places others' batches for long. With no contention an append places only
// its own batch, as before.

// appendOp is one Append on its way into the log.
type appendOp struct {
	b   batch.Batch
	cfg *Config
	now int64
	ts  int64 // the batch's timestamp for producer state

	res    AppendResult
	end    int64 // the offset after the batch (or after the original of a duplicate)
	ticket int64 // > 0: SyncThrough before acknowledging
	err    error

	done chan struct{} // closed once placed, or when this op's turn to place has come
	lead bool          // set before done is closed: place the queue
}

// appendQueued places op, its own or with others queued at the same time.
func (p *Partition) appendQueued(op *appendOp) {
	p.qmu.Lock()
	if p.placing {
		op.done = make(chan struct{})
		p.queue = append(p.queue, op)
		p.qmu.Unlock()
		<-op.done
		if !op.lead {
			return
		}
	} else {
		p.placing = true
		p.queue = append(p.queue, op)
		p.qmu.Unlock()
	}

	p.qmu.Lock()
	ops := p.queue
	p.queue = nil
	p.qmu.Unlock()

	// Whatever happens in placeAll, even a panic (which costs the caller its connection),
	// the waiters are woken and the turn handed on: a partition must never wedge.
	placed := false
	defer func() {
		if !placed {
			for _, o := range ops {
				if o.err == nil && o.res.BaseOffset < 0 {
					o.err = errAppendAborted
				}
			}
		}
		for _, o := range ops {
			if o != op && o.done != nil {
				close(o.done)
			}
		}
		p.qmu.Lock()
		if len(p.queue) == 0 {
			p.placing = false
		} else {
			next := p.queue[0]
			next.lead = true
			close(next.done)
		}
		p.qmu.Unlock()
	}()
	p.placeAll(ops)
	placed = true
}

var errAppendAborted = errors.New("append aborted: the appender placing it failed")

// placeAll assigns offsets to ops in order, answers duplicates and producer errors, and
// writes the rest together.
func (p *Partition) placeAll(ops []*appendOp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, o := range ops {
			o.err = ErrClosed
		}
		return
	}
	pending := p.pendingBuf[:0]
	defer func() { clear(pending[:cap(pending)]); p.pendingBuf = pending[:0] }() // keep no op alive
	next := p.log.LogEndOffset()
	if p.repl.rep != nil && p.repl.role != RoleLeader {
		for _, o := range ops {
			o.err = fmt.Errorf("append to %s-%d: %w (%s)", p.Topic, p.Index, ErrNotLeader, p.repl.role)
		}
		return
	}
	for _, o := range ops {
		// A poisoned log (a failed write or fsync, maybe of a batch written just above)
		// takes no append until it is reopened, and answers no duplicate either: the
		// producer state may describe batches the failure lost.
		if err := p.log.Err(); err != nil {
			o.err = fmt.Errorf("append to %s-%d: %w", p.Topic, p.Index, err)
			continue
		}
		b, cfg := o.b, o.cfg
		if pid := b.ProducerID(); pid >= 0 {
			// Producer state must see this producer's earlier batches: write them first.
			for _, q := range pending {
				if q.b.ProducerID() == pid {
					p.writePending(pending)
					pending, next = pending[:0], p.log.LogEndOffset()
					break
				}
			}
			dup, err := check(p.producers[pid], b)
			if err != nil {
				o.err = err
				continue
			}
			if dup != nil {
				o.res.BaseOffset = dup.firstOffset
				if cfg.LogAppendTime {
					o.res.LogAppendTime = dup.timestamp
				}
				o.res.LogStartOffset = p.log.LogStartOffset()
				o.end = dup.lastOffset + 1
				if p.ackedEnd() < o.end {
					// The original is not acknowledged yet: its fsync is still running (this
					// is a retry after a timeout). Answer with it, once it is durable.
					o.ticket = p.log.SyncTicket()
				}
				continue
			}
		}
		b.SetBaseOffset(next)
		b.SetPartitionLeaderEpoch(p.leaderEpoch)
		o.ts = b.MaxTimestamp()
		if cfg.LogAppendTime {
			b.SetLogAppendTime(o.now)
			o.ts = o.now
			o.res.LogAppendTime = o.now
		}
		next = b.LastOffset() + 1
		o.end = next
		pending = append(pending, o)
	}
	p.writePending(pending)
}

// writePending appends the placed batches of ops and records the outcome in each.
func (p *Partition) writePending(ops []*appendOp) {
	if len(ops) == 0 {
		return
	}
	bs := p.batchBuf[:0]
	for _, o := range ops {
		bs = append(bs, o.b)
	}
	defer func() { clear(bs); p.batchBuf = bs[:0] }() // keep no request's bytes alive
	n, ticket, err := p.log.AppendBatches(bs)
	for _, o := range ops[:n] {
		p.updateProducer(o.b, o.ts)
		o.res.BaseOffset = o.b.BaseOffset()
		o.res.LogStartOffset = p.log.LogStartOffset()
		o.ticket = ticket
	}
	for _, o := range ops[n:] {
		o.err = fmt.Errorf("append to %s-%d: %w", p.Topic, p.Index, err)
		o.res = AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	}
	if n > 0 && ticket == 0 {
		p.appended(bs[n-1].LastOffset() + 1)
	}
}
