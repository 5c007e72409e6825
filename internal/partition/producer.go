package partition

// Producer state for idempotent produce (KIP-98): per producer ID, its current epoch
// and the metadata of its last few batches, so that a retried batch is answered with
// its original offsets and a gap in sequence numbers is refused. The state is rebuilt
// on open from a snapshot and the batch headers after it (snapshot.go, rolling.go).
//
// A producer's state expires producer.id.expiration.ms after its last batch's timestamp
// (ExpireProducers), as in Kafka; a producer Kafka does not know, because its state
// expired or was never there, may then start at any sequence (KIP-360), so expiry bounds
// the state without failing an idle producer that comes back.

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

// Errors of the sequence check; the handler maps them to Kafka codes.
var (
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrUnknownProducerID is no longer returned by the sequence check (Kafka since
	// KIP-360 accepts a producer it does not know at any sequence); the handler still
	// maps it for callers that use it.
	ErrUnknownProducerID = errors.New("unknown producer id")
)

// cachedBatches is how many batches per producer are remembered for duplicate detection;
// it matches max.in.flight.requests.per.connection = 5, the most an idempotent producer
// may have outstanding.
const cachedBatches = 5

type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64 // max timestamp, or log append time
}

type producerEntry struct {
	epoch   int16
	batches [cachedBatches]batchMeta
	n       int // valid entries in batches, oldest first
	lastTS  int64
}

func (e *producerEntry) last() *batchMeta {
	if e.n == 0 {
		return nil
	}
	return &e.batches[e.n-1]
}

func (e *producerEntry) duplicate(first, last int32) *batchMeta {
	for i := 0; i < e.n; i++ {
		if e.batches[i].firstSeq == first && e.batches[i].lastSeq == last {
			return &e.batches[i]
		}
	}
	return nil
}

func (e *producerEntry) add(m batchMeta) {
	if e.n == cachedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = m
	e.n++
	e.lastTS = m.timestamp
}

func lastSeqOf(b batch.Batch) int32 {
	s := int64(b.BaseSequence()) + int64(b.LastOffsetDelta())
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// check returns the duplicate's metadata if b is a retry of a cached batch, or an error
// if b may not be appended. e may be nil (no state for this producer).
func check(e *producerEntry, b batch.Batch) (*batchMeta, error) {
	epoch, first := b.ProducerEpoch(), b.BaseSequence()
	if e == nil {
		// A producer with no state here (new, or expired) may start at any sequence, as
		// Kafka's ProducerAppendInfo.checkSequence allows when it knows no epoch.
		return nil, nil
	}
	if epoch < e.epoch {
		return nil, ErrInvalidProducerEpoch
	}
	if epoch > e.epoch {
		if first != 0 {
			return nil, ErrOutOfOrderSequence
		}
		return nil, nil
	}
	if d := e.duplicate(first, lastSeqOf(b)); d != nil {
		return d, nil
	}
	l := e.last()
	if l == nil {
		if first != 0 {
			return nil, ErrOutOfOrderSequence
		}
		return nil, nil
	}
	if !inSequence(l.lastSeq, first) {
		return nil, ErrOutOfOrderSequence
	}
	return nil, nil
}

// update records an appended batch (already at its final offsets) in the state.
func (p *Partition) updateProducer(b batch.Batch, ts int64) {
	pid := b.ProducerID()
	if pid < 0 {
		return
	}
	e := p.producers[pid]
	if e == nil {
		e = &producerEntry{epoch: b.ProducerEpoch()}
		p.producers[pid] = e
	}
	if b.ProducerEpoch() != e.epoch {
		*e = producerEntry{epoch: b.ProducerEpoch()}
	}
	e.add(batchMeta{firstSeq: b.BaseSequence(), lastSeq: lastSeqOf(b),
		firstOffset: b.BaseOffset(), lastOffset: b.LastOffset(), timestamp: ts})
}

// ExpireProducers removes the producers whose last batch's timestamp is expiration or
// more before now (producer.id.expiration.ms), as Kafka's
// ProducerStateManager.removeExpiredProducers does (it keeps only producers with an open
// transaction; Vltava has none). Like Kafka it neither keeps a producer for having
// batches in the log nor drops one for having none left. The expiration is remembered
// and applied again before each snapshot is written (rolling and at close). It returns
// how many producers it removed.
func (p *Partition) ExpireProducers(now time.Time, expiration time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiration = expiration
	return p.expireLocked(now)
}

// ProducerState is one producer's state as DescribeProducers reports it (KIP-664).
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // of the last batch remembered; -1 if none
	LastTimestamp int64 // of the last batch (max timestamp or log append time); -1 if none
}

// ActiveProducers returns the producers with state in the partition, by producer ID:
// what Kafka's UnifiedLog.activeProducers reports. Vltava keeps no transactions, so
// there is no coordinator epoch or open transaction to report.
func (p *Partition) ActiveProducers() []ProducerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerState, 0, len(p.producers))
	for pid, e := range p.producers {
		st := ProducerState{ProducerID: pid, ProducerEpoch: e.epoch, LastSequence: -1, LastTimestamp: -1}
		if l := e.last(); l != nil {
			st.LastSequence, st.LastTimestamp = l.lastSeq, e.lastTS
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// ProducerCount returns how many producers have state in the partition (metrics).
func (p *Partition) ProducerCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.producers)
}

// expireLocked applies p.expiration at now; p.mu is held.
func (p *Partition) expireLocked(now time.Time) int {
	if p.expiration <= 0 {
		return 0
	}
	// now >= 0 and expiration > 0 keep the subtraction from overflowing, whatever
	// timestamps producers wrote.
	limit := now.UnixMilli() - p.expiration.Milliseconds()
	n := 0
	for pid, e := range p.producers {
		if e.lastTS <= limit {
			delete(p.producers, pid)
			n++
		}
	}
	return n
}
