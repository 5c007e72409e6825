package handler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// pagingImage: brokers 1 and 2 alive, 3 fenced; topics __consumer_offsets (1 partition,
// internal), a (3), b (2), c (1). b-1 has lost its ISR to its ELR (KIP-966): no leader,
// ISR empty, ELR [3 2], last known ELR [1]. c-0's leader is the fenced broker 3.
func pagingImage(t *testing.T) *metadata.Image {
	t.Helper()
	pl := func(port uint16) []metadata.Listener {
		return []metadata.Listener{{Name: "PLAINTEXT", Host: "h", Port: port}}
	}
	rs := []metadata.Record{
		&metadata.RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 1, Listeners: pl(9001)},
		&metadata.RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 1, Listeners: pl(9002)},
		&metadata.RegisterBrokerRecord{BrokerID: 3, BrokerEpoch: 1, Listeners: pl(9003), Fenced: true},
	}
	for i, tp := range []struct {
		name string
		n    int
	}{{"c", 1}, {"a", 3}, {"__consumer_offsets", 1}, {"b", 2}} {
		id := uuid.UUID{byte(i + 1)}
		rs = append(rs, &metadata.TopicRecord{Name: tp.name, ID: id})
		for p := range tp.n {
			pr := &metadata.PartitionRecord{TopicID: id, Partition: int32(p), Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: int32(1 + p%2), LeaderEpoch: int32(p)}
			switch {
			case tp.name == "b" && p == 1:
				pr.Replicas, pr.ISR, pr.Leader, pr.LeaderEpoch = []int32{1, 2, 3}, nil, metadata.NoLeader, 5
				pr.ELR, pr.LastKnownELR = []int32{3, 2}, []int32{1}
			case tp.name == "c":
				pr.Replicas, pr.ISR, pr.Leader = []int32{3, 1}, []int32{3, 1}, 3
			}
			rs = append(rs, pr)
		}
	}
	im, _, err := metadata.Empty().Apply(metadata.Offset{Index: 1, Term: 1}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// dtpRequest is a DescribeTopicPartitions request for topics (none: every topic) with
// limit, from the cursor "topic/partition" if not "".
func dtpRequest(limit int32, cursor string, topics ...string) *kmsg.DescribeTopicPartitionsRequest {
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = limit
	for _, n := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = n
		req.Topics = append(req.Topics, rt)
	}
	if cursor != "" {
		name, p, _ := strings.Cut(cursor, "/")
		c := kmsg.NewDescribeTopicPartitionsRequestCursor()
		c.Topic = name
		fmt.Sscan(p, &c.Partition)
		req.Cursor = &c
	}
	return req
}

// dtpString renders an answer: per topic "name[error]" and its partitions' indexes, then
// "next=topic/partition" if there is a cursor.
func dtpString(resp *kmsg.DescribeTopicPartitionsResponse) string {
	var out []string
	for _, t := range resp.Topics {
		s := *t.Topic
		if t.ErrorCode != 0 {
			s += "[" + kerr.ErrorForCode(t.ErrorCode).(*kerr.Error).Message + "]"
		}
		for _, p := range t.Partitions {
			s += fmt.Sprintf(" %d", p.Partition)
		}
		out = append(out, s)
	}
	if c := resp.NextCursor; c != nil {
		out = append(out, fmt.Sprintf("next=%s/%d", c.Topic, c.Partition))
	}
	return strings.Join(out, "; ")
}

// TestDescribeTopicPartitionsPaging: every topic, sorted by name, in pages of at most the
// limit; the cursor points at the first partition left out, or at partition 0 of the
// next topic when the limit ran out exactly at a topic's end; following the cursors
// describes every partition once.
func TestDescribeTopicPartitionsPaging(t *testing.T) {
	im := pagingImage(t)
	for _, tc := range []struct {
		limit int32
		pages []string
	}{
		{2000, []string{"__consumer_offsets 0; a 0 1 2; b 0 1; c 0"}},
		{2, []string{
			"__consumer_offsets 0; a 0; next=a/1",
			"a 1 2; next=b/0",
			"b 0 1; next=c/0",
			"c 0",
		}},
		{3, []string{
			"__consumer_offsets 0; a 0 1; next=a/2",
			"a 2; b 0 1; next=c/0",
			"c 0",
		}},
		{1, []string{
			"__consumer_offsets 0; next=a/0", "a 0; next=a/1", "a 1; next=a/2", "a 2; next=b/0",
			"b 0; next=b/1", "b 1; next=c/0", "c 0",
		}},
	} {
		cursor := ""
		var pages []string
		for range 10 {
			resp := describeTopicPartitionsFrom(im, "PLAINTEXT", 2000, dtpRequest(tc.limit, cursor))
			pages = append(pages, dtpString(resp))
			if resp.NextCursor == nil {
				break
			}
			cursor = fmt.Sprintf("%s/%d", resp.NextCursor.Topic, resp.NextCursor.Partition)
		}
		if !slices.Equal(pages, tc.pages) {
			t.Errorf("limit %d: pages\n%q\nwant\n%q", tc.limit, pages, tc.pages)
		}
	}
	// The broker's max.request.partition.size.limit caps the client's limit.
	if got := dtpString(describeTopicPartitionsFrom(im, "PLAINTEXT", 2, dtpRequest(2000, ""))); got != "__consumer_offsets 0; a 0; next=a/1" {
		t.Errorf("capped by the broker's limit: %s", got)
	}
	// A limit of 0 describes nothing and points at the first topic; a negative one
	// answers nothing at all (Kafka's arithmetic).
	for limit, want := range map[int32]string{0: "next=__consumer_offsets/0", -1: ""} {
		if got := dtpString(describeTopicPartitionsFrom(im, "PLAINTEXT", 2000, dtpRequest(limit, ""))); got != want {
			t.Errorf("limit %d: %q, want %q", limit, got, want)
		}
	}
}

// TestDescribeTopicPartitionsNamed: named topics, deduplicated and sorted, unknown ones
// answered with their error at their place and costing no partition; a cursor in the middle
// of a topic starts it there and leaves out the topics before it; a cursor topic missing
// from the list or a negative cursor partition is INVALID_REQUEST for every topic.
func TestDescribeTopicPartitionsNamed(t *testing.T) {
	im := pagingImage(t)
	for _, tc := range []struct {
		limit  int32
		cursor string
		topics []string
		want   string
	}{
		{2000, "", []string{"c", "nope", "a", "bad/name", "a"}, "a 0 1 2; bad/name[INVALID_TOPIC_EXCEPTION]; c 0; nope[UNKNOWN_TOPIC_OR_PARTITION]"},
		{2000, "a/1", []string{"c", "b", "a", "__consumer_offsets"}, "a 1 2; b 0 1; c 0"},
		{2, "a/1", []string{"c", "b", "a"}, "a 1 2; next=b/0"},
		{3, "b/1", []string{"c", "b", "a", "bb"}, "b 1; bb[UNKNOWN_TOPIC_OR_PARTITION]; c 0"},
		// An unknown topic reached with nothing left is where the next page starts.
		{2, "", []string{"b", "bb"}, "b 0 1; next=bb/0"},
		// A cursor past the end of its topic: the topic with no partition.
		{2000, "a/7", []string{"a", "b"}, "a; b 0 1"},
		{2000, "b/0", []string{"a", "c"}, "a[INVALID_REQUEST]; c[INVALID_REQUEST]"},
		{2000, "a/-1", []string{"a", "c"}, "a[INVALID_REQUEST]; c[INVALID_REQUEST]"},
		{2000, "a/-1", nil, ""},
	} {
		resp := describeTopicPartitionsFrom(im, "PLAINTEXT", 2000, dtpRequest(tc.limit, tc.cursor, tc.topics...))
		if got := dtpString(resp); got != tc.want {
			t.Errorf("limit %d cursor %q topics %q: %q, want %q", tc.limit, tc.cursor, tc.topics, got, tc.want)
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 && (rt.TopicID != [16]byte{} || len(rt.Partitions) != 0) {
				t.Errorf("%s: an error with topic ID %x and %d partitions", *rt.Topic, rt.TopicID, len(rt.Partitions))
			}
		}
	}
}

// TestDescribeTopicPartitionsFields: each partition as Metadata gives it (leader, epoch,
// replicas, ISR, offline replicas) with its ELR and last known ELR and no error; topic IDs,
// internal topics flagged, authorized operations not given, as Metadata answers.
func TestDescribeTopicPartitionsFields(t *testing.T) {
	im := pagingImage(t)
	resp := describeTopicPartitionsFrom(im, "PLAINTEXT", 2000, dtpRequest(2000, ""))
	var got []string
	for _, rt := range resp.Topics {
		want := im.Topic(*rt.Topic)
		if rt.TopicID != want.ID || rt.IsInternal != (*rt.Topic == "__consumer_offsets") || rt.AuthorizedOperations != authorizedOpsNotRequested || rt.ErrorCode != 0 {
			t.Errorf("topic %s: id %x internal %v ops %d error %d", *rt.Topic, rt.TopicID, rt.IsInternal, rt.AuthorizedOperations, rt.ErrorCode)
		}
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 {
				t.Errorf("%s-%d: error %d", *rt.Topic, p.Partition, p.ErrorCode)
			}
			got = append(got, fmt.Sprintf("%s-%d %d %d %v %v %v %v %v", *rt.Topic, p.Partition, p.LeaderID, p.LeaderEpoch,
				p.Replicas, p.ISR, p.EligibleLeaderReplicas, p.LastKnownELR, p.OfflineReplicas))
		}
	}
	want := []string{
		// partition leader epoch replicas isr elr last-known-elr offline
		"__consumer_offsets-0 1 0 [1 2] [1 2] [] [] []",
		"a-0 1 0 [1 2] [1 2] [] [] []",
		"a-1 2 1 [1 2] [1 2] [] [] []",
		"a-2 1 2 [1 2] [1 2] [] [] []",
		"b-0 1 0 [1 2] [1 2] [] [] []",
		"b-1 -1 5 [1 2 3] [] [3 2] [1] [3]",
		"c-0 3 0 [3 1] [3 1] [] [] [3]", // a fenced leader is still the leader, as in Metadata
	}
	if !slices.Equal(got, want) {
		t.Errorf("partitions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same partition fields as Metadata's, for the image with brokers missing the
	// listener or not registered at all.
	cim := clusterImage(t)
	tp := cim.Topic("t")
	mt := topicMetadata(cim, tp, "PLAINTEXT", 12)
	dt := describeTopicPartitionsFrom(cim, "PLAINTEXT", 2000, dtpRequest(2000, "", "t"))
	for i, mp := range mt.Partitions {
		dp := dt.Topics[0].Partitions[i]
		if dp.LeaderID != mp.Leader || dp.LeaderEpoch != mp.LeaderEpoch || !slices.Equal(dp.Replicas, mp.Replicas) ||
			!slices.Equal(dp.ISR, mp.ISR) || !slices.Equal(dp.OfflineReplicas, mp.OfflineReplicas) || dp.ErrorCode != 0 {
			t.Errorf("t-%d: DescribeTopicPartitions %+v, Metadata %+v", i, dp, mp)
		}
	}
}
