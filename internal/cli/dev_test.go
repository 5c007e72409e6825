package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ports of a dev cluster are kept: a second load of the same dir returns them, and a
// different node count is refused rather than forming another cluster over the data.
func TestDevState(t *testing.T) {
	dir := t.TempDir()
	s, reused, err := devLoadState(dir, 3)
	if err != nil || reused || len(s.Nodes) != 3 {
		t.Fatalf("first load: %+v reused=%v err=%v", s, reused, err)
	}
	seen := map[int]bool{}
	for i, n := range s.Nodes {
		if n.ID != i+1 {
			t.Errorf("node %d has id %d", i, n.ID)
		}
		for _, p := range []int{n.BrokerPort, n.ControllerPort, n.HTTPPort} {
			if p <= 0 || seen[p] {
				t.Errorf("port %d given twice or not at all: %+v", p, s)
			}
			seen[p] = true
		}
	}
	again, reused, err := devLoadState(dir, 3)
	if err != nil || !reused || devBootstrap(again) != devBootstrap(s) || devVoters(again) != devVoters(s) {
		t.Fatalf("second load: %+v reused=%v err=%v, want %+v", again, reused, err, s)
	}
	if _, _, err := devLoadState(dir, 5); err == nil || !strings.Contains(err.Error(), "use --nodes 3") {
		t.Fatalf("load with another node count: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dev.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devLoadState(dir, 3); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("load of a torn dev.json: %v", err)
	}
}

// A node's properties are Kafka's KRaft keys, with the --overrides after them (the last of
// a repeated key wins).
func TestDevProperties(t *testing.T) {
	s := devState{Nodes: []devNode{{1, 9092, 9093, 9404}, {2, 9192, 9193, 9504}}}
	ov := &kvList{}
	for _, kv := range []string{"num.partitions=3", "log.retention.ms=1000", "num.partitions=6"} {
		if err := ov.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	got := devProperties(s, s.Nodes[1], "/d/node-2", "b", ov)
	for _, want := range []string{"node.id=2\n", "process.roles=broker,controller\n",
		"listeners=PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193\n", "controller.listener.names=CONTROLLER\n",
		"controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193\n", "log.dirs=/d/node-2/data\n",
		"vltava.http.listener=127.0.0.1:9504\n", "broker.rack=b\n", "log.retention.ms=1000\n", "num.partitions=6\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("properties lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "num.partitions=3") {
		t.Errorf("the first of a repeated override was kept:\n%s", got)
	}
	if got := devProperties(s, s.Nodes[0], "/d/node-1", "", &kvList{}); strings.Contains(got, "broker.rack") {
		t.Errorf("a node without a rack got one:\n%s", got)
	}
	// Bad flags fail before anything starts.
	mustFail(t, "--nodes 0", "", "", "dev", "--nodes", "0", "--dir", t.TempDir())
}
