package partition

import (
	"errors"
	"math"
	"testing"

	"github.com/vltava/vltava/internal/batch"
)

func idemBatch(t *testing.T, epoch int16, seq int32, n int) batch.Batch {
	t.Helper()
	recs := make([]batch.Record, n)
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: 7, ProducerEpoch: epoch, BaseSequence: seq}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return batch.Batch(b)
}

func TestSequenceChecks(t *testing.T) {
	entry := func(epoch int16, batches ...batchMeta) *producerEntry {
		e := &producerEntry{epoch: epoch}
		for _, b := range batches {
			e.add(b)
		}
		return e
	}
	cases := []struct {
		name    string
		e       *producerEntry
		epoch   int16
		seq     int32
		n       int
		wantErr error
		wantDup bool
	}{
		{"first batch", nil, 0, 0, 3, nil, false},
		// Kafka (KIP-360) accepts a producer it has no state for at any sequence: its
		// state may have expired (producer.id.expiration.ms) while it was idle.
		{"unknown producer mid-stream", nil, 0, 5, 1, nil, false},
		{"in order", entry(0, batchMeta{0, 2, 0, 2, 0}), 0, 3, 1, nil, false},
		{"gap", entry(0, batchMeta{0, 2, 0, 2, 0}), 0, 4, 1, ErrOutOfOrderSequence, false},
		{"duplicate", entry(0, batchMeta{0, 2, 10, 12, 0}, batchMeta{3, 3, 13, 13, 0}), 0, 0, 3, nil, true},
		{"old epoch", entry(1, batchMeta{0, 0, 0, 0, 0}), 0, 1, 1, ErrInvalidProducerEpoch, false},
		{"new epoch at 0", entry(0, batchMeta{0, 9, 0, 9, 0}), 1, 0, 1, nil, false},
		{"new epoch not at 0", entry(0, batchMeta{0, 9, 0, 9, 0}), 1, 4, 1, ErrOutOfOrderSequence, false},
		{"wrap", entry(0, batchMeta{math.MaxInt32 - 1, math.MaxInt32, 0, 1, 0}), 0, 0, 1, nil, false},
	}
	for _, c := range cases {
		dup, err := check(c.e, idemBatch(t, c.epoch, c.seq, c.n))
		if !errors.Is(err, c.wantErr) || (dup != nil) != c.wantDup {
			t.Errorf("%s: dup %v err %v; want dup %v err %v", c.name, dup, err, c.wantDup, c.wantErr)
		}
	}
}

func TestCachedBatchesAreBounded(t *testing.T) {
	e := &producerEntry{}
	for i := int32(0); i < 10; i++ {
		e.add(batchMeta{firstSeq: i, lastSeq: i, firstOffset: int64(i), lastOffset: int64(i)})
	}
	if e.n != cachedBatches || e.batches[0].firstSeq != 5 || e.last().lastSeq != 9 {
		t.Fatalf("cache: n=%d first=%d last=%d", e.n, e.batches[0].firstSeq, e.last().lastSeq)
	}
	if d := e.duplicate(2, 2); d != nil {
		t.Fatal("an evicted batch is still found")
	}
}
