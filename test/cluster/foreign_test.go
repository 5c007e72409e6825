package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestForeignDataDirWithoutClusterID: as Kafka users run, no cluster.id in the
// properties. Two nodes form the cluster from empty dirs (its id derived from the
// voters); node 3's data dir was formatted for another cluster. Its peers answer it
// INCONSISTENT_CLUSTER_ID, and it exits non-zero naming both cluster IDs and its dir,
// while the other two keep serving.
func TestForeignDataDirWithoutClusterID(t *testing.T) {
	ctx := context.Background()
	other := strings.TrimSpace(runTool(t, "storage", "random-uuid"))
	c := newCluster(t, 3, nil)
	runTool(t, "storage", "format", "--config", c.nodes[2].props(), "--override", "cluster.id="+other)
	c.nodes[0].start()
	c.nodes[1].start()
	if _, err := createTopic(ctx, c.bootstrap(), "before", 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	id := clusterIDOf(ctx, t, c.nodes[0])
	if id == other {
		t.Fatalf("the two nodes took the other cluster's id %s", id)
	}
	p := launch(t, bin, "server", "--config", c.nodes[2].props())
	c.nodes[2].runs = append(c.nodes[2].runs, p)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("node 3 on another cluster's data dir is still running after 30s:\n%s", tail(p.out.String(), 30))
	}
	out := p.out.String()
	if p.err == nil || !strings.Contains(out, "INCONSISTENT_CLUSTER_ID") || !strings.Contains(out, other) ||
		!strings.Contains(out, id) || !strings.Contains(out, c.nodes[2].dataDir()) {
		t.Fatalf("node 3 on another cluster's data dir: exit %v, want an error naming clusters %s and %s and %s; output:\n%s",
			p.err, id, other, c.nodes[2].dataDir(), tail(out, 30))
	}
	t.Logf("stopped: %s", strings.TrimSpace(tail(out, 2)))
	if _, err := createTopic(ctx, c.bootstrap(), "after", 1, 30*time.Second); err != nil {
		t.Fatalf("the cluster's two nodes after node 3 stopped: %v", err)
	}
}
