package broker

import (
	"fmt"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// TestManyPartitionsWithinOpenFileLimit: a node with more segment files than
// vltava.log.max.open.files creates, reopens and serves all its partitions while keeping
// the files open below within the limit.
func TestManyPartitionsWithinOpenFileLimit(t *testing.T) {
	const parts = 100 // 300 segment files, and checkpoints
	fsys := vfs.NewMem()
	over := map[string]string{"vltava.log.max.open.files": "64"}
	b := mustOpenBroker(t, fsys, nil, over)
	if _, err := b.CreateTopic("many", parts, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	appendTo := func(b *Broker) {
		for i := range int32(parts) {
			bt, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: fmt.Appendf(nil, "p%d", i), Timestamp: b.Now().UnixMilli()}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Partition("many", i).Append(bt); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(b *Broker, want int) {
		t.Helper()
		for i := range int32(parts) {
			n := 0
			if err := b.Partition("many", i).Log().Batches(0, func(h batch.Batch) bool { n += int(h.RecordCount()); return true }); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("partition %d holds %d records, want %d", i, n, want)
			}
		}
		st := b.files.Stats()
		if st.Max != 64 || st.Open > st.Max || st.OverLimit != 0 || st.Evictions == 0 {
			t.Fatalf("open files: %+v", st)
		}
	}
	appendTo(b)
	check(b, 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = mustOpenBroker(t, fsys, nil, over)
	defer b.Close()
	appendTo(b)
	check(b, 2)
}

func TestOpenFilesLimitDefault(t *testing.T) {
	b := mustOpenBroker(t, vfs.NewMem(), nil, nil)
	defer b.Close()
	if got, want := b.files.Stats().Max, int(max(processFileLimit()/2, minOpenFiles)); got != want {
		t.Fatalf("default limit %d, want half the process limit %d", got, want)
	}
}
