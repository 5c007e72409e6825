package broker

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// syncBuffer is a log destination tests read while the broker writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// openBrokerOn opens a broker on fsys with its data in /data, logging to logs (if not nil).
func openBrokerOn(t *testing.T, fsys vfs.FS, logs io.Writer, over map[string]string) (*Broker, error) {
	t.Helper()
	ov := map[string]string{"log.dirs": "/data"}
	for k, v := range over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	return openServing(cfg, Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(logs, nil))})
}

func mustOpenBroker(t *testing.T, fsys vfs.FS, logs io.Writer, over map[string]string) *Broker {
	t.Helper()
	b, err := openBrokerOn(t, fsys, logs, over)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fsys vfs.FS, name string, data []byte) {
	t.Helper()
	if err := fsys.MkdirAll(path.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// strayDirs returns the names in /data that hold prefix's data set aside.
func strayDirs(t *testing.T, fsys vfs.FS, prefix string) []string {
	t.Helper()
	ents, err := fsys.ReadDir("/data")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+".") && strings.HasSuffix(e.Name(), "-stray") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestStartSetsUnknownPartitionDirsAside: a partition directory the metadata image does
// not know (a topic missing from it, a partition past its count, a directory of another
// topic ID) is renamed aside with a warning, never deleted.
func TestStartSetsUnknownPartitionDirsAside(t *testing.T) {
	fsys := vfs.NewMem()
	b := mustOpenBroker(t, fsys, nil, nil)
	if _, err := b.CreateTopic("kept", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("other", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	precious := []byte("acknowledged records the image does not know about")
	writeFile(t, fsys, "/data/ghost-0/00000000000000000000.log", precious)
	writeFile(t, fsys, "/data/kept-7/00000000000000000000.log", precious)
	// other-0 belongs to an earlier topic of the same name.
	writeFile(t, fsys, "/data/other-0/partition.metadata", []byte("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n"))
	writeFile(t, fsys, "/data/other-0/00000000000000000000.log", precious)

	var logs syncBuffer
	b = mustOpenBroker(t, fsys, &logs, nil)
	defer b.Close()
	if b.Partition("kept", 0) == nil || b.Partition("other", 0) == nil {
		t.Fatal("known partitions not opened")
	}
	for _, name := range []string{"ghost-0", "kept-7", "other-0"} {
		aside := strayDirs(t, fsys, name)
		if len(aside) != 1 {
			t.Fatalf("%s: directories set aside: %v", name, aside)
		}
		got, err := vfs.ReadFile(fsys, "/data/"+aside[0]+"/00000000000000000000.log", 1<<20)
		if err != nil || !bytes.Equal(got, precious) {
			t.Fatalf("%s: data set aside is %q, %v", name, got, err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), name) {
			t.Fatalf("%s: no warning: %s", name, logs.String())
		}
	}
	if _, err := fsys.Stat("/data/ghost-0"); err == nil {
		t.Fatal("unknown directory still in place")
	}
}

// TestOpenRefusesLockedDataDir: a second broker on log dirs in use refuses to open, and
// the first one goes on working.
func TestOpenRefusesLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": dir + "/a," + dir + "/b"})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{FS: vfs.OS(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	first, err := openServing(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Open(cfg, opts)
	var le *vfs.LockedError
	if !errors.As(err, &le) || le.Dir != dir+"/a" {
		t.Fatalf("second broker on the same dirs: %v", err)
	}
	// Nor can it take the second dir alone, and a failed open leaves no lock behind.
	cfgB, _ := config.Load("", nil, map[string]string{"log.dirs": dir + "/c," + dir + "/b"})
	if _, err := Open(cfgB, opts); !errors.As(err, &le) || le.Dir != dir+"/b" {
		t.Fatalf("broker sharing one dir: %v", err)
	}
	cfgC, _ := config.Load("", nil, map[string]string{"log.dirs": dir + "/c"})
	third, err := openServing(cfgC, opts)
	if err != nil {
		t.Fatalf("a dir a refused broker touched stayed locked: %v", err)
	}
	third.Close()
	if _, err := first.CreateTopic("still-mine", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesAnotherNodesDir: a log dir whose meta.properties names another node, or
// another cluster than cluster.id, stops the start with a message naming the dir and
// both; a dir of this node and cluster starts.
func TestOpenRefusesAnotherNodesDir(t *testing.T) {
	mem := vfs.NewMem()
	b := mustOpenBroker(t, mem, nil, nil)
	id := b.ClusterID()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"node.id": "2"}, "/data/meta.properties belongs to node 1, and this is node 2"},
		{map[string]string{"cluster.id": "anotherCluster00000000"}, "/data/meta.properties belongs to cluster " + id + ", and this node is configured for cluster anotherCluster00000000"},
	} {
		if _, err := openBrokerOn(t, mem, nil, tc.over); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open with %v: %v, want an error saying %q", tc.over, err, tc.want)
		}
	}
	b = mustOpenBroker(t, mem, nil, map[string]string{"cluster.id": id})
	b.Close()
}
