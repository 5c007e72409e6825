package broker

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/vfs"
)

// TestOpenUpgradesJSONMetadata: a node whose metadata log holds the JSON records of
// earlier versions (../metadata/testdata/json-metadata.log, written by such a node)
// opens with every topic hosted and led by itself, none of its partitions set aside,
// its producer IDs continuing after the ones handed out, and registers itself.
func TestOpenUpgradesJSONMetadata(t *testing.T) {
	old, err := os.ReadFile("../metadata/testdata/json-metadata.log")
	if err != nil {
		t.Fatal(err)
	}
	mem := vfs.NewMem()
	if err := mem.MkdirAll("/data/"+metadataDirName, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(mem, "/data/"+metadataDirName+"/metadata.log", old); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	b := mustOpenBroker(t, mem, &logs, map[string]string{"broker.rack": "r9"})
	defer b.Close()
	if !strings.Contains(logs.String(), "upgraded from JSON to binary") || strings.Contains(logs.String(), "stray") {
		t.Fatalf("log: %s", logs.String())
	}
	im := b.Image()
	if im.ClusterID() != "legacy-cluster-0000001" || b.ClusterID() != im.ClusterID() {
		t.Fatalf("cluster ID %q", im.ClusterID())
	}
	for name, parts := range map[string]int{"orders": 3, "a.b": 2, "logs": 4, "gone": 2} {
		mt, ht := im.Topic(name), b.Topic(name)
		if mt == nil || ht == nil || len(ht.Partitions) != parts || mt.NumPartitions() != int32(parts) || ht.ID != mt.ID {
			t.Fatalf("topic %s: image %v, hosted %v", name, mt, ht)
		}
		for i := range mt.Partitions {
			if p := &mt.Partitions[i]; p.Leader != 1 || !slices.Equal(p.Replicas(), []int32{1}) {
				t.Fatalf("%s-%d: leader %d replicas %v", name, i, p.Leader, p.Replicas())
			}
		}
	}
	if got := b.TopicConfig(im.Topic("orders").Configs).Retention.Milliseconds(); got != 86400000 {
		t.Fatalf("orders retention.ms %d", got)
	}
	if id, err := b.AllocateProducerID(); err != nil || id != 2000 {
		t.Fatalf("first producer ID after the upgrade: %d %v", id, err)
	}
	if err := b.SetAdvertised([]string{"127.0.0.1:9092"}); err != nil {
		t.Fatal(err)
	}
	reg := b.Image().Broker(1)
	if reg == nil || reg.Rack != "r9" || reg.Fenced || len(reg.Listeners) != 1 ||
		reg.Listeners[0] != (metadata.Listener{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}) {
		t.Fatalf("registration: %+v", reg)
	}
}
