// Package chaos is the short fault battery CI runs: the built vltava-chaos
// command against the built vltava binary, with fixed seeds, one run per
// fault kind the single node has and one of a 3-node cluster. A run fails
// on any anomaly its configuration promises cannot happen (an acknowledged
// acks=all record
// lost, a duplicate from an idempotent producer, an offset reused, ...),
// and on a run that could not do what it meant to (a node that would not
// restart or stop, a final read that did not finish). Each run's report,
// history and picture stay in a temporary directory whose path the test
// prints. The long battery is the same command with --duration and --seed
// (README, "Fault battery").
package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/chaos"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vltava-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, pkg := range []string{"vltava", "vltava-chaos"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "./cmd/"+pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build ./cmd/%s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// ciRuns are the CI battery: fixed seeds, about two minutes of workload in
// all. Every run uses flush.messages=1 where a torn tail is involved (only
// then is an acknowledged batch on disk before a power loss).
var ciRuns = []struct {
	name string
	args []string
	// tornAcked: the run tears acknowledged records on purpose, and the
	// checker must report exactly those lost, as expected.
	tornAcked bool
	// kinds are fault kinds the seed must have injected.
	kinds []chaos.FaultKind
}{
	{name: "kill-pause", args: []string{"--seed", "11", "--duration", "35s", "--faults", "kill,pause"}},
	{name: "diskfull", args: []string{"--seed", "12", "--duration", "25s", "--faults", "diskfull", "--disk-size", "67108864"}},
	{name: "torn", args: []string{"--seed", "13", "--duration", "25s", "--faults", "torn", "--flush-messages", "1"}},
	{name: "torn-acked", args: []string{"--seed", "14", "--duration", "20s", "--faults", "torn-acked", "--flush-messages", "1"}, tornAcked: true},
	// Three combined nodes of one KRaft quorum: the controller paused,
	// killed and cut off (reset) by the seed's picks, another node killed,
	// with the metadata workload beside the data workload.
	{name: "cluster", args: []string{"--seed", "59", "--duration", "35s", "--nodes", "3", "--faults", "kill,pause,partition"}},
	// Three nodes, the workload's topic and the group's offsets with
	// replication factor 3 and min.insync.replicas 2: a partition leader
	// killed and paused past the session timeout, a rolling restart with
	// controlled shutdowns (no error may reach an idempotent producer), the
	// group's coordinator killed.
	{name: "cluster-rf3", args: []string{"--seed", "309", "--duration", "70s", "--nodes", "3", "--replication", "3",
		"--faults", "leader-kill,leader-pause,rolling,coord-kill"},
		kinds: []chaos.FaultKind{chaos.LeaderKill, chaos.LeaderPause, chaos.Rolling, chaos.CoordKill}},
}

func TestBattery(t *testing.T) {
	base, err := os.MkdirTemp("", "vltava-chaos-ci-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reports in %s", base)
	for _, r := range ciRuns {
		t.Run(r.name, func(t *testing.T) {
			out := filepath.Join(base, r.name)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "vltava-chaos"), append([]string{"--out", out}, r.args...)...)
			// SIGTERM first: the battery then heals and stops its nodes.
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 30 * time.Second
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			t.Logf("%s took %v; report, history.json and run.svg in %s\n%s", r.name, time.Since(start).Round(time.Second), out, stdout.String())
			if err != nil {
				t.Fatalf("vltava-chaos: %v\n%s", err, stderr.String())
			}
			h, err := chaos.LoadHistory(filepath.Join(out, "history.json"))
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, h, r.tornAcked)
			for _, k := range r.kinds {
				if !slices.ContainsFunc(h.Faults, func(f chaos.Fault) bool { return f.Kind == k }) {
					t.Errorf("seed %d injected no %s fault", h.Seed, k)
				}
			}
		})
	}
}

// checkRun re-checks the saved history: no unexpected anomaly, faults
// really injected, and for the torn-acked run exactly the destroyed
// acknowledged records reported lost.
func checkRun(t *testing.T, h chaos.History, tornAcked bool) {
	t.Helper()
	as := chaos.Check(h)
	for _, a := range as {
		if !a.Expected {
			t.Errorf("seed %d: %v", h.Seed, a)
		}
	}
	if len(h.Faults) == 0 {
		t.Fatal("no fault injected")
	}
	for _, f := range h.Faults {
		if f.Err != "" {
			t.Errorf("fault %s at %v failed: %s", f.Kind, f.Start, f.Err)
		}
	}
	ok := 0
	for _, w := range h.Writes {
		if w.OK() {
			ok++
		}
	}
	polled := 0
	for _, p := range h.Polls {
		polled += len(p.Records)
	}
	if ok < 1000 || polled < 1000 {
		t.Errorf("only %d writes acknowledged and %d records polled: the run proves little", ok, polled)
	}
	if h.Nodes > 1 {
		checkCluster(t, h)
	}
	if !tornAcked {
		return
	}
	want := map[string]bool{}
	for _, f := range h.Faults {
		tr := f.Torn
		if tr == nil || !tr.Acked {
			continue
		}
		for _, w := range h.Writes {
			if w.OK() && w.Partition == tr.Partition && w.Offset >= tr.FromOffset && w.Complete <= f.End {
				want[w.Value] = true
			}
		}
	}
	got := map[string]bool{}
	for _, a := range as {
		if a.Kind == chaos.Lost {
			for _, v := range a.Values {
				got[v] = true
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the torn-acked faults destroyed no acknowledged record")
	}
	if d := diff(want, got); d != "" {
		t.Errorf("lost records differ from those the tears destroyed: %s", d)
	}
}

// checkCluster: the metadata workload did its work and every node's view was
// read, and the leader claims were found (the checker already required them
// consistent).
func checkCluster(t *testing.T, h chaos.History) {
	t.Helper()
	created := 0
	for _, op := range h.MetaOps {
		if op.Op == "create" && op.OK() {
			created++
		}
	}
	if created < 20 {
		t.Errorf("only %d topic creations acknowledged: the metadata workload proves little", created)
	}
	if len(h.MetaViewNodes) != h.Nodes {
		t.Errorf("metadata views of nodes %v, want all %d", h.MetaViewNodes, h.Nodes)
	}
	if len(h.Leaders) == 0 {
		t.Error("no leader claim found in the nodes' logs")
	}
}

func diff(want, got map[string]bool) string {
	var missing, extra []string
	for v := range want {
		if !got[v] {
			missing = append(missing, v)
		}
	}
	for v := range got {
		if !want[v] {
			extra = append(extra, v)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("destroyed but not reported lost %v; reported lost but not destroyed %v", missing, extra)
}
