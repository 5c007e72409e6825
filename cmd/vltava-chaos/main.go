// Command vltava-chaos is Vltava's fault battery: it starts vltava server
// processes, runs idempotent acks=all producers (and an acks=1 one as a
// contrast) and a committing consumer group against them while a nemesis
// kills, pauses, fills the disk of and tears the segment tails of the nodes
// on a schedule chosen by --seed, heals, reads every partition back, checks
// the history for anomalies and writes a report (report.txt, run.svg,
// history.json) to --out. With --nodes 3 the nodes form a KRaft cluster,
// the nemesis also partitions and slows links between them, and a metadata
// workload creates and deletes topics beside the data workload.
//
//	vltava-chaos [flags]              run the battery (exit 1 on an anomaly the
//	                                  configuration promises cannot happen)
//	vltava-chaos check history.json   check a saved history again
//	vltava-chaos stats history.json...  per fault kind: runs, operations,
//	                                  anomalies, outage median and max
//
// As root it runs itself in a private mount namespace and a fresh network
// namespace (the sandbox), where it may mount a tmpfs per node and add
// nftables rules without touching the host; both vanish with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vltava/vltava/internal/chaos"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(check(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "stats" {
		os.Exit(stats(os.Args[2:]))
	}
	if os.Geteuid() == 0 && !chaos.InSandbox() {
		code, err := chaos.RunInSandbox()
		if err != nil {
			fmt.Fprintln(os.Stderr, "vltava-chaos:", err)
		}
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:]))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string) int {
	fs := flag.NewFlagSet("vltava-chaos", flag.ExitOnError)
	var (
		bin        = fs.String("bin", "", "the vltava binary (default: vltava beside this program, then $PATH)")
		out        = fs.String("out", "", "directory for the report, history and node logs (default: a new temp dir)")
		seed       = fs.Uint64("seed", 0, "schedule seed (default: from the clock; the report prints it)")
		duration   = fs.Duration("duration", time.Minute, "how long the workload runs")
		faults     = fs.String("faults", "kill,pause,diskfull,torn", "comma-separated faults: kill, pause, diskfull, torn, torn-acked, partition, slow, leader-kill, leader-pause, rolling, coord-kill")
		nodes      = fs.Int("nodes", 1, "nodes to start")
		partitions = fs.Int("partitions", 4, "partitions of the workload's topic")
		rf         = fs.Int("replication", 1, "replication factor of the workload's topic (at most --nodes); above 1 also __consumer_offsets' (offsets.topic.replication.factor)")
		minISR     = fs.Int("min-insync", -1, "the workload topic's min.insync.replicas (default: 2 with --replication 3 or more, else the broker's default)")
		producers  = fs.Int("producers", 2, "idempotent acks=all producers")
		acksOne    = fs.Bool("acks1", true, "add an acks=1 producer without idempotence (its losses are allowed)")
		rate       = fs.Int("rate", 200, "records per second per producer")
		consumers  = fs.Int("consumers", 2, "consumers in the group")
		pad        = fs.Int("pad", 100, "filler bytes per record")
		delivery   = fs.Duration("delivery-timeout", 0, "how long a producer retries a record before its application gets an error (default: 15s; 30s with --replication above 1, where a leader that died or froze is replaced only after broker.session.timeout.ms)")
		flushMsgs  = fs.Int64("flush-messages", 0, "the topic's flush.messages (1: fsync before every acknowledgement; 0: the broker's default)")
		segBytes   = fs.Int64("segment-bytes", 1<<20, "the topic's segment.bytes")
		diskSize   = fs.Int64("disk-size", 256<<20, "bytes of the tmpfs each node's data lives on (with diskfull)")
		warmup     = fs.Duration("warmup", 5*time.Second, "quiet time before the first fault")
		cooldown   = fs.Duration("cooldown", 5*time.Second, "quiet time after the last heal")
		gap        = fs.Duration("gap", 4*time.Second, "mean quiet time between faults")
		holdFor    = fs.Duration("hold", 3*time.Second, "mean time a fault lasts")
		metaRate   = fs.Float64("meta-rate", -1, "topic creations and deletions per second through random nodes (default: 2 with --nodes > 1, else 0)")
		finalWait  = fs.Duration("final-timeout", 60*time.Second, "bound on the read-back after healing")
		keepData   = fs.Bool("keep-data", false, "keep the nodes' data dirs (removed by default; logs and reports stay)")
		overrides  stringList
	)
	fs.Var(&overrides, "override", "key=value for every node (repeatable; after the battery's own group.initial.rebalance.delay.ms=0)")
	_ = fs.Parse(args)

	fk, err := chaos.ParseFaults(*faults)
	if err != nil {
		return usage(err)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *rf < 1 || *rf > *nodes {
		return usage(fmt.Errorf("--replication %d: want 1 to --nodes (%d)", *rf, *nodes))
	}
	if *delivery == 0 {
		*delivery = 15 * time.Second
		if *rf > 1 {
			*delivery = 30 * time.Second
		}
	}
	if *minISR < 0 {
		*minISR = 0
		if *rf >= 3 {
			*minISR = 2
		}
	}
	if *minISR > *rf {
		return usage(fmt.Errorf("--min-insync %d: above --replication %d no write could be acknowledged", *minISR, *rf))
	}
	if *metaRate < 0 {
		*metaRate = 0
		if *nodes > 1 {
			*metaRate = 2
		}
	}
	b, err := findBin(*bin)
	if err != nil {
		return usage(err)
	}
	if *out == "" {
		if *out, err = os.MkdirTemp("", fmt.Sprintf("vltava-chaos-%d-", *seed)); err != nil {
			return usage(err)
		}
	}
	replay := fmt.Sprintf("vltava-chaos --seed %d --duration %v --faults %s --nodes %d --partitions %d --replication %d --min-insync %d --producers %d --acks1=%v --rate %d --consumers %d --pad %d --delivery-timeout %v --flush-messages %d --segment-bytes %d --disk-size %d --warmup %v --cooldown %v --gap %v --hold %v --meta-rate %v",
		*seed, *duration, *faults, *nodes, *partitions, *rf, *minISR, *producers, *acksOne, *rate, *consumers, *pad, *delivery, *flushMsgs, *segBytes, *diskSize, *warmup, *cooldown, *gap, *holdFor, *metaRate)
	for _, o := range overrides {
		replay += " --override " + o
	}
	cfg := chaos.Config{
		Bin: b, OutDir: *out, Nodes: *nodes, Seed: *seed, Duration: *duration, Faults: fk,
		Warmup: *warmup, Cooldown: *cooldown, Gap: *gap, Hold: *holdFor,
		Workload: chaos.WorkloadOptions{Topic: "chaos", Partitions: int32(*partitions), Replication: *rf, MinInsync: *minISR, Group: "chaos-group",
			Producers: *producers, AcksOne: *acksOne, Rate: *rate, Consumers: *consumers, Pad: *pad, DeliveryTimeout: *delivery},
		FlushMessages: *flushMsgs, SegmentBytes: *segBytes, DiskSize: *diskSize,
		NodeOverrides: append(nodeDefaults(*rf), overrides...), FinalTimeout: *finalWait, Command: replay, MetaRate: *metaRate,
		Logf: func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "vltava-chaos: "+format+"\n", a...)
		},
	}
	if chaos.InSandbox() {
		if err := chaos.SetUpSandbox(); err != nil {
			return usage(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "vltava-chaos: seed %d, output in %s\n", *seed, *out)
	res, err := chaos.Run(ctx, cfg)
	if !*keepData {
		for i := 1; i <= *nodes; i++ {
			_ = os.RemoveAll(filepath.Join(*out, fmt.Sprintf("node%d", i)))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vltava-chaos:", err)
		return 2
	}
	fmt.Print(res.Report())
	switch {
	case len(res.Unexpected()) > 0:
		return 1
	case len(res.Notes) > 0:
		return 3
	}
	return 0
}

// nodeDefaults are the battery's overrides for every node: a group forms
// at once instead of waiting group.initial.rebalance.delay.ms (3 s, and 3 s
// more per member that joins meanwhile) after every restart of the
// coordinator, so that the consumers work between faults a few seconds
// apart, as Kafka's own system tests set it. With a replicated workload
// topic the group's offsets are replicated as much (Vltava's default
// offsets.topic.replication.factor is 1, for its single-node start).
func nodeDefaults(rf int) []string {
	d := []string{"group.initial.rebalance.delay.ms=0"}
	if rf > 1 {
		d = append(d, fmt.Sprintf("offsets.topic.replication.factor=%d", rf))
	}
	return d
}

func usage(err error) int {
	fmt.Fprintln(os.Stderr, "vltava-chaos:", err)
	return 2
}

// findBin resolves the vltava binary.
func findBin(bin string) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "vltava")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("vltava")
	if err != nil {
		return "", errors.New("no vltava binary: pass --bin (go build -o vltava ./cmd/vltava)")
	}
	return filepath.Abs(p)
}

// check re-checks saved histories and prints their anomalies.
func check(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: vltava-chaos check history.json ...")
		return 2
	}
	code := 0
	for _, path := range args {
		h, err := chaos.LoadHistory(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vltava-chaos:", err)
			return 2
		}
		as := chaos.Check(h)
		unexpected := 0
		for _, a := range as {
			fmt.Println(a)
			if !a.Expected {
				unexpected++
			}
		}
		fmt.Printf("%s: %d anomalies, %d unexpected\n", path, len(as), unexpected)
		if unexpected > 0 {
			code = 1
		}
	}
	return code
}

// stats prints the per-fault-kind numbers of saved histories.
func stats(args []string) int {
	var hs []chaos.History
	for _, path := range args {
		h, err := chaos.LoadHistory(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vltava-chaos:", err)
			return 2
		}
		hs = append(hs, h)
	}
	fmt.Print(chaos.SummaryTable(chaos.Summarize(hs)))
	return 0
}
