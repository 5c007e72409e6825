package server_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

// TestResponseNotHeldBehindLongPoll: a response finished before a request that waits
// (here a long-poll fetch pipelined on the same connection) leaves at once, not when
// the wait ends. The fetch is still waiting when the first response is read: the record
// produced afterwards is what wakes it and what it returns.
func TestResponseNotHeldBehindLongPoll(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "lp", 1, nil)
	r := dialRaw(t, n.addr)

	// The two requests arrive together, so the fetch is queued before the metadata
	// response is written; that response is small (it would otherwise bypass the
	// connection's write buffer).
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	for i := 0; i < 20; i++ {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(fmt.Sprintf("no-such-topic-%d", i))
		md.Topics = append(md.Topics, mt)
	}
	fetch := fetchReq(0, -1, 120_000, nil) // a poll far longer than the read deadline
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "lp"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	fetch.Topics = append(fetch.Topics, rt)
	r.write(append(frame(md, 1), frame(fetch, 2)...))

	corr, _, err := r.readFrame()
	if err != nil {
		t.Fatalf("the metadata response did not arrive while the fetch behind it waits: %v", err)
	}
	if corr != 1 {
		t.Fatalf("first response has correlation id %d, want 1 (the metadata request)", corr)
	}

	pr := dialRaw(t, n.addr)
	if p := produceRaw(t, pr, "lp", -1, buildBatch(t, batch.BuildOptions{}, "wake")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	corr, body, err := r.readFrame()
	if err != nil || corr != 2 {
		t.Fatalf("fetch response: correlation id %d, %v", corr, err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if err := resp.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("the fetch was not still waiting when the metadata response arrived: %+v", resp.Topics)
	}
}
