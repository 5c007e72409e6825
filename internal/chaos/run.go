package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one battery run.
type Config struct {
	Bin    string // the vltava binary
	OutDir string // node logs and data, history.json, report.txt, run.svg
	Nodes  int
	Seed   uint64
	// Duration is the workload's length; faults happen between Warmup and
	// Duration-Cooldown, Gap apart, each held about Hold.
	Duration                    time.Duration
	Faults                      []FaultKind
	Warmup, Cooldown, Gap, Hold time.Duration
	Workload                    WorkloadOptions
	// FlushMessages is the topic's flush.messages (0: the broker's
	// default, Kafka's: acknowledged from the page cache).
	FlushMessages int64
	SegmentBytes  int64 // the topic's segment.bytes (0: default)
	// DiskSize is the tmpfs each node's data lives on when the diskfull
	// fault is in the mix.
	DiskSize int64
	// NodeOverrides are extra --override key=value for every node.
	NodeOverrides []string
	// MetaRate is the metadata workload's topic creations and deletions
	// per second (0: none).
	MetaRate float64
	// FinalTimeout bounds the read-back after healing.
	FinalTimeout time.Duration
	// Command is the command line that replays the run, for the report.
	Command string
	Logf    func(format string, args ...any)
}

// Result is what a run produced.
type Result struct {
	Config       Config
	Steps        []Step
	History      History
	Anomalies    []Anomaly
	Availability Availability
	// Notes are problems of the run itself rather than anomalies of the
	// history: a node that would not restart or stop, a final read that
	// did not finish. A run with notes did not prove what it meant to.
	Notes   []string
	Elapsed time.Duration
}

// Unexpected returns the anomalies the configuration promises cannot happen.
func (r *Result) Unexpected() []Anomaly {
	var out []Anomaly
	for _, a := range r.Anomalies {
		if !a.Expected {
			out = append(out, a)
		}
	}
	return out
}

func (c Config) scheduleOptions() ScheduleOptions {
	return ScheduleOptions{Seed: c.Seed, Duration: c.Duration, Nodes: c.Nodes, Faults: c.Faults,
		Warmup: c.Warmup, Cooldown: c.Cooldown, Gap: c.Gap, Hold: c.Hold}
}

func (c Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Run starts the nodes, runs the workload while the nemesis follows the
// seed's schedule, heals, reads everything back, checks the history and
// writes the report into cfg.OutDir. Nodes are stopped and disks unmounted
// on every return.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	began := time.Now()
	res := &Result{Config: cfg}
	steps, err := Schedule(cfg.scheduleOptions())
	if err != nil {
		return nil, err
	}
	res.Steps = steps
	needDisk := slices.Contains(cfg.Faults, DiskFull)
	if (needDisk || slices.Contains(cfg.Faults, Partition) || slices.Contains(cfg.Faults, Slow)) && !InSandbox() {
		return nil, errors.New("diskfull, partition and slow faults need the battery's sandbox (root; vltava-chaos enters it itself)")
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}

	nem := &nemesis{cfg: cfg, disks: map[int]*Disk{}, fw: NewFirewall()}
	defer nem.teardown(res)
	for i := 1; i <= cfg.Nodes; i++ {
		dir := nodeDir(cfg.OutDir, i)
		n := &Node{ID: i, Bin: cfg.Bin, Host: fmt.Sprintf("127.0.0.%d", 10+i), DataDir: filepath.Join(dir, "data"),
			LogPath: filepath.Join(cfg.OutDir, fmt.Sprintf("node%d.log", i)), Overrides: slices.Clone(cfg.NodeOverrides)}
		if needDisk {
			d, err := MountDisk(filepath.Join(dir, "disk"), cfg.DiskSize)
			if err != nil {
				return nil, err
			}
			nem.disks[i] = d
			n.DataDir = filepath.Join(d.Dir, "data")
		}
		nem.nodes = append(nem.nodes, n)
	}
	if cfg.Nodes > 1 {
		var err error
		if nem.proxies, err = clusterNodes(nem.nodes, slices.Contains(cfg.Faults, Slow)); err != nil {
			return nil, err
		}
	}
	if err := StartAll(nem.nodes, 60*time.Second); err != nil {
		return nil, err
	}
	cfg.logf("nodes up: %v", addrs(nem.nodes))
	brokers := 0
	if cfg.Nodes > 1 {
		// Every node is a broker: wait for their registrations (bounded:
		// on main today only the quorum's leader registers itself).
		brokers = brokersRegistered(ctx, nem.nodes, 5*time.Second)
		cfg.logf("%d of %d nodes registered as brokers", brokers, cfg.Nodes)
	}
	if err := createTopic(ctx, cfg, addrs(nem.nodes)); err != nil {
		return nil, err
	}

	rec := NewRecorder(History{Seed: cfg.Seed, Topic: cfg.Workload.Topic, Group: cfg.Workload.Group,
		Nodes: cfg.Nodes, Brokers: brokers, Writers: cfg.Workload.writers(), FlushMessages: cfg.FlushMessages,
		Replication: max(1, cfg.Workload.Replication), MinInsync: cfg.Workload.MinInsync})
	nem.rec = rec
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	clientLog, err := os.Create(filepath.Join(cfg.OutDir, "clients.log"))
	if err != nil {
		return nil, err
	}
	defer clientLog.Close()
	wl := &workload{opts: cfg.Workload, seeds: addrs(nem.nodes), rec: rec, logf: cfg.logf, clientLog: &lockedWriter{w: clientLog}}
	if err := wl.start(wctx); err != nil {
		return nil, err
	}
	mw := &metaWorkload{rate: cfg.MetaRate, seed: cfg.Seed, nodes: nem.nodes, rec: rec}
	if err := mw.start(wctx); err != nil {
		return nil, err
	}
	if cfg.Nodes > 1 {
		mw.wg.Add(1)
		go func() { defer mw.wg.Done(); quorumWatch(wctx, rec, nem.nodes) }()
	}
	// A fault that lasts longer than its scheduled hold (a rolling restart,
	// a pause past the session timeout, a slow restart) shifts the later
	// steps by as much, so that each keeps its quiet time before it; the
	// steps that would then end after the cooldown began are left out.
	var shift time.Duration
	for i, s := range steps {
		if s.At+shift+cfg.expectedLen(s) > cfg.Duration-cfg.Cooldown {
			cfg.logf("%d of %d scheduled faults left out: the faults before them overran by %v", len(steps)-i, len(steps), shift.Round(time.Millisecond))
			break
		}
		if !sleepUntil(ctx, rec, s.At+shift) {
			break
		}
		f := nem.do(ctx, s)
		shift = max(shift, f.End-s.At-s.Hold)
		cfg.logf("%v %s nodes %v: %s %s", f.Start.Round(time.Millisecond), f.Kind, f.Nodes, f.Detail, f.Err)
		rec.Do(func(h *History) { h.Faults = append(h.Faults, f) })
	}
	sleepUntil(ctx, rec, cfg.Duration)
	// End is when the clients are told to stop: what they still buffer
	// fails from then on because of the stop, not of a fault.
	end := rec.Now()
	wcancel()
	wl.stop()
	mw.stop()
	rec.Do(func(h *History) { h.End = end })
	cfg.logf("workload stopped at %v; healing", rec.Now().Round(time.Millisecond))

	res.Notes = append(res.Notes, nem.healAll()...)
	if cfg.Nodes > 1 && cfg.Workload.Replication > 1 {
		// Every replica back in the ISR before the final read, so that
		// the copies read from disk after the stop must all reach the
		// high watermark.
		if took, err := nem.isrFull(ctx, 60*time.Second); err != nil {
			res.Notes = append(res.Notes, "after healing: "+err.Error())
		} else {
			cfg.logf("ISR full %v after healing", took.Round(time.Millisecond))
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, cfg.FinalTimeout)
	defer fcancel()
	if err := finalRead(fctx, rec, nem.nodes, cfg.Workload.Topic, cfg.Workload.Group, cfg.Workload.Partitions); err != nil {
		res.Notes = append(res.Notes, "final read: "+err.Error())
	}
	if cfg.MetaRate > 0 {
		if err := metaViews(fctx, rec, nem.nodes); err != nil {
			res.Notes = append(res.Notes, "metadata views: "+err.Error())
		}
	}
	stopped := true
	for _, n := range nem.nodes {
		if err := n.Stop(20 * time.Second); err != nil {
			res.Notes = append(res.Notes, err.Error())
			stopped = false
		}
	}
	if cfg.Nodes > 1 && stopped {
		if err := readReplicas(rec, nem.nodes, cfg.Workload.Topic, cfg.Workload.Partitions); err != nil {
			res.Notes = append(res.Notes, "replica read: "+err.Error())
		}
	}

	if cfg.Nodes > 1 {
		for _, n := range nem.nodes {
			ls, err := logLeaderClaims(n.LogPath, rec.Start())
			if err != nil {
				res.Notes = append(res.Notes, "leader claims: "+err.Error())
			}
			rec.Do(func(h *History) { h.Leaders = append(h.Leaders, ls...) })
		}
	}
	res.History = rec.Snapshot()
	res.Anomalies = Check(res.History)
	res.Availability = Measure(res.History, OutageMin)
	res.Elapsed = time.Since(began)
	return res, res.write()
}

// expectedLen is about how long step s will take: its hold, or for a leader
// pause the session timeout and an election more, for a rolling restart a
// few seconds a node more (a controlled shutdown, a restart, the ISR
// filling again).
func (c Config) expectedLen(s Step) time.Duration {
	switch s.Kind {
	case LeaderPause:
		return c.sessionTimeout() + electionAllowance + s.Hold
	case Rolling:
		return s.Hold + time.Duration(c.Nodes)*4*time.Second
	}
	return s.Hold
}

// sleepUntil waits until the recorder's clock reaches at; false if ctx
// ended first.
func sleepUntil(ctx context.Context, rec *Recorder, at time.Duration) bool {
	d := at - rec.Now()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func createTopic(ctx context.Context, cfg Config, seeds []string) error {
	cl, err := kgo.NewClient(clientOpts(seeds)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	configs := map[string]*string{}
	if cfg.FlushMessages > 0 {
		configs["flush.messages"] = kadm.StringPtr(fmt.Sprint(cfg.FlushMessages))
	}
	if cfg.SegmentBytes > 0 {
		configs["segment.bytes"] = kadm.StringPtr(fmt.Sprint(cfg.SegmentBytes))
	}
	if cfg.Workload.MinInsync > 0 {
		configs["min.insync.replicas"] = kadm.StringPtr(fmt.Sprint(cfg.Workload.MinInsync))
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = retry(cctx, func() (kadm.CreateTopicResponse, error) {
		return kadm.NewClient(cl).CreateTopic(cctx, cfg.Workload.Partitions, int16(max(1, cfg.Workload.Replication)), configs, cfg.Workload.Topic)
	})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", cfg.Workload.Topic, err)
	}
	return nil
}

// write saves the history, the text report and the picture.
func (r *Result) write() error {
	dir := r.Config.OutDir
	if err := r.History.Save(filepath.Join(dir, "history.json")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(r.Report()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "run.svg"), []byte(SVG(r.History, r.Availability)), 0o644)
}

// lockedWriter serializes the clients' log lines into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
