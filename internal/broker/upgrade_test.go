package broker

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metaprops"
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

// TestOpenUpgradesSingleNodeToQuorum: a data dir written by the single node before the
// metadata quorum (its binary metadata.log and meta.properties without a directory.id)
// starts with its whole image as the first snapshot of a quorum of one: every topic, its
// partitions (hosted, none set aside), topic and cluster-wide configs and the producer
// ID position survive; meta.properties gains a directory.id; the old file is moved aside,
// not deleted; and the next start opens the quorum's log alone.
func TestOpenUpgradesSingleNodeToQuorum(t *testing.T) {
	mem := vfs.NewMem()
	store, err := metadata.Open(mem, "/data/"+metadataDirName, metadata.Options{NodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	orders, logs := uuid.New(), uuid.New()
	day, lz4 := "86400000", "lz4"
	self := []int32{1}
	changes := [][]metadata.Record{
		{&metadata.ClusterIDRecord{ID: "upgradedCluster0000001"}},
		{&metadata.TopicRecord{Name: "orders", ID: orders},
			&metadata.PartitionRecord{TopicID: orders, Partition: 0, Replicas: self, ISR: self, Leader: 1},
			&metadata.PartitionRecord{TopicID: orders, Partition: 1, Replicas: self, ISR: self, Leader: 1},
			&metadata.PartitionRecord{TopicID: orders, Partition: 2, Replicas: self, ISR: self, Leader: 1},
			&metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: &day}},
		{&metadata.TopicRecord{Name: "logs", ID: logs},
			&metadata.PartitionRecord{TopicID: logs, Partition: 0, Replicas: self, ISR: self, Leader: 1}},
		{&metadata.ConfigRecord{ResourceType: metadata.ResourceBroker, Name: "compression.type", Value: &lz4}},
		{&metadata.ProducerIDsRecord{BrokerID: 1, BrokerEpoch: -1, FirstID: 0, Size: 1000}},
		{&metadata.ProducerIDsRecord{BrokerID: 1, BrokerEpoch: -1, FirstID: 1000, Size: 1000}},
	}
	for _, rs := range changes {
		if _, err := store.Apply(func(*metadata.Image) ([]metadata.Record, error) { return rs, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, mem, "/data/meta.properties", []byte("version=1\ncluster.id=upgradedCluster0000001\nnode.id=1\n"))

	// A quorum of several voters cannot start from one node's metadata.
	_, err = openBrokerOn(t, mem, nil, map[string]string{"controller.quorum.voters": "1@h1:9093,2@h2:9093",
		"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.listener.names": "CONTROLLER"})
	if err == nil || !strings.Contains(err.Error(), "can only be upgraded as a quorum of one") {
		t.Fatalf("upgrade into a quorum of two: %v", err)
	}

	var logBuf syncBuffer
	b := mustOpenBroker(t, mem, &logBuf, nil)
	check := func(b *Broker, when string) {
		t.Helper()
		im := b.Image()
		if b.ClusterID() != "upgradedCluster0000001" || im.ClusterID() != b.ClusterID() {
			t.Fatalf("%s: cluster ID %q, image %q", when, b.ClusterID(), im.ClusterID())
		}
		for name, n := range map[string]int{"orders": 3, "logs": 1} {
			mt, ht := im.Topic(name), b.Topic(name)
			if mt == nil || ht == nil || mt.NumPartitions() != int32(n) || len(ht.Partitions) != n || slices.Contains(ht.Partitions, nil) {
				t.Fatalf("%s: topic %s: image %v, hosted %+v", when, name, mt, ht)
			}
		}
		if im.Topic("orders").ID != orders || b.TopicConfig(im.Topic("orders").Configs).Retention.Milliseconds() != 86400000 {
			t.Fatalf("%s: orders' ID or retention.ms lost", when)
		}
		if got := b.TopicConfig(nil).CompressionType; got != "lz4" {
			t.Fatalf("%s: the cluster-wide compression.type is %q", when, got)
		}
		if len(strayDirs(t, mem, "orders")) != 0 || len(strayDirs(t, mem, "logs")) != 0 {
			t.Fatalf("%s: partitions set aside", when)
		}
	}
	check(b, "after the upgrade")
	if id, err := b.AllocateProducerID(); err != nil || id != 2000 {
		t.Fatalf("first producer ID after the upgrade: %d %v", id, err)
	}
	p, err := metaprops.Read(mem, "/data")
	if err != nil || p.ClusterID != "upgradedCluster0000001" || p.NodeID != 1 || p.DirectoryID == "" {
		t.Fatalf("meta.properties after the upgrade: %+v %v", p, err)
	}
	if _, err := mem.Stat("/data/" + metadataDirName + "/metadata.log"); err == nil {
		t.Fatal("the old metadata log is still in the quorum's directory")
	}
	if _, err := mem.Stat("/data/metadata.log.pre-quorum"); err != nil {
		t.Fatalf("the old metadata log was not kept: %v", err)
	}
	if !strings.Contains(logBuf.String(), "moved aside") {
		t.Fatalf("the upgrade is not logged: %s", logBuf.String())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = mustOpenBroker(t, mem, nil, nil)
	defer b.Close()
	check(b, "after a restart")
	if id, err := b.AllocateProducerID(); err != nil || id < 3000 {
		t.Fatalf("a producer ID after the restart: %d %v (the block from 2000 was handed out)", id, err)
	}
}
