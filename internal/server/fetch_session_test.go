package server_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

// TestFetchSessionNotLockedAcrossWait: a long poll does not hold its fetch session
// while it waits. As in Kafka, the request moves the session's epoch on when it starts,
// so the session's next request, on another connection, is served during the poll (not
// after it); the poll, when it ends, finds its session moved on and answers
// INVALID_FETCH_SESSION_EPOCH.
func TestFetchSessionNotLockedAcrossWait(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "sess", 1, nil)
	a := dialRaw(t, n.addr)
	full := a.do(fetchReq(0, 0, 0, map[int32]int64{0: 0})).(*kmsg.FetchResponse)
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("full fetch: error %d session %d", full.ErrorCode, full.SessionID)
	}
	sid := full.SessionID
	a.corr++
	a.write(frame(fetchReq(sid, 1, 120_000, nil), a.corr)) // nothing to read: it waits

	// Epoch 2 is refused until the poll has started (and taken epoch 1), then served
	// while it waits. do fails the test if an answer takes longer than its read deadline.
	b := dialRaw(t, n.addr)
	for i := 0; ; i++ {
		resp := b.do(fetchReq(sid, 2, 0, nil)).(*kmsg.FetchResponse)
		if resp.ErrorCode == 0 {
			break
		}
		if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || i == 100_000 {
			t.Fatalf("epoch 2 during the poll: error %d after %d tries", resp.ErrorCode, i)
		}
	}

	pr := dialRaw(t, n.addr)
	if p := produceRaw(t, pr, "sess", -1, buildBatch(t, batch.BuildOptions{}, "wake")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	corr, body, err := a.readFrame()
	if err != nil || corr != a.corr {
		t.Fatalf("long poll response: correlation id %d, %v", corr, err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if err := resp.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("the poll whose session moved on answered error %d, want INVALID_FETCH_SESSION_EPOCH", resp.ErrorCode)
	}
}
