package server_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

func initProducer(t *testing.T, r *rawConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	resp := r.do(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("init producer id: %d", resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func TestIdempotentSequences(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "idem", 1, nil)
	r := dialRaw(t, n.addr)
	pid, epoch := initProducer(t, r)
	pid2, _ := initProducer(t, r)
	if pid2 == pid {
		t.Fatalf("two producers got the same id %d", pid)
	}
	seq := func(s int32, values ...string) []byte {
		return buildBatch(t, batch.BuildOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: s}, values...)
	}
	if p := produceRaw(t, r, "idem", -1, seq(0, "a", "b", "c")); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first: %+v", p)
	}
	if p := produceRaw(t, r, "idem", -1, seq(3, "d")); p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("second: %+v", p)
	}
	// A retry of the first batch is answered with its original offset, not appended.
	if p := produceRaw(t, r, "idem", -1, seq(0, "a", "b", "c")); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("duplicate: %+v", p)
	}
	// A gap is refused.
	if p := produceRaw(t, r, "idem", -1, seq(9, "x")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %+v", p)
	}
	if p := produceRaw(t, r, "idem", -1, seq(4, "e")); p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("in order after gap: %+v", p)
	}

	// Producer state survives a restart: the retry is still recognised.
	n.restart()
	r = dialRaw(t, n.addr)
	if p := produceRaw(t, r, "idem", -1, seq(4, "e")); p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("duplicate after restart: %+v", p)
	}
	if p := produceRaw(t, r, "idem", -1, seq(5, "f")); p.ErrorCode != 0 || p.BaseOffset != 5 {
		t.Fatalf("next after restart: %+v", p)
	}
	// A bumped epoch starts at sequence 0; the old epoch is then fenced.
	bumped := buildBatch(t, batch.BuildOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch + 1, BaseSequence: 0}, "g")
	if p := produceRaw(t, r, "idem", -1, bumped); p.ErrorCode != 0 || p.BaseOffset != 6 {
		t.Fatalf("new epoch: %+v", p)
	}
	if p := produceRaw(t, r, "idem", -1, seq(6, "h")); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: %+v", p)
	}
	// Producer IDs are not reused after a restart.
	pid3, _ := initProducer(t, r)
	if pid3 == pid || pid3 == pid2 {
		t.Fatalf("producer id %d reused after restart", pid3)
	}
}
