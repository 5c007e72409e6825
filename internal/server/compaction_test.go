package server_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/broker"
)

// compactedView reads topic's partition 0 from the start up to its log end offset and
// returns each key's last value (nil for a tombstone), the number of records read, and
// checks offsets increase.
func compactedView(t *testing.T, n *node, topic string) (map[string]*string, int) {
	t.Helper()
	p := n.srv.Broker().Partition(topic, 0)
	end := p.LogEndOffset()
	cl := n.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t)
	view := map[string]*string{}
	last, count := int64(-1), 0
	for last < end-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after offset %d: %v", last, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			count++
			if r.Value == nil {
				view[string(r.Key)] = nil
				return
			}
			v := string(r.Value)
			view[string(r.Key)] = &v
		})
	}
	return view, count
}

func checkView(t *testing.T, got map[string]*string, want map[string]*string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Fatalf("key %s missing", k)
		case (w == nil) != (g == nil) || (w != nil && *w != *g):
			t.Fatalf("key %s = %v, want %v", k, deref(g), deref(w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("unexpected key %s", k)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<tombstone>"
	}
	return *s
}

// flushPartition syncs partition 0 of topic, as the broker's flush loop does within a
// second of a roll: the cleaner compacts only below the recovery point.
func flushPartition(t *testing.T, b *broker.Broker, topic string) {
	t.Helper()
	if err := b.Partition(topic, 0).Log().Flush(); err != nil {
		t.Fatal(err)
	}
}

// cleanNow runs a cleaner pass over what is synced.
func cleanNow(t *testing.T, b *broker.Broker, topic string) (int, error) {
	t.Helper()
	flushPartition(t, b, topic)
	return b.CleanNow()
}

func TestCompactionLatestValuePerKey(t *testing.T) {
	n := startNode(t, map[string]string{"log.cleaner.backoff.ms": "3600000"})
	const topic = "table"
	str := func(s string) *string { return &s }
	n.createTopic(t, topic, 1, map[string]*string{
		"cleanup.policy":            str("compact"),
		"internal.segment.bytes":    str("2048"),
		"min.cleanable.dirty.ratio": str("0.01"),
		"delete.retention.ms":       str("300"),
	})
	p := n.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	want := map[string]*string{}
	produce := func(round, from, to int) {
		var recs []*kgo.Record
		for k := from; k < to; k++ {
			key, val := fmt.Sprintf("key-%02d", k), fmt.Sprintf("value-%02d-round-%03d-padding-padding", k, round)
			recs = append(recs, &kgo.Record{Key: []byte(key), Value: []byte(val)})
			want[key] = str(val)
		}
		if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for r := range 40 {
		produce(r, 0, 20)
	}
	produced := 40 * 20
	b := n.srv.Broker()
	segs := b.Partition(topic, 0).Log().NumSegments()
	if segs < 5 {
		t.Fatalf("only %d segments", segs)
	}
	if cleaned, err := cleanNow(t, b, topic); err != nil || cleaned == 0 {
		t.Fatalf("CleanNow = %d, %v", cleaned, err)
	}
	view, count := compactedView(t, n, topic)
	checkView(t, view, want)
	if count > produced/4 {
		t.Fatalf("read %d of %d records after compaction", count, produced)
	}

	// A restart right after cleaning keeps all of it; another round of updates and a
	// restart between producing and cleaning too.
	n.restart()
	view, _ = compactedView(t, n, topic)
	checkView(t, view, want)
	p = n.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	for r := 40; r < 60; r++ {
		produce(r, 0, 20)
	}
	// A restart while a clean runs: Close interrupts it wherever it is.
	old := n.srv.Broker()
	cleanDone := make(chan error, 1)
	flushPartition(t, old, topic)
	go func() { _, err := old.CleanNow(); cleanDone <- err }()
	n.restart()
	if err := <-cleanDone; err != nil && !errors.Is(err, broker.ErrShuttingDown) {
		t.Logf("clean interrupted by the restart: %v", err)
	}
	view, _ = compactedView(t, n, topic)
	checkView(t, view, want)
	b = n.srv.Broker()
	if _, err := cleanNow(t, b, topic); err != nil {
		t.Fatal(err)
	}
	view, count = compactedView(t, n, topic)
	checkView(t, view, want)
	if count > produced/4 {
		t.Fatalf("read %d records after the second compaction", count)
	}

	// Tombstones: kept by the clean that first sees them, gone delete.retention.ms later.
	p = n.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	var tombs []*kgo.Record
	for k := range 5 {
		key := fmt.Sprintf("key-%02d", k)
		tombs = append(tombs, &kgo.Record{Key: []byte(key)})
		want[key] = nil
	}
	if err := p.ProduceSync(ctxT(t), tombs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for r := 60; r < 70; r++ {
		produce(r, 5, 20) // pushes the tombstones out of the active segment
	}
	if _, err := cleanNow(t, b, topic); err != nil {
		t.Fatal(err)
	}
	view, _ = compactedView(t, n, topic)
	checkView(t, view, want)
	for k := range 5 {
		delete(want, fmt.Sprintf("key-%02d", k))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := cleanNow(t, b, topic); err != nil {
			t.Fatal(err)
		}
		view, _ = compactedView(t, n, topic)
		if len(view) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstones still there after delete.retention.ms: %d keys, want %d", len(view), len(want))
		}
		time.Sleep(100 * time.Millisecond) // delete.retention.ms is wall-clock time
	}
	checkView(t, view, want)
	n.restart()
	view, _ = compactedView(t, n, topic)
	checkView(t, view, want)
}
