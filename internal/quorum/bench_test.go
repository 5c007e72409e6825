package quorum

// Benchmarks for the figures the quorum is judged by:
//
//	go test ./internal/quorum -run x -bench Election -benchtime 10x
//	go test ./internal/quorum -run x -bench Propose -benchtime 5s
//	go test ./internal/quorum -run x -bench Snapshot10MiB
//
// Election and Propose run three members on loopback with the TCP transport and the
// default configuration (controller.quorum.election.timeout.ms=1000).

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// BenchmarkElection: from three empty members to an agreed leader, then from closing
// that leader to a new agreed leader, with the default timeouts.
func BenchmarkElection(b *testing.B) {
	var elect, failover time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		c := startTCPCluster(b, vfs.NewMem(), "/data", nil, 1, 2, 3)
		l := c.leader(ctx, 0)
		elect += time.Since(start)
		start = time.Now()
		c.stop(l.id)
		c.leader(ctx, l.id)
		failover += time.Since(start)
		c.closeAll()
		cancel()
	}
	b.ReportMetric(float64(elect.Milliseconds())/float64(b.N), "elect-ms")
	b.ReportMetric(float64(failover.Milliseconds())/float64(b.N), "failover-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPropose: proposals of 100 bytes to the leader of three members, by 1 or 64
// concurrent proposers; reports proposals per second and the commit latency (Propose
// returns once the entry is committed and applied on the leader).
func BenchmarkPropose(b *testing.B) {
	for _, fsName := range []string{"memfs", "osfs"} {
		for _, workers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/proposers=%d", fsName, workers), func(b *testing.B) {
				fsys, root := vfs.FS(vfs.NewMem()), "/data"
				if fsName == "osfs" {
					fsys, root = vfs.OS(), b.TempDir()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				c := startTCPCluster(b, fsys, root, nil, 1, 2, 3)
				defer c.closeAll()
				l := c.leader(ctx, 0)
				data := make([]byte, 100)
				lat := make([][]time.Duration, workers)
				var next sync.Mutex
				left := b.N
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for {
							next.Lock()
							if left == 0 {
								next.Unlock()
								return
							}
							left--
							next.Unlock()
							t0 := time.Now()
							if _, err := l.node.Propose(ctx, data); err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) == 0 {
					return
				}
				q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "proposals/s")
				b.ReportMetric(q(0.5), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
			})
		}
	}
}

// BenchmarkSnapshot10MiB: taking a snapshot of a 10 MiB state (written, fsynced, the WAL
// restarted after it) and opening the log from it, on the OS filesystem.
func BenchmarkSnapshot10MiB(b *testing.B) {
	state := make([]byte, 10<<20)
	for i := range state {
		state[i] = byte(i * 7)
	}
	dir := b.TempDir()
	fsys := vfs.OS()
	s, _, err := openStorage(fsys, path.Join(dir, DirName), newTestLogger(b, nil))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.bootstrap([]uint64{1, 2, 3}, encodeSnapshotData(voters(1, 2, 3), nil)); err != nil {
		b.Fatal(err)
	}
	cs := raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}})
	var size int64
	var take, open time.Duration
	index := uint64(1)
	for b.Loop() {
		index++
		rd := raftpb.Entry{Index: new(index), Term: new(uint64(2)), Data: []byte("x")}
		if err := s.save(readyOf(&rd, index)); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := s.createSnapshot(index, cs, encodeSnapshotData(voters(1, 2, 3), state), 0); err != nil {
			b.Fatal(err)
		}
		take += time.Since(t0)
		fi, err := os.Stat(path.Join(dir, DirName, snapshotName(index, 2)))
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
		t0 = time.Now()
		s2, rec, err := openStorage(fsys, path.Join(dir, DirName), newTestLogger(b, nil))
		if err != nil || rec.snapshot.GetMetadata().GetIndex() != index {
			b.Fatalf("reopen: %v", err)
		}
		open += time.Since(t0)
		s2.close()
	}
	s.close()
	b.ReportMetric(float64(size)/(1<<20), "snapshot-MiB")
	b.ReportMetric(float64(take.Microseconds())/1000/float64(b.N), "take-ms")
	b.ReportMetric(float64(open.Microseconds())/1000/float64(b.N), "open-ms")
	b.ReportMetric(0, "ns/op")
}

func readyOf(e *raftpb.Entry, commit uint64) *raft.Ready {
	return &raft.Ready{Entries: []*raftpb.Entry{e}, HardState: hardState(2, 1, commit), MustSync: true}
}
