package quorum

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// TestForeignClusterMemberStops: a voter started with another cluster's id (a data dir of
// another cluster) is answered INCONSISTENT_CLUSTER_ID by its peers and stops, naming both
// cluster ids and its dir; the peers, rejected by that one node only, keep going.
func TestForeignClusterMemberStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startTCPCluster(t, vfs.OS(), t.TempDir(), func(cfg *Config) {
		cfg.ElectionTimeout = 300 * time.Millisecond
	}, 1, 2, 3)
	defer c.closeAll()
	l := c.leader(ctx, 0)
	if _, err := l.node.Propose(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}

	// Node 3 comes back on a data dir of another cluster.
	c.stop(3)
	ln, err := Listen(c.addrs[3], DefaultConfig().MaxFrameBytes, func([]byte) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := c.cfg(3)
	cfg.ClusterID = "another-cluster"
	dir := filepath.Join(t.TempDir(), "foreign")
	n, err := Open(cfg, vfs.OS(), dir, &listSM{}, nil, nil, newTestLogger(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	select {
	case <-n.Failed():
	case <-ctx.Done():
		t.Fatal("a node of another cluster did not stop")
	}
	err = n.Err()
	if !errors.Is(err, ErrInconsistentClusterID) || !strings.Contains(err.Error(), `"tcp-test"`) ||
		!strings.Contains(err.Error(), `"another-cluster"`) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("failure %v: want ErrInconsistentClusterID naming both clusters and %s", err, dir)
	}
	for _, id := range []uint64{1, 2} {
		if err := c.members[id].node.Err(); err != nil {
			t.Fatalf("node %d stopped: %v", id, err)
		}
	}
	if _, err := c.leader(ctx, 0).node.Propose(ctx, []byte("y")); err != nil {
		t.Fatalf("the two remaining voters do not commit: %v", err)
	}
}

// TestRejectionFrame: only a cluster mismatch is answered, and the answer decodes to the
// receiver's cluster id; anything else a peer writes back is refused.
func TestRejectionFrame(t *testing.T) {
	if Rejection(7, errors.New("some other bad frame")) != nil || Rejection(7, nil) != nil {
		t.Fatal("a rejection for something other than a cluster mismatch")
	}
	_, err := decodeBatch(appendBatchOrFail(t, "theirs"), "ours", 1)
	rej := Rejection(7, err)
	if rej == nil || int(rej[3]) != len(rej)-4 {
		t.Fatalf("rejection %x for %v", rej, err)
	}
	if got, err := parseRejection(rej[4:]); err != nil || got != "ours" {
		t.Fatalf("parsed %q, %v", got, err)
	}
	for _, bad := range [][]byte{rej[4:10], append(rej[4:len(rej):len(rej)], 'x'), {0, 0, 0, 7, 0, 0, 0, 0}} {
		if _, err := parseRejection(bad); err == nil {
			t.Errorf("%x parsed", bad)
		}
	}
}

func appendBatchOrFail(t *testing.T, cluster string) []byte {
	b, err := appendBatch(nil, cluster, []*raftpb.Message{msgApp(2, 1, 3, 10, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzRejection(f *testing.F) {
	f.Add(Rejection(1, &ClusterMismatchError{Sender: "a", Receiver: "b"})[4:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		if c, err := parseRejection(frame); err == nil {
			if again := Rejection(1, &ClusterMismatchError{Receiver: c}); string(again[8:]) != string(frame[4:]) {
				t.Fatalf("%x does not round trip: %x", frame, again)
			}
		}
	})
}
