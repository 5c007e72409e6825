package broker

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// TestPlacementSpreadsConcurrentOpens: the partitions of one topic, opened by several
// workers at once, spread evenly over the log dirs (each worker used to count the dirs
// for itself, see the same counts, and put its partition in the same dir as the others).
func TestPlacementSpreadsConcurrentOpens(t *testing.T) {
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/d1,/d2", "num.recovery.threads.per.data.dir": "4"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openServing(cfg, Options{FS: vfs.NewMem(), Logger: slog.New(slog.DiscardHandler)}) // registered and unfenced, so that topics can be placed
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("spread", 16, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for i := int32(0); i < 16; i++ {
		per[filepath.Dir(b.Partition("spread", i).Log().Dir())]++
	}
	// /d1 also holds the metadata log: one partition fewer there at most.
	if d1, d2 := per["/d1"], per["/d2"]; d1+d2 != 16 || d1 < 7 || d1 > 8 {
		t.Fatalf("16 partitions placed %d in /d1 and %d in /d2", d1, d2)
	}
}
