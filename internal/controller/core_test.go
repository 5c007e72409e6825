package controller

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/quorum"
)

func topicCode(t *testing.T, p *kmsg.Response) int16 {
	t.Helper()
	if *p == nil {
		t.Fatal("not answered")
	}
	return (*p).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
}

// Consecutive decisions see each other before either is committed, each is one write
// proposed at once, and an answer that depends on an uncommitted write waits for it.
func TestSpeculativeDecisions(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(2)
	h.manual = true
	a := h.send(createTopic("a", 1, 1))
	b := h.send(createTopic("b", 1, 2))
	again := h.send(createTopic("a", 1, 1))
	if *a != nil || *b != nil || *again != nil {
		t.Fatal("answered before anything was committed")
	}
	if len(h.queue) != 2 {
		t.Fatalf("%d writes proposed, want 2 (the duplicate writes nothing)", len(h.queue))
	}
	if h.image().Topic("a") != nil {
		t.Fatal("the image changed before a commit")
	}
	h.commit(1)
	if topicCode(t, a) != 0 || *b != nil || *again != nil {
		t.Fatal("after the first commit only the first request may be answered")
	}
	h.commit(1)
	if topicCode(t, b) != 0 || topicCode(t, again) != kerr.TopicAlreadyExists.Code {
		t.Fatalf("after both commits: b %s, again %s", codeName(topicCode(t, b)), codeName(topicCode(t, again)))
	}
}

// A write the log refuses (dropped) fails itself and every decision made after it; the
// controller then decides afresh on the committed state.
func TestFailedWriteAbandonsLaterDecisions(t *testing.T) {
	h := newHarness(t)
	epochs := h.unfencedBrokers(1)
	h.manual = true
	a := h.send(createTopic("a", 1, 1))
	b := h.send(createTopic("b", 1, 1))
	hb := h.send(heartbeat(1, epochs[1], int64(h.image().Offset().Index)))
	h.failHead(fmt.Errorf("propose: %w", quorum.ErrProposalDropped))
	if topicCode(t, a) != kerr.RequestTimedOut.Code || topicCode(t, b) != kerr.RequestTimedOut.Code {
		t.Fatalf("a %s, b %s: want REQUEST_TIMED_OUT", codeName(topicCode(t, a)), codeName(topicCode(t, b)))
	}
	if *hb == nil || (*hb).(*kmsg.BrokerHeartbeatResponse).ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("the heartbeat waiting behind them: %+v", *hb)
	}
	h.commit(len(h.queue)) // b's write, of the abandoned generation, is dropped
	if h.image().Topic("b") != nil {
		t.Fatal("a write decided after a failed one was applied")
	}
	h.manual = false
	h.createOK("b", 1, 1)
	h.createOK("a", 1, 1)
}

// Losing leadership mid-operation: the waiting requests are answered NOT_CONTROLLER,
// new ones too, nothing decided applies, and a new term starts afresh.
func TestLeadershipLossMidOperation(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(1)
	h.manual = true
	a := h.send(createTopic("a", 1, 1))
	h.loseLeadership()
	if topicCode(t, a) != kerr.NotController.Code {
		t.Fatalf("pending request after leadership moved: %s", codeName(topicCode(t, a)))
	}
	if c := topicCode(t, h.send(createTopic("b", 1, 1))); c != kerr.NotController.Code {
		t.Fatalf("request to a standby: %s", codeName(c))
	}
	legacy := kmsg.NewPtrAlterConfigsRequest()
	legacy.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceType(resourceTopic), ResourceName: "a"}}
	for _, req := range []kmsg.Request{heartbeat(1, 1, 1), registration(5, [16]byte{1}, ""), kmsg.NewPtrAllocateProducerIDsRequest(),
		deleteByName(6, "a"), createPartitionsReq("a", 2), legacy, incremental(false, alter{typ: resourceTopic, name: "a", key: "x"})} {
		if c := errorCodes(*h.send(req)); len(c) == 0 || c[0] != kerr.NotController.Code {
			t.Fatalf("%T to a standby: %v", req, c)
		}
	}
	if h.image().Topic("a") != nil {
		t.Fatal("a write of the lost term applied")
	}
	// Leading again, in a new term: requests wait for the activation's NoOp.
	h.lead(h.term + 1)
	b := h.send(createTopic("b", 1, 1))
	if *b != nil || len(h.queue) != 1 {
		t.Fatalf("a request was decided before the activation committed (%d writes queued)", len(h.queue))
	}
	h.commit(1) // the NoOp: now the request is decided
	h.commit(1)
	if topicCode(t, b) != 0 {
		t.Fatalf("after re-activation: %s", codeName(topicCode(t, b)))
	}
}

// A dropped activation NoOp is retried at the next tick; a failure that says the log
// stopped makes the node resign for the term, until a new one; a failure of unknown
// outcome starts the term afresh with a new NoOp.
func TestActivationRetriesAndResigns(t *testing.T) {
	h := newHarness(t)
	h.manual = true
	h.loseLeadership()
	h.lead(h.term + 1)
	h.failHead(quorum.ErrProposalDropped)
	if h.c.isActive() || len(h.queue) != 0 {
		t.Fatal("active without its NoOp")
	}
	h.advance(h.c.cfg.tickInterval())
	if len(h.queue) != 1 {
		t.Fatalf("the NoOp was not proposed again at the tick (%d queued)", len(h.queue))
	}
	h.commit(1)
	if !h.c.isActive() {
		t.Fatal("not active after the NoOp committed")
	}
	setRetention := func() *kmsg.Response {
		return h.send(incremental(false, alter{typ: resourceBroker, key: "log.retention.ms", value: new("1000")}))
	}

	// Unknown outcome: the pending change is answered NOT_CONTROLLER, and at the next
	// tick the term starts afresh.
	pending := setRetention()
	h.failHead(errors.New("something unexpected"))
	if c := errorCodes(*pending); c[0] != kerr.NotController.Code || h.c.isActive() {
		t.Fatalf("the change whose write failed: %s, active %v", codeName(c[0]), h.c.isActive())
	}
	if len(h.queue) != 0 {
		t.Fatal("a NoOp was proposed at once, not at the next tick")
	}
	h.advance(h.c.cfg.tickInterval())
	h.commit(len(h.queue))
	if !h.c.isActive() {
		t.Fatal("not active again after the fresh NoOp")
	}

	// The log stopped: resign for the term.
	pending = setRetention()
	h.failHead(fmt.Errorf("propose: %w", quorum.ErrStorage))
	if c := errorCodes(*pending); c[0] != kerr.NotController.Code {
		t.Fatalf("the change whose write failed: %s", codeName(c[0]))
	}
	h.lead(h.term) // the same term: no second activation
	h.advance(h.c.cfg.tickInterval())
	if h.c.state != standby || len(h.queue) != 0 {
		t.Fatal("activated again in the term it resigned")
	}
	h.manual = false
	h.lead(h.term + 1)
	if !h.c.isActive() {
		t.Fatal("not active in a new term")
	}
}

// A change larger than one entry is refused before it is proposed.
func TestChangeLargerThanAnEntry(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxEntryBytes = 4096 })
	h.unfencedBrokers(1)
	before := h.image().Offset()
	if c := topicCode(t, h.send(createTopic("big", 500, 1))); c != kerr.PolicyViolation.Code {
		t.Fatalf("a change over one entry: %s", codeName(c))
	}
	if h.image().Offset() != before || len(h.queue) != 0 {
		t.Fatal("the large change was proposed")
	}
	h.createOK("small", 1, 1)
}

// errorCodes returns the error codes of a response's error fields.
func errorCodes(r kmsg.Response) []int16 {
	switch r := r.(type) {
	case *kmsg.BrokerRegistrationResponse:
		return []int16{r.ErrorCode}
	case *kmsg.BrokerHeartbeatResponse:
		return []int16{r.ErrorCode}
	case *kmsg.AllocateProducerIDsResponse:
		return []int16{r.ErrorCode}
	case *kmsg.CreateTopicsResponse:
		var out []int16
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
		return out
	case *kmsg.DeleteTopicsResponse:
		var out []int16
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
		return out
	case *kmsg.CreatePartitionsResponse:
		var out []int16
		for _, t := range r.Topics {
			out = append(out, t.ErrorCode)
		}
		return out
	case *kmsg.AlterConfigsResponse, *kmsg.IncrementalAlterConfigsResponse:
		return codes(r)
	}
	return nil
}
