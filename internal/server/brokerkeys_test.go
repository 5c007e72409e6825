package server_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

// TestMetadataAutoCreateAnswersLeaderNotAvailable: the Metadata request that
// auto-creates a topic is answered as Kafka answers it, LEADER_NOT_AVAILABLE with
// no partitions while the topic is being created; the next one sees it ready.
// segmentio/kafka-go's own tests (TestConn's delete-topics cases) rely on that.
func TestMetadataAutoCreateAnswersLeaderNotAvailable(t *testing.T) {
	n := startNode(t, map[string]string{"num.partitions": "2"})
	r := dialRaw(t, n.addr)
	md := func(allow bool) kmsg.MetadataResponseTopic {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		req.AllowAutoTopicCreation = allow
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("auto-created")
		req.Topics = append(req.Topics, rt)
		resp := r.do(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("%d topics in the response, want 1", len(resp.Topics))
		}
		return resp.Topics[0]
	}

	if got := md(false); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("without auto-creation: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(got.ErrorCode))
	}
	got := md(true)
	if got.ErrorCode != kerr.LeaderNotAvailable.Code || len(got.Partitions) != 0 {
		t.Fatalf("creating request: %v with %d partitions, want LEADER_NOT_AVAILABLE and none",
			kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
	}
	if got.Topic == nil || *got.Topic != "auto-created" {
		t.Fatalf("creating request names topic %v", got.Topic)
	}
	got = md(true)
	if got.ErrorCode != 0 || len(got.Partitions) != 2 || got.TopicID == [16]byte{} {
		t.Fatalf("next request: %v with %d partitions, topic ID %x; want the topic ready with 2",
			kerr.ErrorForCode(got.ErrorCode), len(got.Partitions), got.TopicID)
	}
}

// TestMessageMaxBytesBrokerDefault: the broker's message.max.bytes bounds batches of
// topics that do not set max.message.bytes, and a dynamic change applies at once.
func TestMessageMaxBytesBrokerDefault(t *testing.T) {
	n := startNode(t, map[string]string{"message.max.bytes": "2000"})
	n.createTopic(t, "mmb", 1, nil)
	r := dialRaw(t, n.addr)
	big := buildBatch(t, batch.BuildOptions{}, strings.Repeat("x", 3000))
	if p := produceRaw(t, r, "mmb", -1, big); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("3000-byte batch with message.max.bytes=2000: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(p.ErrorCode))
	}
	if _, err := n.admin().AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Name: "message.max.bytes", Value: kmsg.StringPtr("10000")}}, 1); err != nil {
		t.Fatal(err)
	}
	if p := produceRaw(t, r, "mmb", -1, big); p.ErrorCode != 0 {
		t.Fatalf("after raising message.max.bytes to 10000: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

// TestTransactionMaxTimeout: InitProducerId with a transactional ID checks its timeout
// against transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT) and an empty ID
// (INVALID_REQUEST), as Kafka's coordinator does first, before Vltava refuses
// transactions (UNSUPPORTED_VERSION).
func TestTransactionMaxTimeout(t *testing.T) {
	n := startNode(t, map[string]string{"transaction.max.timeout.ms": "5000"})
	r := dialRaw(t, n.addr)
	for _, c := range []struct {
		id      string
		timeout int32
		want    *kerr.Error
	}{
		{"tx", 6000, kerr.InvalidTransactionTimeout},
		{"tx", 0, kerr.InvalidTransactionTimeout},
		{"tx", -1, kerr.InvalidTransactionTimeout},
		{"", 1000, kerr.InvalidRequest},
		{"tx", 5000, kerr.UnsupportedVersion},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = kmsg.StringPtr(c.id)
		req.TransactionTimeoutMillis = c.timeout
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp := r.do(req).(*kmsg.InitProducerIDResponse)
		if got := kerr.ErrorForCode(resp.ErrorCode); got != c.want {
			t.Errorf("transactional id %q, timeout %d ms: %v, want %v", c.id, c.timeout, got, c.want)
		}
	}
}

// TestErrorMessagesAreTheDetail: an error_message carries what the broker adds to the
// code, as Kafka's do ("topic ... already exists"), not the code's name and generic
// description again, which clients print beside it (doubled text in every tool).
func TestErrorMessagesAreTheDetail(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "twice", 1, nil)
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "twice", 1, 1
	req.Topics = append(req.Topics, rt)
	st := r.do(req).(*kmsg.CreateTopicsResponse).Topics[0]
	if st.ErrorCode != kerr.TopicAlreadyExists.Code || st.ErrorMessage == nil {
		t.Fatalf("second creation: %v, message %v", kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage)
	}
	if msg := *st.ErrorMessage; strings.Contains(msg, "TOPIC_ALREADY_EXISTS") || strings.Contains(msg, kerr.TopicAlreadyExists.Description) || !strings.Contains(msg, "twice") {
		t.Fatalf("error_message %q, want only the broker's detail naming the topic", msg)
	}
}
