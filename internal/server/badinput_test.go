package server_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
)

func TestOversizedFrameClosesConnection(t *testing.T) {
	n := startNode(t, map[string]string{"socket.request.max.bytes": "1024"})
	r := dialRaw(t, n.addr)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 1<<30) // never allocated
	r.write(b[:])
	r.expectClosed()
}

func TestNegativeFrameClosesConnection(t *testing.T) {
	n := startNode(t, nil)
	r := dialRaw(t, n.addr)
	r.write([]byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3})
	r.expectClosed()
}

func TestHalfFrameStallIsClosed(t *testing.T) {
	n := startNode(t, map[string]string{"request.timeout.ms": "300"})
	r := dialRaw(t, n.addr)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 1000)
	r.write(b[:])
	r.write([]byte{0, 18, 0, 0}) // 4 of 1000 bytes, then nothing
	r.expectClosed()
}

func TestUnknownApiKeyClosesConnection(t *testing.T) {
	n := startNode(t, nil)
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrApiVersionsRequest()
	f := frame(req, 1)
	binary.BigEndian.PutUint16(f[4:], 9999)
	r.write(f)
	r.expectClosed()
}

func TestUnsupportedVersionOfOtherApiClosesConnection(t *testing.T) {
	n := startNode(t, nil)
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	f := frame(req, 1)
	binary.BigEndian.PutUint16(f[6:], 99)
	r.write(f)
	r.expectClosed()
}

func TestApiVersionsUnknownVersionKIP511(t *testing.T) {
	n := startNode(t, nil)
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1.0"
	f := frame(req, 7)
	binary.BigEndian.PutUint16(f[6:], 99) // a version from the future
	r.write(f)
	corr, body, err := r.readFrame()
	if err != nil || corr != 7 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 18 {
			found = k.MaxVersion >= 3
		}
	}
	if !found {
		t.Fatalf("ApiVersions range missing: %+v", resp.ApiKeys)
	}
	// The connection stays usable.
	ok := r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if ok.ErrorCode != 0 {
		t.Fatalf("v0 retry: %d", ok.ErrorCode)
	}
}

func produceRaw(t *testing.T, r *rawConn, topic string, acks int16, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

func buildBatch(t *testing.T, opts batch.BuildOptions, values ...string) []byte {
	t.Helper()
	var recs []batch.Record
	for _, v := range values {
		recs = append(recs, batch.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()})
	}
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCorruptAndOversizedBatches(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "bad", 1, map[string]*string{"max.message.bytes": ptr("2000")})
	r := dialRaw(t, n.addr)

	good := buildBatch(t, batch.BuildOptions{}, "a", "b")
	if p := produceRaw(t, r, "bad", -1, good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch: %+v", p)
	}
	corrupt := buildBatch(t, batch.BuildOptions{}, "c")
	corrupt[len(corrupt)-1] ^= 0xff // breaks the CRC
	if p := produceRaw(t, r, "bad", -1, corrupt); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch: code %d", p.ErrorCode)
	}
	big := buildBatch(t, batch.BuildOptions{}, strings.Repeat("x", 3000))
	if p := produceRaw(t, r, "bad", -1, big); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("oversized batch: code %d", p.ErrorCode)
	}
	short := good[:len(good)-3]
	if p := produceRaw(t, r, "bad", -1, short); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("short batch: code %d", p.ErrorCode)
	}
	// Nothing but the good batch was appended.
	next := buildBatch(t, batch.BuildOptions{}, "d")
	if p := produceRaw(t, r, "bad", -1, next); p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("after bad batches: %+v", p)
	}
	if p := produceRaw(t, r, "bad", 5, next); p.ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=5: %+v", p)
	}
	if p := produceRaw(t, r, "nosuchtopic", 1, next); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", p)
	}
}

func ptr(s string) *string { return &s }

func TestInvalidTopicsAndConfigs(t *testing.T) {
	n := startNode(t, nil)
	r := dialRaw(t, n.addr)
	create := func(name string, partitions int32, configs map[string]string) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		for k, v := range configs {
			v := v
			rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
		}
		req.Topics = append(req.Topics, rt)
		return r.do(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	cases := []struct {
		name       string
		topic      string
		partitions int32
		configs    map[string]string
		want       int16
	}{
		{"bad characters", "a/b", 1, nil, kerr.InvalidTopicException.Code},
		{"dot", ".", 1, nil, kerr.InvalidTopicException.Code},
		{"too long", strings.Repeat("x", 250), 1, nil, kerr.InvalidTopicException.Code},
		{"zero partitions", "zero", 0, nil, kerr.InvalidPartitions.Code},
		{"unknown config", "cfg1", 1, map[string]string{"no.such.config": "1"}, kerr.InvalidConfig.Code},
		{"bad value", "cfg2", 1, map[string]string{"retention.ms": "soon"}, kerr.InvalidConfig.Code},
		{"bad enum", "cfg3", 1, map[string]string{"cleanup.policy": "shred"}, kerr.InvalidConfig.Code},
		{"ok", "fine", 2, map[string]string{"retention.ms": "1000"}, 0},
		{"exists", "fine", 2, nil, kerr.TopicAlreadyExists.Code},
		{"collides", "fi.ne", 1, nil, 0},
		{"collision", "fi_ne", 1, nil, kerr.InvalidTopicException.Code},
	}
	for _, c := range cases {
		if got := create(c.topic, c.partitions, c.configs); got != c.want {
			t.Errorf("%s: error code %d, want %d", c.name, got, c.want)
		}
	}
	// Replication factor larger than the live brokers.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "rf3", 1, 3
	req.Topics = append(req.Topics, rt)
	if code := r.do(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.InvalidReplicationFactor.Code {
		t.Errorf("rf 3: %d", code)
	}
}

func TestOldProduceVersionsRefusedPerPartition(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "old", 1, nil)
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(2)
	req.Acks = 1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "old"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedForMessageFormat.Code {
		t.Fatalf("produce v2: code %d", code)
	}
}

// A request header's client id of length -2 is malformed (only -1 means null): the
// connection is closed, as Kafka does for a header it cannot read; -1 is answered.
func TestClientIDNegativeLengthClosesConnection(t *testing.T) {
	n := startNode(t, nil)
	withClientIDLength := func(length int16) []byte {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(1) // header v1: key, version, correlation id, client id
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
		b = req.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	null := dialRaw(t, n.addr)
	null.write(withClientIDLength(-1))
	if corr, _, err := null.readFrame(); err != nil || corr != 1 {
		t.Fatalf("null client id: corr %d, %v", corr, err)
	}
	bad := dialRaw(t, n.addr)
	bad.write(withClientIDLength(-2))
	bad.expectClosed()
}
