package partition

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

var allCodecs = []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd}

// build encodes records with timestamps ts (one record each, value "v") into a batch.
func build(t *testing.T, c batch.Codec, ts ...int64) batch.Batch {
	t.Helper()
	recs := make([]batch.Record, len(ts))
	for i, x := range ts {
		recs[i] = batch.Record{Timestamp: x, Key: []byte{byte('a' + i)}, Value: []byte("v")}
	}
	b, err := batch.Build(batch.BuildOptions{Codec: c}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lie rewrites header fields of b (offsets per the v2 layout in package batch) and fixes
// the CRC, as a client that means it would send them.
func lie(b batch.Batch, count int32, maxTs int64) batch.Batch {
	binary.BigEndian.PutUint32(b[23:], uint32(count-1)) // lastOffsetDelta
	binary.BigEndian.PutUint32(b[57:], uint32(count))   // recordCount
	binary.BigEndian.PutUint64(b[35:], uint64(maxTs))   // maxTimestamp
	binary.BigEndian.PutUint32(b[17:], b.ComputeCRC())
	return b
}

// A compressed batch on a topic that is not compacted has its records checked as Kafka's
// LogValidator checks them: a header claiming more or fewer records than it holds is
// INVALID_RECORD, whatever the codec.
func TestAppendChecksRecordsOfEveryCodec(t *testing.T) {
	now := time.Now().UnixMilli()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			p := openTest(t, vfs.NewMem(), log.Config{})
			defer p.Log().Close()
			for _, count := range []int32{2, 4, 1000} {
				b := lie(build(t, c, now, now, now), count, now)
				if _, err := p.Append(b); !errors.Is(err, batch.ErrInvalidRecord) {
					t.Fatalf("3 records under a header of %d: %v, want ErrInvalidRecord", count, err)
				}
			}
			if got := p.LogEndOffset(); got != 0 {
				t.Fatalf("log end %d after refused batches", got)
			}
			if _, err := p.Append(build(t, c, now, now, now)); err != nil {
				t.Fatalf("an honest batch: %v", err)
			}
		})
	}
}

// The max timestamp that feeds the time index, retention and ListOffsets is the records',
// not what the header claims: Kafka's LogValidator overwrites the header's.
func TestAppendMaxTimestampFromRecords(t *testing.T) {
	now := time.Now().UnixMilli()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			p := openTest(t, vfs.NewMem(), log.Config{})
			defer p.Log().Close()
			for i, claim := range []int64{now + 365*24*time.Hour.Milliseconds(), 0} {
				at := now + int64(10*i)
				b := lie(build(t, c, at-3, at-1, at-2), 3, claim)
				if _, err := p.Append(b); err != nil {
					t.Fatal(err)
				}
				if got := b.MaxTimestamp(); got != at-1 {
					t.Fatalf("header claiming %d: stored max timestamp %d, want the records' %d", claim, got, at-1)
				}
				if err := batch.CheckHeader(b); err != nil {
					t.Fatalf("stored batch: %v", err)
				}
				off, ts, err := p.Log().MaxTimestamp()
				if err != nil || ts != at-1 || off != int64(3*i+1) {
					t.Fatalf("log max timestamp: offset %d ts %d err %v; want %d at %d", off, ts, err, at-1, 3*i+1)
				}
			}
		})
	}
}

// message.timestamp.after.max.ms is checked against every record, not against a header
// that may understate them.
func TestAppendTimestampBoundsAgainstRecords(t *testing.T) {
	now := time.Now().UnixMilli()
	hour := time.Hour.Milliseconds()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			p := openTest(t, vfs.NewMem(), log.Config{})
			defer p.Log().Close()
			cfg := p.Config()
			cfg.TimestampAfterMaxMs = hour
			cfg.TimestampBeforeMaxMs = hour
			p.SetConfig(cfg, log.Config{})
			if _, err := p.Append(lie(build(t, c, now, now+2*hour, now), 3, now)); !errors.Is(err, ErrInvalidTimestamp) {
				t.Fatalf("a record two hours ahead under a header saying now: %v, want ErrInvalidTimestamp", err)
			}
			if _, err := p.Append(lie(build(t, c, now, now-2*hour, now), 3, now)); !errors.Is(err, ErrInvalidTimestamp) {
				t.Fatalf("a record two hours old: %v, want ErrInvalidTimestamp", err)
			}
			// Kafka does not check records without a timestamp (-1).
			if _, err := p.Append(build(t, c, now, -1, now+hour/2)); err != nil {
				t.Fatalf("records within the hour and one without a timestamp: %v", err)
			}
		})
	}
}

// A producer may not set LogAppendTime on a topic that uses it (Kafka: INVALID_TIMESTAMP,
// "Producer should not set timestamp type to LogAppendTime").
func TestAppendRefusesProducerLogAppendTime(t *testing.T) {
	p := openTest(t, vfs.NewMem(), log.Config{})
	defer p.Log().Close()
	cfg := p.Config()
	cfg.LogAppendTime = true
	p.SetConfig(cfg, log.Config{})
	b, err := batch.Build(batch.BuildOptions{Codec: batch.LZ4, LogAppendTime: true}, []batch.Record{{Timestamp: 5, Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(b); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("producer-set LogAppendTime: %v, want ErrInvalidTimestamp", err)
	}
}

// An idempotent batch (producer ID set) without a base sequence is INVALID_RECORD, as
// Kafka's LogValidator.validateBatch has it.
func TestAppendRefusesIdempotentBatchWithoutSequence(t *testing.T) {
	p := openTest(t, vfs.NewMem(), log.Config{})
	defer p.Log().Close()
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: 9, BaseSequence: -1}, []batch.Record{{Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(b); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("producer id with sequence -1: %v, want ErrInvalidRecord", err)
	}
}
