package server_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

func fetchReq(sessionID, epoch int32, maxWait int32, parts map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionID, req.SessionEpoch = sessionID, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "sess"
		for p, off := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestFetchSessionsKIP227(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "sess", 2, nil)
	r := dialRaw(t, n.addr)
	pr := dialRaw(t, n.addr)
	produceTo := func(p int32, v string) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "sess"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = buildBatch(t, batch.BuildOptions{}, v)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if code := pr.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %d", code)
		}
	}
	produceTo(0, "a")

	// Full fetch opens a session and returns both partitions.
	full := r.do(fetchReq(0, 0, 0, map[int32]int64{0: 0, 1: 0})).(*kmsg.FetchResponse)
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("full fetch: error %d session %d", full.ErrorCode, full.SessionID)
	}
	if got := len(full.Topics[0].Partitions); got != 2 {
		t.Fatalf("full fetch returned %d partitions", got)
	}
	sid := full.SessionID

	// Incremental fetch, nothing changed: no partitions (after the wait).
	start := time.Now()
	inc := r.do(fetchReq(sid, 1, 200, map[int32]int64{0: 1})).(*kmsg.FetchResponse)
	if inc.ErrorCode != 0 || len(inc.Topics) != 0 {
		t.Fatalf("idle incremental fetch: error %d topics %+v", inc.ErrorCode, inc.Topics)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("incremental fetch with no data returned before max wait")
	}

	// New data on partition 1 only: the incremental fetch returns just that partition.
	produceTo(1, "b")
	inc = r.do(fetchReq(sid, 2, 1000, nil)).(*kmsg.FetchResponse)
	if inc.ErrorCode != 0 || len(inc.Topics) != 1 || len(inc.Topics[0].Partitions) != 1 || inc.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("incremental fetch after produce: %+v", inc.Topics)
	}
	if len(inc.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("no records for partition 1")
	}

	// A wrong epoch is refused; an unknown session too.
	if bad := r.do(fetchReq(sid, 7, 0, nil)).(*kmsg.FetchResponse); bad.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: %d", bad.ErrorCode)
	}
	if bad := r.do(fetchReq(sid+1, 1, 0, nil)).(*kmsg.FetchResponse); bad.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %d", bad.ErrorCode)
	}

	// A long poll wakes up when data arrives.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		time.Sleep(100 * time.Millisecond) // let the fetch start waiting
		produceTo(0, "c")
	}()
	defer func() { <-produced }()
	start = time.Now()
	lp := r.do(fetchReq(0, -1, 10000, map[int32]int64{0: 1})).(*kmsg.FetchResponse)
	if len(lp.Topics) != 1 || len(lp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("long poll returned no data: %+v", lp.Topics)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("long poll did not wake on append")
	}

	// Offsets out of range.
	oor := r.do(fetchReq(0, -1, 0, map[int32]int64{0: 99})).(*kmsg.FetchResponse)
	if code := oor.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("out of range: %d", code)
	}
}
