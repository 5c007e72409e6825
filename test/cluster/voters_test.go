package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestVoterChangesUnderLoad: while topics are created without pause, a follower voter is
// removed from the quorum with `vltava cluster remove-voter` and added back with `vltava
// cluster add-voter`, with its directory ID from `vltava storage info`; the quorum has the
// voters the tools say after each step, and every topic the load was told was created is
// listed by every node at the end.
func TestVoterChangesUnderLoad(t *testing.T) {
	voterChanges(t, false)
}

// TestRemoveLeaderVoterUnderLoad: the same with the quorum's leader, which KIP-853 has
// commit its own removal and then resign, so that another voter leads.
func TestRemoveLeaderVoterUnderLoad(t *testing.T) {
	voterChanges(t, true)
}

func voterChanges(t *testing.T, ofLeader bool) {
	ctx := context.Background()
	c := newCluster(t, 3, nil)
	c.startAll()
	if _, err := createTopic(ctx, c.bootstrap(), "warm", 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var controllers []string
	for _, nd := range c.nodes {
		controllers = append(controllers, nd.controller())
	}
	ctrl := strings.Join(controllers, ",")

	// The load: topics created one after another through every bootstrap address.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		mu      sync.Mutex
		created []string
		wg      sync.WaitGroup
	)
	// Stopped before the cluster's cleanup stops the nodes, however the test ends.
	t.Cleanup(func() { stopLoad(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; loadCtx.Err() == nil; i++ {
			tp := fmt.Sprintf("load-%04d", i)
			if _, err := createTopic(loadCtx, c.bootstrap(), tp, 1, 30*time.Second); err != nil {
				if loadCtx.Err() == nil {
					t.Errorf("load: %v", err)
				}
				return
			}
			mu.Lock()
			created = append(created, tp)
			mu.Unlock()
		}
	}()

	change := func(add bool, nd *node) {
		t.Helper()
		dir := directoryID(t, nd)
		args := []string{"cluster", "remove-voter", "--bootstrap-controller", ctrl, "--controller-id", fmt.Sprint(nd.id),
			"--controller-directory-id", dir, "--timeout", "30s"}
		if add {
			args[1] = "add-voter"
			args = append(args, "--controller-endpoints", "CONTROLLER://"+nd.controller())
		}
		start := time.Now()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("vltava %s after %s: %v\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, out)
		}
		t.Logf("%s %s", strings.TrimSpace(string(out)), time.Since(start).Round(time.Millisecond))
	}
	wantVoters := func(want ...int32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var got []int32
		var leader int32
		for time.Now().Before(deadline) {
			got, leader = quorumVoters(t, ctrl)
			if slices.Equal(got, want) && slices.Contains(want, leader) {
				return
			}
			time.Sleep(50 * time.Millisecond) // polling the quorum through the tool
		}
		t.Fatalf("voters %v led by %d, want %v led by one of them", got, leader, want)
	}

	leader, err := c.waitLeader(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var follower *node
	for _, nd := range c.nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	others := func(n *node) []int32 {
		var ids []int32
		for _, nd := range c.nodes {
			if nd != n {
				ids = append(ids, int32(nd.id))
			}
		}
		return ids
	}
	target := follower
	if ofLeader {
		target = leader
	}
	change(false, target)
	wantVoters(others(target)...)
	change(true, target)
	wantVoters(1, 2, 3)

	stopLoad()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(created) == 0 {
		t.Fatal("the load created no topic")
	}
	t.Logf("%d topics created during the voter changes", len(created))
	if _, err := c.waitTopicsEverywhere(ctx, created, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// directoryID is the directory.id `vltava storage info` prints for nd's data dir.
func directoryID(t *testing.T, nd *node) string {
	t.Helper()
	out := runTool(t, "storage", "info", "--config", nd.props())
	_, id, ok := strings.Cut(out, "directory.id=")
	if !ok {
		t.Fatalf("storage info printed no directory.id:\n%s", out)
	}
	return strings.TrimSpace(strings.SplitN(id, "\n", 2)[0])
}

// quorumVoters is the sorted voter IDs and the leader `vltava cluster info
// --bootstrap-controller` reports.
func quorumVoters(t *testing.T, controllers string) ([]int32, int32) {
	t.Helper()
	var info struct {
		Quorum struct {
			LeaderID int32 `json:"leader_id"`
			Voters   []struct {
				ID int32 `json:"id"`
			} `json:"voters"`
		} `json:"quorum"`
	}
	out := runTool(t, "cluster", "info", "--bootstrap-controller", controllers, "-o", "json", "--timeout", "10s")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("cluster info -o json: %v\n%s", err, out)
	}
	var ids []int32
	for _, v := range info.Quorum.Voters {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids, info.Quorum.LeaderID
}
