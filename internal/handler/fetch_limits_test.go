package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/vfs"
)

// TestFetchResponseLimits: a response is bounded as Kafka bounds it (KIP-74): by the
// smaller of the request's max_bytes and the broker's fetch.max.bytes, each partition by
// its partition_max_bytes, except that the first batch of the first partition with
// records is returned whole. Non-positive limits are not "unlimited": Kafka reads 0 as
// "one batch", and a negative limit where there are records to read fails that
// partition's read (UNKNOWN_SERVER_ERROR); the response limit then counts as 0 for the
// partitions after it.
func TestFetchResponseLimits(t *testing.T) {
	ft := newFetchTest(t, vfs.NewMem(), "/data", 3, map[string]string{"fetch.max.bytes": "50000"}, nil)
	var small int
	for i := 0; i < 5; i++ {
		small = ft.appendBatch(0, 10, 1000)
		ft.appendBatch(1, 10, 1000)
	}
	big := ft.appendBatch(2, 200, 1000)
	if big <= 50000 || small >= 50000/4 {
		t.Fatalf("batch sizes %d and %d do not suit the test", small, big)
	}
	const mib = 1 << 20
	fits := 50000 / small // whole small batches within fetch.max.bytes
	for _, tc := range []struct {
		name     string
		maxBytes int32
		parts    []fpart
		want     map[int32][2]int // partition: batches, error code
	}{
		{"max_bytes 0: one batch", 0, []fpart{{0, 0, mib}, {1, 0, mib}},
			map[int32][2]int{0: {1, 0}, 1: {0, 0}}},
		{"max_bytes -1: the first read fails, the next gets one batch", -1, []fpart{{0, 0, mib}, {1, 0, mib}},
			map[int32][2]int{0: {0, int(kerr.UnknownServerError.Code)}, 1: {1, 0}}},
		{"max_bytes -1, first partition caught up: no error", -1, []fpart{{0, 50, mib}, {1, 0, mib}},
			map[int32][2]int{0: {0, 0}, 1: {1, 0}}},
		{"fetch.max.bytes bounds a larger request", 1 << 30, []fpart{{0, 0, mib}, {1, 0, mib}},
			map[int32][2]int{0: {fits, 0}, 1: {0, 0}}},
		{"the first batch goes whole", 1 << 30, []fpart{{2, 0, mib}, {0, 0, mib}},
			map[int32][2]int{2: {1, 0}, 0: {0, 0}}},
		{"partition_max_bytes -1 fails that partition only", 1 << 30, []fpart{{0, 0, -1}, {1, 0, mib}},
			map[int32][2]int{0: {0, int(kerr.UnknownServerError.Code)}, 1: {fits, 0}}},
		{"partition_max_bytes 0: one batch of the first", 1 << 30, []fpart{{0, 0, 0}, {1, 0, 0}},
			map[int32][2]int{0: {1, 0}, 1: {0, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := ft.fetch(freq{maxBytes: tc.maxBytes, minBytes: 1, epoch: -1, parts: tc.parts})
			total := 0
			for p, want := range tc.want {
				n, code := recordBytes(fr, p)
				got := [2]int{batchCount(t, recordsOf(fr, p)), int(code)}
				if got != want {
					t.Errorf("partition %d: %d batches, error %d; want %d batches, error %d", p, got[0], got[1], want[0], want[1])
				}
				total += n
			}
			if total > 50000 && total != big && total != small {
				t.Errorf("%d record bytes, more than fetch.max.bytes and not a single batch", total)
			}
		})
	}
}

// TestFetchReadsInChunks: records read into memory (a connection that cannot send them
// from their files) go in pooled buffers of at most 1 MiB each, never one buffer the
// size of the whole range.
func TestFetchReadsInChunks(t *testing.T) {
	ft := newFetchTest(t, vfs.NewMem(), "/data", 1, nil, nil)
	total := 0
	for i := 0; i < 5; i++ {
		total += ft.appendBatch(0, 1, 1<<20)
	}
	resp := ft.serve(freq{maxBytes: 8 << 20, minBytes: 1, epoch: -1, parts: []fpart{{0, 0, 8 << 20}}}, false)
	defer resp.Release()
	for i, piece := range resp.Vec {
		if len(piece) > 1<<20 {
			t.Fatalf("piece %d of the response is one buffer of %d bytes", i, len(piece))
		}
	}
	fr := decodeFetch(t, resp)
	if n, code := recordBytes(fr, 0); n != total || code != 0 {
		t.Fatalf("%d record bytes, error %d; want %d", n, code, total)
	}
	if got := batchCount(t, recordsOf(fr, 0)); got != 5 {
		t.Fatalf("%d batches, want 5", got)
	}
}
