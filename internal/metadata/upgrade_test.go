package metadata

// The upgrade of a metadata log written by the JSON records of earlier versions.
// testdata/json-metadata.log was written by that code (a broker of commit 269a64c):
// cluster ID legacy-cluster-0000001; topics orders (3 partitions, created with
// cleanup.policy=compact and retention.ms=3600000, then cleanup.policy removed and
// retention.ms=86400000), a.b (2), logs (1, then 4, segment.bytes=1048576) and gone (1),
// created together; gone deleted; the cluster-wide compression.type=lz4 and
// compression.gzip.level=5, then compression.gzip.level removed; two blocks of 1,000
// producer IDs; gone created again (2 partitions).

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/vfs"
)

func legacyLog(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/json-metadata.log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkUpgraded checks that everything the JSON log held is in im, node's.
func checkUpgraded(t *testing.T, im *Image, node int32) {
	t.Helper()
	if im.ClusterID() != "legacy-cluster-0000001" {
		t.Errorf("cluster ID %q", im.ClusterID())
	}
	want := []struct {
		name       string
		id         string
		partitions int32
		configs    map[string]string
	}{
		{"a.b", "bd82ccee-fc5a-4591-bd24-040c49493809", 2, nil},
		{"gone", "eb3161a0-0db7-4feb-842b-9f8945f02d2f", 2, nil},
		{"logs", "d569813c-cdb3-4d8a-8425-ea1805ad0040", 4, map[string]string{"segment.bytes": "1048576"}},
		{"orders", "b9d91212-743a-4fc3-a0e8-bad6ed911408", 3, map[string]string{"retention.ms": "86400000"}},
	}
	if got := im.TopicNames(); len(got) != len(want) {
		t.Fatalf("topics %v", got)
	}
	for _, w := range want {
		tp := im.Topic(w.name)
		if tp == nil || tp.ID != uuid.MustParse(w.id) || tp.NumPartitions() != w.partitions || !equalMaps(tp.Configs, w.configs) {
			t.Fatalf("topic %s: %+v, want %+v", w.name, tp, w)
		}
		for i := range tp.Partitions {
			p := &tp.Partitions[i]
			if !slices.Equal(p.Replicas(), []int32{node}) || !slices.Equal(p.ISR(), []int32{node}) || p.Leader != node || p.LeaderEpoch != 0 {
				t.Fatalf("partition %s-%d: %s", w.name, i, describe(p))
			}
		}
	}
	if got := im.BrokerConfigs(""); !equalMaps(got, map[string]string{"compression.type": "lz4"}) {
		t.Errorf("cluster configs %v", got)
	}
	if im.NextProducerID() != 2000 {
		t.Errorf("next producer ID %d, want 2000", im.NextProducerID())
	}
	checkImage(t, im)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestUpgradeFromJSON: a log of JSON records opens with every topic, config and
// producer-ID block, is rewritten in binary at once (and says so), and opens again from
// the binary form.
func TestUpgradeFromJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName)
	if err := os.WriteFile(path, legacyLog(t), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := Open(vfs.OS(), dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), NodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkUpgraded(t, s.Image(), 1)
	if !strings.Contains(logs.String(), "upgraded from JSON to binary") || !strings.Contains(logs.String(), "topics=4") {
		t.Errorf("the upgrade was not logged: %s", logs.String())
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(`"topic"`)) || len(data) < frameHead || data[frameHead] != snapshotMagic {
		t.Fatalf("the log was not rewritten in binary: % x", data[:min(len(data), 16)])
	}
	createTopic(t, s, "after", 1)
	s.Close()
	logs.Reset()
	s, err = Open(vfs.OS(), dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), NodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Image().Topic("after") == nil || strings.Contains(logs.String(), "upgraded") {
		t.Fatalf("second open: topics %v, log %s", s.Image().TopicNames(), logs.String())
	}
}

// TestUpgradeTakesTheNodeID: the partitions of a JSON log are this node's.
func TestUpgradeTakesTheNodeID(t *testing.T) {
	rp, cerr := replay(legacyLog(t), 5)
	if cerr != nil || !rp.legacy {
		t.Fatalf("replay: %v (legacy %v)", cerr, rp.legacy)
	}
	checkUpgraded(t, rp.im, 5)
}

// TestUpgradeKeepsTheRecoveryRules: a torn JSON tail is cut; a damaged JSON frame with
// valid ones after it stops the start, and the file is kept.
func TestUpgradeKeepsTheRecoveryRules(t *testing.T) {
	old := legacyLog(t)
	rp, cerr := replay(append(bytes.Clone(old), 0, 0, 0, 40, 1, 2), 1)
	if cerr != nil || rp.good != len(old) {
		t.Fatalf("torn tail: %v, valid prefix %d of %d", cerr, rp.good, len(old))
	}
	bad := bytes.Clone(old)
	bad[bytes.Index(bad, []byte("orders"))] ^= 1
	dir := t.TempDir()
	path := filepath.Join(dir, fileName)
	os.WriteFile(path, bad, 0o644)
	var ce *CorruptError
	if _, err := Open(vfs.OS(), dir, testOptions()); !errors.As(err, &ce) || ce.Next < 0 {
		t.Fatalf("a damaged JSON frame followed by valid ones: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
		t.Fatal("a refused JSON log was modified")
	}
}

// TestUpgradeThatFailsLeavesTheJSONLog: if the binary rewrite fails, the JSON log is
// as it was and the next start upgrades it.
func TestUpgradeThatFailsLeavesTheJSONLog(t *testing.T) {
	mem := vfs.NewMem()
	// The JSON log is there to stay: its directory synced into its parent, the file
	// synced into its directory (WriteFileAtomic).
	if err := errors.Join(mem.MkdirAll("/meta", 0o755), mem.SyncDir("/")); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(mem, "/meta/"+fileName, legacyLog(t)); err != nil {
		t.Fatal(err)
	}
	failRename := vfs.InjectorFunc(func(op vfs.Op) error {
		if op.Kind == vfs.OpRename {
			return syscall.EIO
		}
		return nil
	})
	if _, err := Open(&vfs.ErrorFS{FS: mem, Inj: failRename}, "/meta", testOptions()); err == nil {
		t.Fatal("opened with a failed rewrite")
	}
	s := openTest(t, mem.Crash(), "/meta")
	checkUpgraded(t, s.Image(), 1)
}
