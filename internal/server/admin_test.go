package server_test

import (
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAdminTopicLifecycleAndConfigs(t *testing.T) {
	n := startNode(t, nil)
	adm := n.admin()
	ctx := ctxT(t)

	// Validate-only creates nothing.
	vo, err := adm.ValidateCreateTopics(ctx, 3, 1, nil, "validated")
	if err != nil || vo.Error() != nil {
		t.Fatalf("validate only: %v %v", err, vo.Error())
	}
	if td, _ := adm.ListTopics(ctx, "validated"); td.Has("validated") {
		t.Fatal("validate-only created the topic")
	}

	n.createTopic(t, "cfg", 2, map[string]*string{"retention.ms": ptr("3600000")})
	rc, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]kadm.Config{}
	for _, c := range rc[0].Configs {
		found[c.Key] = c
	}
	if c := found["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := found["segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes: %+v", c)
	}

	// Incremental alter: set, delete, append to a list; bad values refused.
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: ptr("2048")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("compact")},
	}, "cfg")
	if err != nil || alt[0].Err != nil {
		t.Fatalf("alter: %v %v", err, alt)
	}
	rc, _ = adm.DescribeTopicConfigs(ctx, "cfg")
	for _, c := range rc[0].Configs {
		switch c.Key {
		case "max.message.bytes":
			if c.MaybeValue() != "2048" {
				t.Fatalf("max.message.bytes after alter: %s", c.MaybeValue())
			}
		case "retention.ms":
			if c.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("retention.ms not back to default: %+v", c)
			}
		case "cleanup.policy":
			if c.MaybeValue() != "delete,compact" {
				t.Fatalf("cleanup.policy after append: %s", c.MaybeValue())
			}
		}
	}
	bad, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("x")}}, "cfg")
	if len(bad) != 1 || bad[0].Err == nil {
		t.Fatalf("bad value accepted: %+v", bad)
	}
	// The new max.message.bytes applies to produce at once.
	p := n.client(kgo.DefaultProduceTopic("cfg"), kgo.ProducerBatchMaxBytes(1<<20))
	big := make([]byte, 4096)
	rand.Read(big) // incompressible: the client compresses by default
	if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: big}).FirstErr(); err == nil {
		t.Fatal("record above max.message.bytes accepted")
	}

	// Broker configs: describe and a dynamic cluster default.
	bc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bc) == 0 || len(bc[0].Configs) == 0 {
		t.Fatalf("describe broker: %v %+v", err, bc)
	}
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: ptr("7200000")}}); err != nil {
		t.Fatal(err)
	}
	n.createTopic(t, "inherits", 1, nil)
	rc, _ = adm.DescribeTopicConfigs(ctx, "inherits")
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" && (c.MaybeValue() != "7200000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig) {
			t.Fatalf("retention.ms from the dynamic default: %+v", c)
		}
	}

	// Partitions only grow.
	cp, err := adm.CreatePartitions(ctx, 2, "cfg")
	if err != nil || cp["cfg"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cp)
	}
	td, _ := adm.ListTopics(ctx, "cfg")
	if got := len(td["cfg"].Partitions); got != 4 {
		t.Fatalf("partitions after adding 2: %d", got)
	}
	shrink, _ := adm.UpdatePartitions(ctx, 1, "cfg")
	if !errorIs(shrink["cfg"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %+v", shrink["cfg"])
	}

	// Log dirs and cluster description.
	ld, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	sawCfg := false
	ld.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "cfg" {
				sawCfg = true
			}
		})
	})
	if !sawCfg {
		t.Fatal("log dirs do not list topic cfg")
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil || len(md.Brokers) != 1 || md.Controller != md.Brokers[0].NodeID || md.Cluster == "" {
		t.Fatalf("cluster: %v %+v", err, md)
	}

	// Delete, then the name is free again with a new topic ID.
	oldID := td["cfg"].ID
	dr, err := adm.DeleteTopics(ctx, "cfg")
	if err != nil || dr["cfg"].Err != nil {
		t.Fatalf("delete: %v %+v", err, dr)
	}
	n.createTopic(t, "cfg", 1, nil)
	td, _ = adm.ListTopics(ctx, "cfg")
	if td["cfg"].ID == oldID || len(td["cfg"].Partitions) != 1 {
		t.Fatalf("recreated topic: %+v", td["cfg"])
	}
	// Deleted topics stay deleted across a restart, and their data is gone.
	n.restart()
	td, _ = n.admin().ListTopics(ctxT(t))
	if !td.Has("cfg") || td.Has("validated") || len(td["cfg"].Partitions) != 1 {
		t.Fatalf("topics after restart: %v", td.Names())
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "ofle", 1, nil)
	p := n.client(kgo.DefaultProduceTopic("ofle"))
	for i := 0; i < 5; i++ {
		if err := p.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(4)
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ofle"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.OffsetForLeaderEpochResponse)
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 5 {
		t.Fatalf("epoch 0: %+v", got)
	}
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	if got := r.do(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]; got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future leader epoch: %+v", got)
	}
}

func errorIs(err error, want *kerr.Error) bool {
	ke, ok := err.(*kerr.Error)
	if !ok {
		return false
	}
	return ke.Code == want.Code
}
