package server_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads n records from the start of topic.
func consumeAll(t *testing.T, n *node, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := n.client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d records: %v", len(out), err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestFranzProduceConsumeAllCodecs(t *testing.T) {
	n := startNode(t, nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "franz-" + name
			n.createTopic(t, topic, 3, nil)
			p := n.client(kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const count = 500
			ts := time.UnixMilli(1_700_000_000_000)
			var recs []*kgo.Record
			for i := 0; i < count; i++ {
				recs = append(recs, &kgo.Record{
					Key:       []byte(fmt.Sprintf("k%d", i%7)),
					Value:     bytes.Repeat([]byte{byte(i)}, i%300),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}},
					Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
				})
			}
			if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			got := consumeAll(t, n, topic, count)
			if len(got) != count {
				t.Fatalf("got %d records, want %d", len(got), count)
			}
			byHeader := map[string]*kgo.Record{}
			nextOffset := map[int32]int64{}
			for _, r := range got {
				if r.Offset != nextOffset[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, nextOffset[r.Partition])
				}
				nextOffset[r.Partition]++
				byHeader[string(r.Headers[0].Value)] = r
			}
			for i, want := range recs {
				r := byHeader[fmt.Sprint(i)]
				if r == nil || !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) || !r.Timestamp.Equal(want.Timestamp) {
					t.Fatalf("record %d differs: got %+v", i, r)
				}
			}
		})
	}
}

func TestFranzOffsetsAndTimestamps(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "seek", 1, nil)
	p := n.client(kgo.DefaultProduceTopic("seek"))
	base := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < 100; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := p.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := n.admin()
	ctx := ctxT(t)
	start, err := adm.ListStartOffsets(ctx, "seek")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "seek")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("seek", 0); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	if o, _ := end.Lookup("seek", 0); o.Offset != 100 {
		t.Fatalf("end offset %d", o.Offset)
	}
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(42500*time.Millisecond).UnixMilli(), "seek")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("seek", 0); o.Offset != 43 || o.Timestamp != base.Add(43*time.Second).UnixMilli() {
		t.Fatalf("offset for timestamp: %+v", o)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "seek")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("seek", 0); o.Offset != 100 {
		// kadm maps "no such record" (-1) to the end offset.
		t.Fatalf("offset after the last timestamp: %+v", o)
	}

	// Consume from offset 90.
	cl := n.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"seek": {0: kgo.NewOffset().At(90)}}))
	var got []string
	for len(got) < 10 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != "90" || got[9] != "99" {
		t.Fatalf("from offset 90: %v", got)
	}

	// DeleteRecords moves the log start offset.
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"seek": {0: {Topic: "seek", Partition: 0, At: 50}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("seek", 0); r.Err != nil || r.LowWatermark != 50 {
		t.Fatalf("delete records: %+v", r)
	}
	start, _ = adm.ListStartOffsets(ctx, "seek")
	if o, _ := start.Lookup("seek", 0); o.Offset != 50 {
		t.Fatalf("start offset after delete records: %d", o.Offset)
	}
}

func TestRestartKeepsData(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "durable", 2, nil)
	p := n.client(kgo.DefaultProduceTopic("durable"))
	for i := 0; i < 200; i++ {
		if err := p.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	n.restart()
	got := consumeAll(t, n, "durable", 200)
	if len(got) != 200 {
		t.Fatalf("after restart: %d records", len(got))
	}
	// Offsets continue after a restart.
	p2 := n.client(kgo.DefaultProduceTopic("durable"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Value: []byte("after"), Partition: 0}
	if err := p2.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var p0 int64
	for _, g := range got {
		if g.Partition == 0 {
			p0++
		}
	}
	if r.Offset != p0 {
		t.Fatalf("offset after restart %d, want %d", r.Offset, p0)
	}
}
