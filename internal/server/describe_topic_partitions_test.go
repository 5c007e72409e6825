package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitionsOverTheWire: a franz-go client finds DescribeTopicPartitions
// v0 in ApiVersions and pages through a broker's topics with raw requests, following
// NextCursor, within the broker's max.request.partition.size.limit (2 here) whatever limit
// the client asks for; a named unknown topic is answered UNKNOWN_TOPIC_OR_PARTITION and,
// unlike Metadata's answer, not created.
func TestDescribeTopicPartitionsOverTheWire(t *testing.T) {
	n := startNode(t, map[string]string{"max.request.partition.size.limit": "2"})
	cl := n.client()
	ctx := ctxT(t)
	for _, tc := range []struct {
		name       string
		partitions int32
	}{{"dtp-b", 2}, {"dtp-a", 3}} {
		if code := createTopicsRaw(t, cl, tc.partitions, tc.name)[0].ErrorCode; code != 0 {
			t.Fatalf("create %s: %v", tc.name, kerr.ErrorForCode(code))
		}
	}

	vs, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	advertised := false
	for _, k := range vs.ApiKeys {
		advertised = advertised || k.ApiKey == 75 && k.MinVersion == 0 && k.MaxVersion == 0
	}
	if !advertised {
		t.Fatalf("ApiVersions lacks DescribeTopicPartitions v0: %+v", vs.ApiKeys)
	}

	describe := func(cursor *kmsg.DescribeTopicPartitionsResponseNextCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
		t.Helper()
		req := kmsg.NewPtrDescribeTopicPartitionsRequest() // ResponsePartitionLimit 2000, Kafka's default
		for _, name := range topics {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
		}
		if cursor != nil {
			req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: cursor.Topic, Partition: cursor.Partition}
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var pages []string
	var cursor *kmsg.DescribeTopicPartitionsResponseNextCursor
	for range 10 {
		resp := describe(cursor, "dtp-b", "dtp-nope", "dtp-a")
		var page []string
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 {
				page = append(page, *rt.Topic+":"+kerr.ErrorForCode(rt.ErrorCode).(*kerr.Error).Message)
				continue
			}
			for _, p := range rt.Partitions {
				page = append(page, fmt.Sprintf("%s-%d", *rt.Topic, p.Partition))
				if p.ErrorCode != 0 || p.LeaderID != 1 || fmt.Sprint(p.Replicas, p.ISR, p.EligibleLeaderReplicas, p.LastKnownELR, p.OfflineReplicas) != "[1] [1] [] [] []" {
					t.Errorf("%s-%d: %+v", *rt.Topic, p.Partition, p)
				}
			}
		}
		pages = append(pages, strings.Join(page, " "))
		if cursor = resp.NextCursor; cursor == nil {
			break
		}
	}
	want := []string{"dtp-a-0 dtp-a-1", "dtp-a-2 dtp-b-0", "dtp-b-1 dtp-nope:UNKNOWN_TOPIC_OR_PARTITION"}
	if strings.Join(pages, " | ") != strings.Join(want, " | ") {
		t.Fatalf("pages %q, want %q", pages, want)
	}
	if resp := describe(nil, "dtp-nope"); len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("dtp-nope was created: %+v", resp.Topics)
	}
}
