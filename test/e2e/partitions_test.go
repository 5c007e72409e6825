package e2e

import (
	"context"
	"testing"
)

// TestStartWithMorePartitionsThanDescriptors: a broker whose metadata holds more
// partitions than its open-file limit allows files for (three per segment) starts and
// serves all of them: files are closed and reopened on use within the limit.
func TestStartWithMorePartitionsThanDescriptors(t *testing.T) {
	t.Parallel()
	const parts = 300 // 900 segment files
	srv := startServer(t)
	ctx := context.Background()
	topic := "many"
	createTopic(t, newAdmin(t, srv.Addr), topic, parts, nil)
	want, err := franzProduce(ctx, srv.Addr, topic, "none", genRecords(71, genSpec{partitions: parts, perPart: 1}))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	srv.Wrap = []string{"/bin/sh", "-c", `ulimit -n 128 && exec "$0" "$@"`}
	srv.Start()
	more, err := franzProduce(ctx, srv.Addr, topic, "none", genRecords(72, genSpec{partitions: parts, perPart: 1}))
	if err != nil {
		t.Fatalf("produce under ulimit -n 128: %v", err)
	}
	got, err := franzConsume(ctx, srv.Addr, topic, parts, startAt{})
	if err != nil {
		t.Fatalf("consume under ulimit -n 128: %v", err)
	}
	if len(got) != len(want)+len(more) {
		t.Fatalf("read %d records, want %d", len(got), len(want)+len(more))
	}
	byPart := map[int32][]rec{}
	for _, r := range got {
		byPart[r.P] = append(byPart[r.P], r)
	}
	for _, w := range append(want, more...) {
		found := false
		for _, r := range byPart[w.P] {
			found = found || (r.O == w.O && sameBytes(r.V, w.V))
		}
		if !found {
			t.Fatalf("record %s not read back", w)
		}
	}
}
