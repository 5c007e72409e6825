package server_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/batch"
)

// The broker drops producer state idle for producer.id.expiration.ms on its own, every
// producer.id.expiration.check.interval.ms: a producer whose last batch is older is then
// unknown, and its batch at a sequence gap is taken rather than refused.
func TestProducerStateExpiresOnItsOwn(t *testing.T) {
	n := startNode(t, map[string]string{
		"producer.id.expiration.ms":                "60000",
		"producer.id.expiration.check.interval.ms": "20",
	})
	n.createTopic(t, "expire", 1, nil)
	r := dialRaw(t, n.addr)
	pid, epoch := initProducer(t, r)
	old := time.Now().Add(-2 * time.Minute).UnixMilli()
	batchAt := func(seq int32) []byte {
		b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq},
			[]batch.Record{{Timestamp: old, Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if p := produceRaw(t, r, "expire", -1, batchAt(0)); p.ErrorCode != 0 {
		t.Fatalf("first batch: %+v", p)
	}
	// Refused (OUT_OF_ORDER_SEQUENCE, nothing appended) while the broker knows the
	// producer; the check runs every 20 ms.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := produceRaw(t, r, "expire", -1, batchAt(7))
		if p.ErrorCode == 0 {
			break
		}
		if p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
			t.Fatalf("gap: %+v", p)
		}
		if time.Now().After(deadline) {
			t.Fatal("producer state idle past producer.id.expiration.ms was never dropped")
		}
	}
}
