package broker

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// The epoch written at a clean shutdown is read once: the next start after it names it,
// the one after that (no clean shutdown between) does not; dirs that disagree, a dir
// without the file or a corrupt file read as an unclean shutdown.
func TestCleanShutdownEpoch(t *testing.T) {
	fsys := vfs.NewMem()
	dirs := []string{"/data/a", "/data/b"}
	for _, d := range dirs {
		if err := vfs.MkdirAllDurable(fsys, d); err != nil {
			t.Fatal(err)
		}
	}
	b := &Broker{cfg: config.Broker{LogDirs: dirs}, fsys: fsys, logger: slog.New(slog.DiscardHandler)}
	if got := b.takeCleanShutdownEpoch(); got != -1 {
		t.Fatalf("no marker: %d", got)
	}
	if err := b.writeCleanShutdownEpoch(42); err != nil {
		t.Fatal(err)
	}
	fsys.Crash() // the marker is durable
	if got := b.takeCleanShutdownEpoch(); got != 42 {
		t.Fatalf("after a clean shutdown at epoch 42: %d", got)
	}
	fsys.Crash() // and so is its removal
	if got := b.takeCleanShutdownEpoch(); got != -1 {
		t.Fatalf("read twice: %d", got)
	}
	for name, spoil := range map[string]func(){
		"a dir without it": func() { fsys.Remove(filepath.Join(dirs[1], cleanShutdownEpochFile)) },
		"dirs disagree": func() {
			vfs.WriteFileAtomic(fsys, filepath.Join(dirs[1], cleanShutdownEpochFile), []byte(`{"version":0,"broker_epoch":7}`))
		},
		"corrupt": func() { vfs.WriteFileAtomic(fsys, filepath.Join(dirs[0], cleanShutdownEpochFile), []byte(`{"vers`)) },
	} {
		if err := b.writeCleanShutdownEpoch(42); err != nil {
			t.Fatal(err)
		}
		spoil()
		if got := b.takeCleanShutdownEpoch(); got != -1 {
			t.Fatalf("%s: %d, want -1", name, got)
		}
		if got := b.takeCleanShutdownEpoch(); got != -1 {
			t.Fatalf("%s, read again: %d, want -1", name, got)
		}
	}
}
