package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/metaprops"
	"github.com/vltava/vltava/internal/vfs"
)

// TestStorageCommands: kafka-storage's format, info and random-uuid on a node's data
// dirs (two log dirs and a metadata log dir of their own): format writes meta.properties
// in each, refuses dirs formatted already unless --ignore-formatted, and the node then
// starts in that cluster; info shows them, and the problem of a dir of another cluster;
// a node started on such a dir refuses, naming it.
func TestStorageCommands(t *testing.T) {
	out, errOut, code := vltava(t, "storage", "random-uuid")
	if code != 0 || !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{21}\n$`).MatchString(out) {
		t.Fatalf("random-uuid: exit %d, %q %q", code, out, errOut)
	}
	id := strings.TrimSpace(out)

	tmp := t.TempDir()
	a, b, m := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "meta")
	props := filepath.Join(tmp, "server.properties")
	conf := "node.id=3\nlog.dirs=" + a + "," + b + "\nmetadata.log.dir=" + m + "\nlisteners=PLAINTEXT://127.0.0.1:0\n"
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = vltava(t, "storage", "format", "--config", props, "--cluster-id", id)
	if code != 0 || strings.Count(out, "Formatted ") != 3 {
		t.Fatalf("format: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, d := range []string{a, b, m} {
		p, err := metaprops.Read(vfs.OS(), d)
		if err != nil || p.ClusterID != id || p.NodeID != 3 || p.DirectoryID == "" {
			t.Fatalf("%s: %+v %v", d, p, err)
		}
	}
	if _, errOut, code = vltava(t, "storage", "format", "-c", props, "-t", id); code == 0 || !strings.Contains(errOut, "is already formatted") {
		t.Fatalf("format again: exit %d, %q", code, errOut)
	}
	if out, errOut, code = vltava(t, "storage", "format", "-c", props, "-t", id, "--ignore-formatted"); code != 0 || !strings.Contains(out, "already formatted") {
		t.Fatalf("format --ignore-formatted: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = vltava(t, "storage", "info", "--config", props)
	if code != 0 || strings.Count(out, "cluster.id="+id+", node.id=3") != 3 || !strings.Contains(out, "metadata log directory "+m) {
		t.Fatalf("info: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	log, started := startServerWith(t, "--config", props)
	if !started || !strings.Contains(log[len(log)-1], "cluster.id="+id) {
		t.Fatalf("the node does not start in the formatted cluster:\n%s", strings.Join(log, "\n"))
	}

	// A data dir of another cluster.
	other := t.TempDir()
	if err := metaprops.Write(vfs.OS(), other, metaprops.Props{ClusterID: "someOtherCluster000000", NodeID: 1, DirectoryID: metaprops.RandomUUID()}); err != nil {
		t.Fatal(err)
	}
	props2 := filepath.Join(tmp, "other.properties")
	if err := os.WriteFile(props2, []byte("log.dirs="+other+"\ncluster.id="+id+"\nlisteners=PLAINTEXT://127.0.0.1:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = vltava(t, "storage", "info", "-c", props2)
	if code == 0 || !strings.Contains(out, "Found problems") || !strings.Contains(out, "belongs to cluster someOtherCluster000000") {
		t.Fatalf("info of another cluster's dir: exit %d, %q", code, out)
	}
	log, started = startServerWith(t, "--config", props2)
	if all := strings.Join(log, "\n"); started || !strings.Contains(all, other) || !strings.Contains(all, "belongs to cluster someOtherCluster000000") {
		t.Fatalf("a node on another cluster's dir: started %v:\n%s", started, all)
	}
}
