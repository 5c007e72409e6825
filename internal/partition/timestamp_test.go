package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// message.timestamp.before.max.ms applies to every record, as in Kafka, not only to the
// batch's first: a later record may be older (a negative timestamp delta).
func TestTimestampBeforeMaxPerRecord(t *testing.T) {
	p := openTest(t, vfs.NewMem(), log.Config{})
	defer p.Log().Close()
	cfg := p.Config()
	cfg.TimestampBeforeMaxMs = time.Hour.Milliseconds()
	p.SetConfig(cfg, log.Config{})
	now := time.Now().UnixMilli()
	build := func(ts ...int64) batch.Batch {
		var recs []batch.Record
		for _, x := range ts {
			recs = append(recs, batch.Record{Timestamp: x, Value: []byte("v")})
		}
		b, err := batch.Build(batch.BuildOptions{}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := p.Append(build(now, now-2*time.Hour.Milliseconds())); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("a record two hours old behind a fresh first record: %v, want ErrInvalidTimestamp", err)
	}
	if _, err := p.Append(build(now - 2*time.Hour.Milliseconds())); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("an old first record: %v, want ErrInvalidTimestamp", err)
	}
	if _, err := p.Append(build(now, now-time.Minute.Milliseconds())); err != nil {
		t.Fatalf("records within the hour: %v", err)
	}
}
