package bench

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceHooks counts what the producers put on the wire: record batches and produce
// requests, like the Java producer's batch-size-avg and records-per-request-avg. How many
// records a batch carries decides much of a producer's CPU per record, and it depends on
// the broker: with linger 0 a batch holds what accumulated while earlier requests were in
// flight, so a broker that answers sooner gets smaller batches.
type produceHooks struct {
	batches, batchRecords, batchBytes atomic.Int64
	requests                          atomic.Int64
}

var (
	_ kgo.HookProduceBatchWritten = (*produceHooks)(nil)
	_ kgo.HookBrokerWrite         = (*produceHooks)(nil)
)

func (h *produceHooks) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.batches.Add(1)
	h.batchRecords.Add(int64(m.NumRecords))
	h.batchBytes.Add(int64(m.CompressedBytes))
}

func (h *produceHooks) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil { // Produce
		h.requests.Add(1)
	}
}

// fill adds the counts to r.
func (h *produceHooks) fill(r *Result) {
	r.Batches = h.batches.Load()
	r.ProduceRequests = h.requests.Load()
	if r.Batches > 0 {
		r.RecordsPerBatch = float64(h.batchRecords.Load()) / float64(r.Batches)
		r.BytesPerBatch = float64(h.batchBytes.Load()) / float64(r.Batches)
	}
}
