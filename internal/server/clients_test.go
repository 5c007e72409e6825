package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

func TestSaramaProduceConsume(t *testing.T) {
	n := startNode(t, nil)
	codecs := map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "sarama-" + name
			cfg := sarama.NewConfig()
			cfg.Version = sarama.V3_6_0_0
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Compression = codec
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Metadata.AllowAutoTopicCreation = true
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			prod, err := sarama.NewSyncProducer([]string{n.addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			const count = 100
			var msgs []*sarama.ProducerMessage
			for i := 0; i < count; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{
					Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
					Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(fmt.Sprint(i))}},
				})
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatalf("send: %v", err)
			}
			for i, m := range msgs {
				if m.Offset != int64(i) {
					t.Fatalf("message %d at offset %d", i, m.Offset)
				}
			}
			cons, err := sarama.NewConsumer([]string{n.addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for i := 0; i < count; i++ {
				select {
				case m := <-pc.Messages():
					if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) ||
						len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(i) {
						t.Fatalf("message %d: offset %d key %s value %s", i, m.Offset, m.Key, m.Value)
					}
				case err := <-pc.Errors():
					t.Fatal(err)
				case <-time.After(30 * time.Second):
					t.Fatalf("timed out after %d messages", i)
				}
			}
		})
	}
}

func TestKafkaGoProduceConsume(t *testing.T) {
	n := startNode(t, nil)
	codecs := map[string]compress.Compression{
		"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd,
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "kafkago-" + name
			n.createTopic(t, topic, 1, nil)
			// A transport per writer: the shared default caches metadata for its TTL and would
			// not yet know a topic created a moment ago, against Kafka too.
			w := &kafkago.Writer{Addr: kafkago.TCP(n.addr), Topic: topic, Transport: &kafkago.Transport{}, Compression: codec, RequiredAcks: kafkago.RequireAll, BatchTimeout: 10 * time.Millisecond}
			defer w.Close()
			var msgs []kafkago.Message
			for i := 0; i < 100; i++ {
				msgs = append(msgs, kafkago.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
					Headers: []kafkago.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{n.addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for i := 0; i < 100; i++ {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) ||
					len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(i) {
					t.Fatalf("message %d: %+v", i, m)
				}
			}
			// Seek by offset.
			if err := r.SetOffset(42); err != nil {
				t.Fatal(err)
			}
			m, err := r.ReadMessage(ctx)
			if err != nil || m.Offset != 42 {
				t.Fatalf("after seek: %v %d", err, m.Offset)
			}
		})
	}
}
