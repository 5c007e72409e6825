package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	matrixPartitions = 3
	matrixPerPart    = 12
)

// TestCrossClientMatrix: for every producer and codec, records with keys,
// headers and timestamps go to a fresh topic; every client then reads them
// back from the beginning, from an offset and from a timestamp, and each
// record must match what was produced byte for byte, at the same partition
// and offset. A client that lacks a codec must fail with its documented
// error.
func TestCrossClientMatrix(t *testing.T) {
	srv := startServer(t)
	adm := newAdmin(t, srv.Addr)
	t.Run("group", func(t *testing.T) {
		for pi, prod := range clients {
			for ci, codec := range codecs {
				t.Run(prod.name+"/"+codec, func(t *testing.T) {
					t.Parallel()
					topic := fmt.Sprintf("matrix-%s-%s", prod.name, codec)
					createTopic(t, adm, topic, matrixPartitions, nil)
					runMatrixCase(t, srv.Addr, topic, prod, codec, uint64(pi*100+ci))
				})
			}
		}
	})
}

func runMatrixCase(t *testing.T, addr, topic string, prod *client, codec string, seed uint64) {
	ctx := context.Background()
	spec := prod.spec(genSpec{partitions: matrixPartitions, perPart: matrixPerPart,
		baseTS: time.Now().Add(-10 * time.Minute).UnixMilli()})
	want := genRecords(seed, spec)

	if ok, wantErr := prod.canCodec(codec); !ok {
		_, err := prod.produce(ctx, addr, topic, codec, want)
		var ce *clientError
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, wantErr) {
			t.Fatalf("%s producing %s: got %v, want its documented error %q", prod.name, codec, err, wantErr)
		}
		t.Logf("%s cannot produce %s here (documented: %s: %s)", prod.name, codec, ce.Type, ce.Msg)
		return
	}

	before := time.Now().UnixMilli()
	acked, err := prod.produce(ctx, addr, topic, codec, want)
	after := time.Now().UnixMilli()
	if err != nil {
		t.Fatalf("%s produce: %v", prod.name, err)
	}
	if d := diffRecs(want, acked); d != "" {
		t.Fatalf("%s acknowledged offsets differ from a fresh topic's 0..n per partition:\n%s", prod.name, d)
	}
	stored, err := storedCodecs(ctx, addr, topic, matrixPartitions)
	if err != nil {
		t.Fatalf("reading stored batches: %v", err)
	}
	// Every partition holds a large, compressible value, so each has at
	// least one batch in the codec. Producers send a batch uncompressed when
	// compressing would not shrink it (librdkafka does), so a few codec-0
	// batches are fine; another codec never is.
	want0 := codecIDs[codec]
	inCodec := 0 // batches stored in the codec, over all partitions
	for p := int32(0); p < matrixPartitions; p++ {
		byCodec := stored[p]
		inCodec += byCodec[want0]
		for id, n := range byCodec {
			if id != want0 && id != 0 {
				t.Errorf("p%d: %d stored batches carry codec %d, want %d (%s)", p, n, id, want0, codec)
			}
		}
		if byCodec[want0] == 0 {
			hint := ""
			if prod.name == "kcat" || prod.name == "python3-confluent-kafka" {
				hint = " (librdkafka before 2.8 silently skips gzip, snappy and lz4 when the broker's lowest Produce version is above 2, librdkafka issue #4956: the broker must keep advertising Produce v0..v2 as Kafka 3.x did)"
			}
			t.Errorf("p%d: no stored batch carries codec %d (%s), batches by codec %v: the batches must be stored and served as the producer sent them%s", p, want0, codec, byCodec, hint)
		}
	}
	if spec.noTimestamps {
		// The producer stamped the records itself (CreateTime, its clock):
		// take franz-go's reading as the reference after checking it lies in
		// the produce window; every other client must then agree exactly.
		ref, err := franzConsume(ctx, addr, topic, matrixPartitions, startAt{})
		if err != nil {
			t.Fatalf("franz-go reference read: %v", err)
		}
		if len(ref) != len(want) {
			t.Fatalf("franz-go reference read %d records, want %d", len(ref), len(want))
		}
		sortRecs(ref)
		sortRecs(want)
		for i := range want {
			if ref[i].TS < before || ref[i].TS > after {
				t.Errorf("%s record p%d@%d has timestamp %d outside the produce window [%d, %d]", prod.name, ref[i].P, ref[i].O, ref[i].TS, before, after)
			}
			want[i].TS = ref[i].TS
		}
	}

	// Seek targets: offset 5 in every partition; the timestamp of partition
	// 1's record at offset 7, which (timestamps grow per partition and
	// partitions occupy disjoint ranges) lands mid-partition 1, past the end
	// of partition 0 and at the start of partition 2.
	var seekTS int64
	for _, r := range want {
		if r.P == 1 && r.O == 7 {
			seekTS = r.TS
		}
	}
	off := int64(5)
	reads := []struct {
		start startAt
		want  []rec
	}{
		{startAt{}, want},
		{startAt{smallFetch: true}, want},
		{startAt{offset: &off}, fromOffset(want, off)},
		{startAt{timestamp: &seekTS}, fromTimestamp(want, seekTS)},
	}

	type result struct {
		cons  *client
		start startAt
		want  []rec
		got   []rec
		err   error
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
	)
	for _, cons := range clients {
		for _, rd := range reads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := cons.consume(ctx, addr, topic, matrixPartitions, rd.start)
				mu.Lock()
				results = append(results, result{cons, rd.start, rd.want, got, err})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, r := range results {
		what := fmt.Sprintf("%s reading %s's %s records from %s", r.cons.name, prod.name, codec, r.start)
		if ok, wantErr := r.cons.canCodec(codec); !ok && inCodec > 0 {
			var ce *clientError
			if !errors.As(r.err, &ce) || !strings.Contains(ce.Msg, wantErr) {
				t.Errorf("%s: got %v, want its documented error %q", what, r.err, wantErr)
			} else {
				t.Logf("%s: cannot decode here (documented: %s: %s)", what, ce.Type, ce.Msg)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("%s: %v", what, r.err)
			continue
		}
		if d := diffRecs(r.want, r.got); d != "" {
			t.Errorf("%s:\n%s", what, d)
		}
	}
}

func newAdmin(t testing.TB, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// codecIDs are the batch attribute bits for each codec (attributes & 0x7).
var codecIDs = map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// storedCodecs fetches every batch of the topic raw and counts batches by
// partition and codec (attributes & 0x7); every batch must be a v2 batch.
func storedCodecs(ctx context.Context, addr, topic string, partitions int32) (map[int32]map[int16]int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("metadata for %s: %v", topic, td.Err)
	}
	counts := map[int32]map[int16]int{}
	for p := int32(0); p < partitions; p++ {
		counts[p] = map[int16]int{}
		next := int64(0)
		for {
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis = 0
			req.MinBytes = 0
			req.MaxBytes = 64 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rt.TopicID = td.ID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = next
			rp.PartitionMaxBytes = 64 << 20
			rp.CurrentLeaderEpoch = -1
			rp.LogStartOffset = -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return nil, fmt.Errorf("fetch p%d@%d: %w", p, next, err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return nil, fmt.Errorf("fetch p%d@%d: %w", p, next, err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return nil, fmt.Errorf("fetch p%d@%d: response has %d topics", p, next, len(resp.Topics))
			}
			rpp := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(rpp.ErrorCode); err != nil {
				return nil, fmt.Errorf("fetch p%d@%d: %w", p, next, err)
			}
			if next >= rpp.HighWatermark {
				break
			}
			b := rpp.RecordBatches
			progressed := false
			for len(b) >= 61 {
				base := int64(binary.BigEndian.Uint64(b[0:]))
				size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
				if size > len(b) {
					break // a partial batch at the end of the response
				}
				magic := b[16]
				attrs := int16(binary.BigEndian.Uint16(b[21:]))
				last := base + int64(int32(binary.BigEndian.Uint32(b[23:])))
				if magic != 2 {
					return nil, fmt.Errorf("p%d batch at %d: magic %d, want 2", p, base, magic)
				}
				counts[p][attrs&7]++
				if last >= next {
					next = last + 1
					progressed = true
				}
				b = b[size:]
			}
			if !progressed {
				return nil, fmt.Errorf("fetch p%d@%d: no whole batch in %d bytes below high watermark %d", p, next, len(rpp.RecordBatches), rpp.HighWatermark)
			}
		}
	}
	return counts, nil
}
