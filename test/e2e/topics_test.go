package e2e

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAutoCreateTopics: with auto.create.topics.enable (the default), a
// producer's metadata request for a topic that does not exist creates it
// with num.partitions partitions, whichever client asks; then the records
// are there.
func TestAutoCreateTopics(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "num.partitions=1")
	ctx := context.Background()
	for i, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := "auto-" + c.name
			if c.name == "franz-go" {
				// kgo asks for auto-creation only when told to
				// (AllowAutoTopicCreation); check both answers of the
				// broker to its Metadata request first.
				if metadataAutoCreate(t, srv.Addr, topic, false) {
					t.Fatalf("Metadata with allow_auto_topic_creation=false created %s", topic)
				}
				if !metadataAutoCreate(t, srv.Addr, topic, true) {
					t.Fatalf("Metadata with allow_auto_topic_creation=true did not create %s", topic)
				}
			}
			want := genRecords(uint64(50+i), c.spec(genSpec{partitions: 1, perPart: 5,
				baseTS: time.Now().Add(-time.Minute).UnixMilli()}))
			if _, err := c.produce(ctx, srv.Addr, topic, "none", want); err != nil {
				t.Fatalf("%s producing to a topic that does not exist yet: %v", c.name, err)
			}
			got, err := franzConsume(ctx, srv.Addr, topic, 1, startAt{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d records, want %d", len(got), len(want))
			}
			for i := range got {
				if !sameBytes(got[i].V, want[i].V) || got[i].O != int64(i) {
					t.Errorf("record %d: %s, want %s", i, got[i], want[i])
				}
			}
		})
	}
}

// metadataAutoCreate sends a Metadata request for topic and reports whether
// the topic exists in the answer.
func metadataAutoCreate(t *testing.T, addr, topic string, allow bool) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = allow
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata for one topic answered %d", len(resp.Topics))
	}
	code := resp.Topics[0].ErrorCode
	switch {
	case code == 0:
		return true
	case code == kerr.UnknownTopicOrPartition.Code && !allow:
		return false
	case code == kerr.LeaderNotAvailable.Code && allow:
		return true // created, leader being elected: Kafka's answer on creation
	}
	t.Fatalf("metadata allow_auto_topic_creation=%v: error %v", allow, kerr.ErrorForCode(code))
	return false
}

// TestReplayAfterDeleteRecords: after DeleteRecords moves the log start
// offset, "from the beginning" means from the new log start for every
// client (ListOffsets earliest), and the records there are intact.
func TestReplayAfterDeleteRecords(t *testing.T) {
	t.Parallel()
	const topic, partitions = "replay", int32(2)
	srv := startServer(t)
	adm := newAdmin(t, srv.Addr)
	createTopic(t, adm, topic, partitions, nil)
	ctx := context.Background()
	want := genRecords(60, genSpec{partitions: partitions, perPart: 20,
		baseTS: time.Now().Add(-time.Minute).UnixMilli()})
	if _, err := franzProduce(ctx, srv.Addr, topic, "snappy", want); err != nil {
		t.Fatal(err)
	}
	const cut = 7
	offs := kadm.Offsets{}
	for p := range partitions {
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: cut})
	}
	res, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if err := res.Error(); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	for _, c := range clients {
		got, err := c.consume(ctx, srv.Addr, topic, partitions, startAt{})
		if err != nil {
			t.Errorf("%s replaying from the beginning: %v", c.name, err)
			continue
		}
		if d := diffRecs(fromOffset(want, cut), got); d != "" {
			t.Errorf("%s replaying from the beginning after DeleteRecords to %d:\n%s", c.name, cut, d)
		}
	}
}

// TestMessageTooLarge: a batch over the topic's max.message.bytes is
// refused with MESSAGE_TOO_LARGE, which every client surfaces under its
// own name, and nothing of it is appended; a small record then goes to
// offset 0.
func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	adm := newAdmin(t, srv.Addr)
	ctx := context.Background()
	wantErr := map[string]string{
		"kcat":                    "Message size too large",
		"python3-kafka":           "MessageSizeTooLargeError",
		"python3-confluent-kafka": "MSG_SIZE_TOO_LARGE",
		"franz-go":                kerr.MessageTooLarge.Message,
	}
	big := make([]byte, 8000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = 'a' + byte(rng.UintN(26)) // incompressible enough, no kcat delimiters
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := "too-large-" + c.name
			createTopic(t, adm, topic, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("4096")})
			_, err := c.produce(ctx, srv.Addr, topic, "none", []rec{{P: 0, K: []byte("k"), V: big, H: []hdr{}}})
			if err == nil || !strings.Contains(err.Error(), wantErr[c.name]) {
				t.Fatalf("%s producing 8000 bytes to a topic with max.message.bytes=4096: got %v, want an error containing %q", c.name, err, wantErr[c.name])
			}
			small := []rec{{P: 0, K: []byte("k"), V: []byte("small"), H: []hdr{}}}
			acked, err := c.produce(ctx, srv.Addr, topic, "none", small)
			if err != nil {
				t.Fatalf("%s producing a small record after the refusal: %v", c.name, err)
			}
			if acked[0].O != 0 {
				t.Errorf("small record at offset %d, want 0: the refused batch took offsets", acked[0].O)
			}
			got, err := franzConsume(ctx, srv.Addr, topic, 1, startAt{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || string(got[0].V) != "small" || got[0].O != 0 {
				t.Errorf("log holds %v, want only the small record, at offset 0", got)
			}
		})
	}
}
