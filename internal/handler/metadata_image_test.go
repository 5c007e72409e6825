package handler

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestDescribeClusterFromAClusterImage: DescribeCluster lists the unfenced brokers with the
// clients' listener; v2 with IncludeFencedBrokers adds the fenced ones, marked IsFenced
// (KIP-1073); a request for another endpoint type is refused as Kafka's brokers refuse
// it.
func TestDescribeClusterFromAClusterImage(t *testing.T) {
	im := clusterImage(t)
	describe := func(version int16, includeFenced bool, endpoint int8) *kmsg.DescribeClusterResponse {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version, req.IncludeFencedBrokers, req.EndpointType = version, includeFenced, endpoint
		return describeClusterFrom(im, "PLAINTEXT", "cid", 1, req)
	}
	brokers := func(r *kmsg.DescribeClusterResponse) string {
		var out []string
		for _, b := range r.Brokers {
			out = append(out, fmt.Sprintf("%d %s:%d fenced=%v", b.NodeID, b.Host, b.Port, b.IsFenced))
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		version       int16
		includeFenced bool
		want          string
	}{
		{0, false, "[1 h:9001 fenced=false]"},
		{1, false, "[1 h:9001 fenced=false]"},
		{2, false, "[1 h:9001 fenced=false]"},
		{2, true, "[1 h:9001 fenced=false 2 h:9002 fenced=true]"},
		{1, true, "[1 h:9001 fenced=false]"}, // the field does not exist before v2
	} {
		r := describe(tc.version, tc.includeFenced, endpointBrokers)
		if got := brokers(r); got != tc.want || r.ErrorCode != 0 || r.ClusterID != "cid" || r.ControllerID != 1 {
			t.Errorf("v%d includeFenced=%v: error %d cluster %q controller %d brokers %s, want %s", tc.version, tc.includeFenced, r.ErrorCode, r.ClusterID, r.ControllerID, got, tc.want)
		}
	}
	if r := describe(1, false, endpointControllers); r.ErrorCode != kerr.MismatchedEndpointType.Code || len(r.Brokers) != 0 {
		t.Errorf("controllers' endpoints asked of a broker: error %d, brokers %v; want MISMATCHED_ENDPOINT_TYPE", r.ErrorCode, r.Brokers)
	}
	if r := describe(2, false, 7); r.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Errorf("endpoint type 7: error %d, want UNSUPPORTED_ENDPOINT_TYPE", r.ErrorCode)
	}
}

// TestControllerIDFromAClusterImage: the controller named is the quorum's leader when it
// is an unfenced broker with the clients' listener, else a random such broker (Kafka's
// KRaft brokers always name a random alive one), else -1.
func TestControllerIDFromAClusterImage(t *testing.T) {
	im := clusterImage(t) // broker 1 alive; 2 fenced; 3 without PLAINTEXT; 4 unregistered
	for leader, want := range map[int32]int32{1: 1, 2: 1, 3: 1, 4: 1, 9: 1, -1: 1} {
		if got := controllerID(im, "PLAINTEXT", leader); got != want {
			t.Errorf("quorum leader %d: controller %d, want %d", leader, got, want)
		}
	}
	if got := controllerID(im, "OTHER", 1); got != -1 {
		t.Errorf("no broker with the listener: controller %d, want -1", got)
	}
	// Two alive brokers and a controller-only leader (node 9): either broker, and both
	// over enough tries.
	rs := []metadata.Record{&metadata.RegisterBrokerRecord{BrokerID: 5, BrokerEpoch: 1,
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "h", Port: 9005}}}}
	im2, _, err := im.Apply(metadata.Offset{Index: 2, Term: 1}, rs)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for range 200 {
		id := controllerID(im2, "PLAINTEXT", 9)
		if id != 1 && id != 5 {
			t.Fatalf("controller-only leader: controller %d, want 1 or 5", id)
		}
		seen[id] = true
	}
	if len(seen) != 2 {
		t.Errorf("controller-only leader: 200 answers named only %v, want a random choice of 1 and 5", seen)
	}
}
