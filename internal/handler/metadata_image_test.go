package handler

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
)

// clusterImage: broker 1 alive, 2 fenced, 3 registered without the PLAINTEXT listener,
// 4 not registered; topic t's partitions led by each of them in turn, and one with no
// leader.
func clusterImage(t *testing.T) *metadata.Image {
	t.Helper()
	pl := func(port uint16) []metadata.Listener {
		return []metadata.Listener{{Name: "PLAINTEXT", Host: "h", Port: port}}
	}
	id := uuid.UUID{1}
	rs := []metadata.Record{
		&metadata.RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 1, Listeners: pl(9001), Rack: "r1"},
		&metadata.RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 1, Listeners: pl(9002), Fenced: true},
		&metadata.RegisterBrokerRecord{BrokerID: 3, BrokerEpoch: 1, Listeners: []metadata.Listener{{Name: "INTERNAL", Host: "h", Port: 9003}}},
		&metadata.TopicRecord{Name: "t", ID: id},
		&metadata.PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1, 2, 3, 4}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 7},
		&metadata.PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{1, 2}, ISR: []int32{2, 1}, Leader: 2, LeaderEpoch: 3},
		&metadata.PartitionRecord{TopicID: id, Partition: 2, Replicas: []int32{3, 1}, ISR: []int32{3}, Leader: 3},
		&metadata.PartitionRecord{TopicID: id, Partition: 3, Replicas: []int32{4}, ISR: []int32{4}, Leader: 4},
		&metadata.PartitionRecord{TopicID: id, Partition: 4, Replicas: []int32{1}, Leader: metadata.NoLeader, LeaderEpoch: 9},
	}
	im, _, err := metadata.Empty().Apply(metadata.Offset{Index: 1, Term: 1}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestMetadataFromAClusterImage(t *testing.T) {
	im := clusterImage(t)
	var brokers []string
	for _, b := range metadataBrokers(im, "PLAINTEXT") {
		brokers = append(brokers, fmt.Sprintf("%d %s:%d %s", b.NodeID, b.Host, b.Port, *b.Rack))
	}
	if got := fmt.Sprint(brokers); got != "[1 h:9001 r1]" {
		t.Fatalf("brokers: %s (only the unfenced ones with the listener)", got)
	}
	tp := im.Topic("t")
	name := func(code int16) string {
		if code == 0 {
			return "NONE"
		}
		return kerr.ErrorForCode(code).(*kerr.Error).Message
	}
	for _, tc := range []struct {
		version int16
		want    []string // per partition: error leader epoch replicas isr offline
	}{
		{12, []string{
			"NONE 1 7 [1 2 3 4] [1 2] [2 3 4]",
			"NONE 2 3 [1 2] [2 1] [2]", // a fenced leader is still the leader (the controller moves it)
			"LISTENER_NOT_FOUND -1 0 [3 1] [3] [3]",
			"LEADER_NOT_AVAILABLE -1 0 [4] [4] [4]",
			"LEADER_NOT_AVAILABLE -1 9 [1] [] []",
		}},
		{5, []string{
			"NONE 1 7 [1 2 3 4] [1 2] [2 3 4]",
			"NONE 2 3 [1 2] [2 1] [2]",
			"LEADER_NOT_AVAILABLE -1 0 [3 1] [3] [3]",
			"LEADER_NOT_AVAILABLE -1 0 [4] [4] [4]",
			"LEADER_NOT_AVAILABLE -1 9 [1] [] []",
		}},
		{0, []string{
			"REPLICA_NOT_AVAILABLE 1 7 [1 2] [1 2] [2 3 4]",
			"NONE 2 3 [1 2] [2 1] [2]",
			"LEADER_NOT_AVAILABLE -1 0 [1] [] [3]",
			"LEADER_NOT_AVAILABLE -1 0 [] [] [4]",
			"LEADER_NOT_AVAILABLE -1 9 [1] [] []",
		}},
	} {
		rt := topicMetadata(im, tp, "PLAINTEXT", tc.version)
		if rt.TopicID != tp.ID || *rt.Topic != "t" || len(rt.Partitions) != len(tc.want) {
			t.Fatalf("v%d: topic %+v", tc.version, rt)
		}
		for i, p := range rt.Partitions {
			got := fmt.Sprintf("%s %d %d %v %v %v", name(p.ErrorCode), p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.OfflineReplicas)
			if p.Partition != int32(i) || got != tc.want[i] {
				t.Errorf("v%d partition %d: %s, want %s", tc.version, i, got, tc.want[i])
			}
		}
	}
}
