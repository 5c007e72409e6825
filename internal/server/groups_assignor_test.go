package server_test

// group.consumer.assignors over a real socket: a broker configured with only the
// range assignor serves a franz-go KIP-848 consumer that asks for range, makes range
// the default for members that name none, and refuses a consumer asking for uniform
// with UNSUPPORTED_ASSIGNOR.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeAssignor returns a KIP-848 group's assignor as ConsumerGroupDescribe reports it.
func describeAssignor(t *testing.T, cl *kgo.Client, group string) string {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe %s: %v %+v", group, err, resp)
	}
	if err := kerr.ErrorForCode(resp.Groups[0].ErrorCode); err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return resp.Groups[0].AssignorName
}

// joinHeartbeat sends a first KIP-848 heartbeat subscribing to topic, naming assignor
// unless it is empty, and returns the response.
func joinHeartbeat(t *testing.T, cl *kgo.Client, group, topic, assignor string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = group, uuid.NewString(), 0
	req.RebalanceTimeoutMillis = 10000
	req.SubscribedTopicNames = []string{topic}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if assignor != "" {
		req.ServerAssignor = kmsg.StringPtr(assignor)
	}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	return resp
}

// logWatch is a kgo logger that reports when a line containing want is logged.
type logWatch struct {
	want string
	once sync.Once
	seen chan struct{}
}

func (w *logWatch) Level() kgo.LogLevel { return kgo.LogLevelError }

func (w *logWatch) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	if strings.Contains(fmt.Sprint(append([]any{msg}, keyvals...)...), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
}

func TestConsumerAssignorsConfigOverSocket(t *testing.T) {
	n := startNode(t, map[string]string{
		"group.initial.rebalance.delay.ms": "0",
		"group.consumer.assignors":         "org.apache.kafka.coordinator.group.assignor.RangeAssignor",
	})
	const topic, records = "assigned", 30
	n.createTopic(t, topic, 3, nil)
	p := n.client(kgo.DefaultProduceTopic(topic))
	for i := range records {
		if err := p.ProduceSync(ctxT(t), &kgo.Record{Value: fmt.Appendf(nil, "r%d", i), Partition: int32(i % 3)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	// A franz-go KIP-848 consumer with the range balancer asks for range: served.
	c := n.client(kgo.ConsumerGroup("ranged"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
	got := 0
	for got < records {
		fs := c.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d records: %v", got, err)
		}
		got += fs.NumRecords()
	}
	admin := n.client()
	if a := describeAssignor(t, admin, "ranged"); a != "range" {
		t.Fatalf("group ranged uses assignor %q, want range", a)
	}

	// A member naming no assignor gets the first configured one.
	if r := joinHeartbeat(t, admin, "plain", topic, ""); r.ErrorCode != 0 {
		t.Fatalf("join without assignor: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if a := describeAssignor(t, admin, "plain"); a != "range" {
		t.Fatalf("group plain uses assignor %q, want the configured default range", a)
	}

	// Uniform is Kafka's default but not configured here: UNSUPPORTED_ASSIGNOR (112).
	r := joinHeartbeat(t, admin, "uniformed", topic, "uniform")
	if r.ErrorCode != kerr.UnsupportedAssignor.Code || r.ErrorCode != 112 || r.ErrorMessage == nil ||
		!strings.Contains(*r.ErrorMessage, "Supported assignors: range.") {
		t.Fatalf("join asking for uniform: %v %v, want UNSUPPORTED_ASSIGNOR naming range", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	// franz-go asks for uniform with a sticky balancer, and reports the refusal.
	w := &logWatch{want: kerr.UnsupportedAssignor.Message, seen: make(chan struct{})}
	n.client(kgo.ConsumerGroup("sticky"), kgo.ConsumeTopics(topic),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.WithLogger(w))
	select {
	case <-w.seen:
	case <-ctxT(t).Done():
		t.Fatal("franz-go consumer asking for uniform was not refused with UNSUPPORTED_ASSIGNOR")
	}
}
