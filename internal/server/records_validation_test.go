package server_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/batch"
)

// relabel rewrites a batch's record count and last offset delta and fixes its CRC: a
// header that lies about the records inside, as only a broken or hostile client sends.
func relabel(b []byte, count int32) []byte {
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	binary.BigEndian.PutUint32(b[17:], batch.Batch(b).ComputeCRC())
	return b
}

// The records inside compressed batches are checked on every topic and answered with
// Kafka's codes: INVALID_RECORD for records that disagree with their header,
// MESSAGE_TOO_LARGE for a batch that decompresses past the bound, INVALID_TIMESTAMP for a
// record out of the timestamp bounds.
func TestCompressedRecordsValidated(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "v", 1, map[string]*string{
		"max.message.bytes":               ptr("1048576"),
		"message.timestamp.after.max.ms":  ptr("3600000"),
		"message.timestamp.before.max.ms": ptr("3600000"),
	})
	r := dialRaw(t, n.addr)
	now := time.Now().UnixMilli()
	for _, codec := range []batch.Codec{batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		lying := relabel(buildBatch(t, batch.BuildOptions{Codec: codec}, "a", "b", "c"), 4)
		if p := produceRaw(t, r, "v", -1, lying); p.ErrorCode != kerr.InvalidRecord.Code {
			t.Errorf("%v: 3 records under a header of 4: code %d, want INVALID_RECORD", codec, p.ErrorCode)
		}
		future, err := batch.Build(batch.BuildOptions{Codec: codec}, []batch.Record{{Timestamp: now}, {Timestamp: now + 2*3600_000}})
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint64(future[35:], uint64(now)) // a header understating the records
		binary.BigEndian.PutUint32(future[17:], batch.Batch(future).ComputeCRC())
		if p := produceRaw(t, r, "v", -1, future); p.ErrorCode != kerr.InvalidTimestamp.Code {
			t.Errorf("%v: a record two hours ahead: code %d, want INVALID_TIMESTAMP", codec, p.ErrorCode)
		}
		// 64 MiB of zeros and more: past 64 times max.message.bytes.
		recs := make([]batch.Record, 65)
		for i := range recs {
			recs[i] = batch.Record{Timestamp: now, Value: make([]byte, 1<<20)}
		}
		bomb, err := batch.Build(batch.BuildOptions{Codec: codec}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(bomb) > 1<<20 {
			continue // snappy cannot compress that much into one request
		}
		if p := produceRaw(t, r, "v", -1, bomb); p.ErrorCode != kerr.MessageTooLarge.Code {
			t.Errorf("%v: %d bytes decompressing to 65 MiB: code %d, want MESSAGE_TOO_LARGE", codec, len(bomb), p.ErrorCode)
		}
	}
	// Nothing was appended.
	if p := produceRaw(t, r, "v", -1, buildBatch(t, batch.BuildOptions{Codec: batch.LZ4}, "ok")); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("a good batch after the refused ones: %+v", p)
	}
}
