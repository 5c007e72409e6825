package replication

import (
	"errors"
	"testing"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

// enforceRetention applies retention to a replica as the broker's housekeeping does.
func enforceRetention(t *testing.T, p *partition.Partition) int {
	t.Helper()
	n, err := p.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention on a leader does not outrun its followers: as in Kafka, a segment is deleted
// only when it lies wholly below the high watermark, so the log start offset never
// passes it and a follower in the ISR that has not fetched a closed segment yet still
// gets it (instead of OFFSET_OUT_OF_RANGE and starting over past records the leader
// acknowledged to nobody but may still have to serve).
func TestRetentionStopsAtTheHighWatermark(t *testing.T) {
	w := newWorld(t, 16, 1, 2)
	w.elect(1, 1, 2)
	l := w.replicas[1].p
	roll := func() {
		t.Helper()
		if err := l.Log().Roll(); err != nil {
			t.Fatal(err)
		}
	}
	w.produce(20, "a")
	w.catchUp(2) // high watermark 20
	roll()
	w.produce(20, "b") // 2 has not fetched these
	roll()
	w.produce(1, "c")
	if hw := l.HighWatermark(); hw != 20 {
		t.Fatalf("high watermark %d, want 20", hw)
	}
	// Every closed segment is past retention.bytes.
	l.Log().SetConfig(log.Config{SegmentBytes: 4096, RetentionBytes: 1})
	// DeleteRecords above the high watermark is refused, as in Kafka.
	if _, err := l.DeleteRecords(21); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecords past the high watermark: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	n := enforceRetention(t, l)
	if start := l.LogStartOffset(); start != 20 {
		t.Fatalf("leader's log start offset %d after retention, high watermark %d", start, l.HighWatermark())
	}
	if n != 1 {
		t.Fatalf("retention deleted %d segments, want 1 (the one below the high watermark)", n)
	}
	// The follower gets everything past the high watermark, and the log start with it.
	w.catchUp(2)
	w.catchUp(2)
	if f := w.replicas[2].p; f.LogStartOffset() != 20 || f.LogEndOffset() != 41 {
		t.Fatalf("follower holds [%d, %d), want [20, 41)", f.LogStartOffset(), f.LogEndOffset())
	}
	w.identical(2)
	// Once the high watermark has passed them, the rest of the closed segments go.
	if hw := l.HighWatermark(); hw != 41 {
		t.Fatalf("high watermark %d, want 41", hw)
	}
	if n := enforceRetention(t, l); n != 1 || l.LogStartOffset() != 40 {
		t.Fatalf("second pass deleted %d segments, log start %d; want 1 and 40", n, l.LogStartOffset())
	}
}
