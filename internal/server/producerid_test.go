package server_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

// initProducerNamed sends InitProducerId (v4, no transactional id) naming pid and epoch,
// as an idempotent producer does after an error (KIP-360).
func initProducerNamed(t *testing.T, r *rawConn, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return r.do(req).(*kmsg.InitProducerIDResponse)
}

// InitProducerId without a transactional id always hands out a fresh producer ID, as
// Kafka's TransactionCoordinator does: naming another producer's ID and epoch (which any
// consumer reads from the batches) must not give the caller that producer, or writing
// with what it got would fence it.
func TestInitProducerIDDoesNotFence(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "fence", 1, nil)
	victim := dialRaw(t, n.addr)
	pid, epoch := initProducer(t, victim)
	write := func(r *rawConn, pid int64, epoch int16, seq int32, v string) kmsg.ProduceResponseTopicPartition {
		return produceRaw(t, r, "fence", -1, buildBatch(t, batch.BuildOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, v))
	}
	if p := write(victim, pid, epoch, 0, "a"); p.ErrorCode != 0 {
		t.Fatalf("victim's first batch: %+v", p)
	}

	other := dialRaw(t, n.addr)
	resp := initProducerNamed(t, other, pid, epoch)
	if resp.ErrorCode != 0 || resp.ProducerID == pid || resp.ProducerEpoch != 0 {
		t.Fatalf("naming producer %d epoch %d: got producer %d epoch %d (error %d); want a fresh producer at epoch 0",
			pid, epoch, resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode)
	}
	if p := write(other, resp.ProducerID, resp.ProducerEpoch, 0, "x"); p.ErrorCode != 0 {
		t.Fatalf("the other client's batch: %+v", p)
	}
	if p := write(victim, pid, epoch, 1, "b"); p.ErrorCode != 0 {
		t.Fatalf("victim after another client named its producer id: code %d (%v), want it unaffected", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
	}

	// The victim itself asking again (KIP-360 after an error) also gets a fresh ID.
	if again := initProducerNamed(t, victim, pid, epoch); again.ErrorCode != 0 || again.ProducerID == pid || again.ProducerEpoch != 0 {
		t.Fatalf("the owner naming its id: producer %d epoch %d error %d", again.ProducerID, again.ProducerEpoch, again.ErrorCode)
	}
	// An ID without an epoch, or an epoch without an ID, is INVALID_REQUEST, as in Kafka.
	for _, c := range []struct {
		pid   int64
		epoch int16
	}{{pid, -1}, {-1, 3}} {
		if bad := initProducerNamed(t, other, c.pid, c.epoch); bad.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("producer id %d epoch %d: error %d, want INVALID_REQUEST", c.pid, c.epoch, bad.ErrorCode)
		}
	}
}

// franz-go idempotent producers keep producing, exactly once, while another client names
// their producer ID and epoch (read from the batches it consumes) in InitProducerId and
// writes with what it is given.
func TestFranzIdempotentProducerNotFenced(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "franz-fence", 1, nil)
	ctx := ctxT(t)
	producer := n.client(kgo.DefaultProduceTopic("franz-fence"), kgo.ProducerLinger(0))
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := producer.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	produce(0, 50)

	consumer := n.client(kgo.ConsumeTopics("franz-fence"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := consumer.PollRecords(ctx, 1)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	rec := fetches.Records()[0]
	other := dialRaw(t, n.addr)
	resp := initProducerNamed(t, other, rec.ProducerID, rec.ProducerEpoch)
	if resp.ErrorCode != 0 {
		t.Fatalf("init producer id: %d", resp.ErrorCode)
	}
	p := produceRaw(t, other, "franz-fence", -1, buildBatch(t, batch.BuildOptions{Idempotent: true, ProducerID: resp.ProducerID, ProducerEpoch: resp.ProducerEpoch}, "other"))
	if p.ErrorCode != 0 {
		t.Fatalf("the other client's batch: %+v", p)
	}
	produce(50, 100)

	end, err := n.admin().ListEndOffsets(ctx, "franz-fence")
	if err != nil {
		t.Fatal(err)
	}
	hw := end["franz-fence"][0].Offset
	seen := map[string]int{}
	last := int64(-1)
	add := func(rs []*kgo.Record) {
		for _, r := range rs {
			seen[string(r.Value)]++
			last = r.Offset
		}
	}
	add(fetches.Records())
	for last < hw-1 {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		add(fs.Records())
	}
	want := []string{"other"}
	for i := range 100 {
		want = append(want, fmt.Sprint(i))
	}
	for _, v := range want {
		if seen[v] != 1 {
			t.Errorf("record %q stored %d times, want once (%d records up to offset %d)", v, seen[v], len(seen), hw)
		}
	}
}
