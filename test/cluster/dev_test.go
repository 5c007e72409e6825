package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDev runs `vltava dev --nodes 3` as a user does: it reads the bootstrap list and the
// pids from what it prints, produces and consumes through that list with franz-go, sends
// SIGINT, and checks every node's process is gone. A second run on the same dir reuses
// the ports, so it is the same cluster and the topic is still there.
func TestDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev-data")
	ctx := context.Background()

	seeds, pids, stop, devOut := runDev(t, dir)
	if len(pids) != 3 || len(seeds) != 3 {
		t.Fatalf("got seeds %v and pids %v, want 3 of each", seeds, pids)
	}
	if _, err := createTopic(ctx, seeds, "dev-topic", 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("dev-topic"),
		kgo.ConsumeTopics("dev-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := map[string]bool{}
	for i := range 20 {
		v := fmt.Sprintf("record-%d", i)
		want[v] = true
		if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	for len(want) > 0 {
		fs := cl.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("consume: %d records not read: %v", len(want), err)
		}
		fs.EachRecord(func(r *kgo.Record) { delete(want, string(r.Value)) })
	}
	cl.Close()

	// kill -9 of a node: vltava dev says so, with the command that restarts it, and that
	// command, run by hand, brings the node back into the cluster.
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restart := waitRestartLine(t, devOut, 2)
	args := strings.Fields(restart)
	if len(args) < 2 || args[1] != "server" {
		t.Fatalf("restart command %q", restart)
	}
	byHand := startProcBin(t, args[0], args[1:]...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := topicsOnSeeds(pctx, seeds[1:2], "dev-topic"); err == nil {
			break
		} else if time.Now().After(deadline) || byHand.done() {
			t.Fatalf("node 2 restarted by hand does not list dev-topic: %v\n%s", err, tail(byHand.out.String(), 20))
		}
		time.Sleep(20 * time.Millisecond) // polling the restarted node
	}
	// The node restarted by hand is ours to stop, not vltava dev's.
	if err := byHand.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("node 2 restarted by hand: %v", err)
	}
	stopDev(t, stop, []int{pids[0], pids[2]})

	// The same dir again: the same ports, so the same cluster with its topic.
	seeds2, pids2, stop2, _ := runDev(t, dir)
	if strings.Join(seeds2, ",") != strings.Join(seeds, ",") {
		t.Errorf("second run: bootstrap %v, want the first run's %v", seeds2, seeds)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(seeds2...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	for {
		if _, err := topicsOnSeeds(pctx, seeds2, "dev-topic"); err == nil {
			break
		} else if pctx.Err() != nil {
			t.Fatalf("second run: dev-topic not listed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the restarted cluster
	}
	stopDev(t, stop2, pids2)
}

// runDev starts `vltava dev --nodes 3 --dir dir` and parses its bootstrap list and pids.
// stop interrupts it and waits; t.Cleanup does the same if the test ends first.
func runDev(t *testing.T, dir string) (seeds []string, pids []int, stop func(), out *lockedBuffer) {
	t.Helper()
	p := startProc(t, "dev", "--nodes", "3", "--dir", dir)
	t.Cleanup(func() {
		if err := p.stop(syscall.SIGINT, 60*time.Second); err != nil && !p.done() {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("vltava dev output:\n%s", p.out.String())
		}
	})
	nodeLine := regexp.MustCompile(`^node (\d+): pid (\d+),`)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !p.done() {
		out := p.out.String()
		if strings.Contains(out, "Ctrl-C stops every node.") {
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if b, ok := strings.CutPrefix(line, "bootstrap servers: "); ok {
					seeds = strings.Split(b, ",")
				}
				if m := nodeLine.FindStringSubmatch(line); m != nil {
					pid, _ := strconv.Atoi(m[2])
					pids = append(pids, pid)
				}
			}
			stop = func() {
				if err := p.stop(syscall.SIGINT, 60*time.Second); err != nil {
					t.Errorf("vltava dev after SIGINT: %v\n%s", err, p.out.String())
				}
			}
			return seeds, pids, stop, p.out
		}
		time.Sleep(20 * time.Millisecond) // polling the child's output
	}
	t.Fatalf("vltava dev did not start its nodes:\n%s", p.out.String())
	return nil, nil, nil, nil
}

// waitRestartLine waits for vltava dev to report node id's exit and returns the restart
// command it prints.
func waitRestartLine(t *testing.T, out *lockedBuffer, id int) string {
	t.Helper()
	prefix := fmt.Sprintf("vltava dev: node %d (pid ", id)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, "signal: killed") {
				if _, cmd, ok := strings.Cut(line, "restart it with: "); ok {
					return cmd
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the child's output
	}
	t.Fatalf("vltava dev did not report node %d's kill -9:\n%s", id, out.String())
	return ""
}

// stopDev interrupts the dev process that started pids and checks every node is gone.
func stopDev(t *testing.T, stop func(), pids []int) {
	t.Helper()
	stop()
	for _, pid := range pids {
		// The dev process waited for its children, so their pids are free now.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node pid %d still exists after vltava dev stopped (kill 0: %v)", pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// topicsOnSeeds checks that the broker at the first seed lists topic.
func topicsOnSeeds(ctx context.Context, seeds []string, topic string) (bool, error) {
	have, err := topicsOn(ctx, &node{brokerPort: portOf(seeds[0])})
	if err != nil {
		return false, err
	}
	if !have[topic] {
		return false, fmt.Errorf("%s not listed by %s", topic, seeds[0])
	}
	return true, nil
}

func portOf(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}
