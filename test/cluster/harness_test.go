// Package cluster drives the built vltava binary as several processes that form one
// cluster on loopback, as a user does: `vltava dev`, and `vltava server` processes started
// from a Kafka user's KRaft properties files.
//
// TestMain builds ./cmd/vltava once into a temporary directory (VLTAVA_E2E_BIN uses a
// prebuilt binary instead). Every process a test starts is stopped by its pid in
// t.Cleanup, and its stderr goes to the test log when the test fails. Ports are picked
// free at run time and kept for a node's restarts, since the voters' addresses are part of
// the cluster's identity.
//
// What is here: dev_test.go (`vltava dev`), quorum_test.go (forming, propagation,
// failover after kill -9, catch-up, foreign data dirs, `vltava cluster info`),
// clients_test.go (every client library producing and consuming in a group through a
// broker's kill -9), controller_id_test.go (the controller clients are told of; fenced
// brokers in `cluster info`), unregister_test.go (`vltava cluster unregister`),
// bench_test.go (the numbers in docs/cluster.md, only with -bench).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// bin is the vltava binary TestMain built.
var bin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	if b := os.Getenv("VLTAVA_E2E_BIN"); b != "" {
		bin = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vltava-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "vltava")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vltava")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one process the test started and must stop.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer // stdout and stderr
	exited chan struct{}
	err    error
}

func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	return startProcBin(t, bin, args...)
}

// startProcBin runs the program exe, stopped by t.Cleanup if the test has not.
func startProcBin(t testing.TB, exe string, args ...string) *proc {
	t.Helper()
	p := launch(t, exe, args...)
	// Whatever the test does, the process ends with it (a no-op if it was stopped).
	t.Cleanup(func() {
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil && !errors.Is(err, p.err) {
			t.Errorf("%s %v: %v", exe, args, err)
		}
	})
	return p
}

// launch runs exe; the caller stops it (a testCluster's nodes are stopped together by
// the cluster's cleanup).
func launch(t testing.TB, exe string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to timeout for the exit, then kills.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.done() {
		return p.err
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("pid %d still running %s after %v: killed", p.pid(), timeout, sig)
	}
}

// node is one `vltava server` of a test cluster, started from its properties file; it
// keeps its ports and data dir across restarts.
type node struct {
	t                        testing.TB
	id                       int
	dir                      string // holds server.properties and data/
	brokerPort, controllPort int
	extra                    map[string]string
	runs                     []*proc
}

func (n *node) broker() string     { return net.JoinHostPort("127.0.0.1", fmt.Sprint(n.brokerPort)) }
func (n *node) controller() string { return net.JoinHostPort("127.0.0.1", fmt.Sprint(n.controllPort)) }
func (n *node) props() string      { return filepath.Join(n.dir, "server.properties") }
func (n *node) dataDir() string    { return filepath.Join(n.dir, "data") }

// cur is the current run, or nil.
func (n *node) cur() *proc {
	if len(n.runs) == 0 {
		return nil
	}
	return n.runs[len(n.runs)-1]
}

func (n *node) running() bool { return n.cur() != nil && !n.cur().done() }

// testCluster is a set of nodes whose voters are the first `voters` of them.
type testCluster struct {
	t     testing.TB
	nodes []*node
}

// newCluster prepares n nodes (ids 1..n) with free ports, every one a broker and a voter,
// and writes their properties files; extra keys go into every file. Nothing starts.
func newCluster(t testing.TB, n int, extra map[string]string) *testCluster {
	t.Helper()
	base := t.TempDir()
	ports := freePorts(t, 2*n)
	c := &testCluster{t: t}
	for i := range n {
		c.nodes = append(c.nodes, &node{t: t, id: i + 1, dir: filepath.Join(base, fmt.Sprintf("node-%d", i+1)),
			brokerPort: ports[2*i], controllPort: ports[2*i+1], extra: extra})
	}
	for _, nd := range c.nodes {
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.writeProps(nd, c.voters())
	}
	t.Cleanup(func() {
		c.stopAll()
		for _, nd := range c.nodes {
			if t.Failed() {
				for i, r := range nd.runs {
					t.Logf("node %d run %d (pid %d) output:\n%s", nd.id, i+1, r.pid(), tail(r.out.String(), 60))
				}
			}
		}
	})
	return c
}

// stopAll sends SIGTERM to every running node at once and waits for each: one at a time,
// the last ones would wait in their controlled shutdown for a quorum that is going away.
func (c *testCluster) stopAll() {
	for _, nd := range c.nodes {
		if nd.running() {
			_ = nd.cur().cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, nd := range c.nodes {
		if p := nd.cur(); p != nil {
			if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil && !p.done() {
				c.t.Errorf("node %d: %v", nd.id, err)
			}
		}
	}
}

// tail keeps the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// voters is controller.quorum.voters for all nodes.
func (c *testCluster) voters() string {
	var v []string
	for _, n := range c.nodes {
		v = append(v, fmt.Sprintf("%d@%s", n.id, n.controller()))
	}
	return strings.Join(v, ",")
}

// writeProps writes a Kafka user's KRaft server.properties for nd.
func (c *testCluster) writeProps(nd *node, voters string) {
	props := fmt.Sprintf(`# A Kafka user's KRaft combined-mode properties.
node.id=%d
process.roles=broker,controller
listeners=PLAINTEXT://%s,CONTROLLER://%s
advertised.listeners=PLAINTEXT://%s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=%s
log.dirs=%s
vltava.http.listener=none
`, nd.id, nd.broker(), nd.controller(), nd.broker(), voters, nd.dataDir())
	for k, v := range nd.extra {
		props += k + "=" + v + "\n"
	}
	if err := os.WriteFile(nd.props(), []byte(props), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// start runs nd from its properties file and waits until its broker listener accepts.
func (nd *node) start() {
	nd.t.Helper()
	if nd.running() {
		nd.t.Fatalf("node %d already running", nd.id)
	}
	p := launch(nd.t, bin, "server", "--config", nd.props())
	nd.runs = append(nd.runs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.done() {
			nd.t.Fatalf("node %d exited at start: %v\n%s", nd.id, p.err, tail(p.out.String(), 30))
		}
		if c, err := net.DialTimeout("tcp", nd.broker(), time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			nd.t.Fatalf("node %d does not listen on %s after 30s", nd.id, nd.broker())
		}
		select {
		case <-p.exited:
		case <-time.After(20 * time.Millisecond): // a refused dial returns at once
		}
	}
}

// kill9 kills the node's process with SIGKILL and waits for it.
func (nd *node) kill9() {
	p := nd.cur()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func (c *testCluster) startAll() {
	for _, n := range c.nodes {
		n.start()
	}
}

// bootstrap lists the broker addresses of the running nodes.
func (c *testCluster) bootstrap() []string {
	var out []string
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n.broker())
		}
	}
	return out
}

// admin is a kadm client for seeds, closed at the end of the test.
func admin(t testing.TB, seeds ...string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(100), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates a topic through seeds, retrying until the cluster accepts it or
// timeout passes, and returns how long it took.
func createTopic(ctx context.Context, seeds []string, topic string, partitions int32, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		last = tryCreate(ctx, seeds, topic, partitions)
		if last == nil {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // pace retries of an answered refusal
		}
	}
	return time.Since(start), fmt.Errorf("create %s through %v: %w (last error: %v)", topic, seeds, ctx.Err(), last)
}

// tryCreate makes one attempt with a fresh client, so that a dead node's connection
// state from an earlier attempt does not slow this one.
func tryCreate(ctx context.Context, seeds []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second),
		kgo.DialTimeout(time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopic(actx, partitions, 1, nil, topic)
	if err != nil {
		return err
	}
	if res.Err != nil && !errors.Is(res.Err, errTopicExists) {
		return res.Err
	}
	return nil
}

// topicsOn lists the topic names node nd's broker knows.
func topicsOn(ctx context.Context, nd *node) (map[string]bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.broker()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// Straight to this broker: kadm's Metadata would answer from any node.
	b := cl.SeedBrokers()[0]
	req := kmsgMetadataAll()
	resp, err := b.RetriableRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	return metadataTopics(resp), nil
}

// waitTopicsEverywhere waits until every running node's broker lists every topic.
func (c *testCluster) waitTopicsEverywhere(ctx context.Context, topics []string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for _, nd := range c.nodes {
		if !nd.running() {
			continue
		}
		for {
			have, err := topicsOn(ctx, nd)
			missing := 0
			for _, tp := range topics {
				if !have[tp] {
					missing++
				}
			}
			if err == nil && missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				return time.Since(start), fmt.Errorf("node %d after %s: %d of %d topics missing (err %v)", nd.id, timeout, missing, len(topics), err)
			}
			time.Sleep(10 * time.Millisecond) // polling another process: no event to wait on
		}
	}
	return time.Since(start), nil
}

var errTopicExists = kerr.TopicAlreadyExists

func kmsgMetadataAll() *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	return req
}

func metadataTopics(r kmsg.Response) map[string]bool {
	out := map[string]bool{}
	for _, tp := range r.(*kmsg.MetadataResponse).Topics {
		if tp.Topic != nil && tp.ErrorCode == 0 {
			out[*tp.Topic] = true
		}
	}
	return out
}

// controllerOf asks nd's broker which node is the controller (the quorum's leader).
func controllerOf(ctx context.Context, nd *node) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.broker()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].RetriableRequest(ctx, kmsgMetadataAll())
	if err != nil {
		return -1, err
	}
	return resp.(*kmsg.MetadataResponse).ControllerID, nil
}

// waitLeader waits until a running node names a running node as the controller.
func (c *testCluster) waitLeader(ctx context.Context, timeout time.Duration) (*node, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		for _, nd := range c.nodes {
			if !nd.running() {
				continue
			}
			id, err := controllerOf(ctx, nd)
			if err != nil {
				last = err
				continue
			}
			if id >= 1 && int(id) <= len(c.nodes) && c.nodes[id-1].running() {
				return c.nodes[id-1], nil
			}
		}
		time.Sleep(20 * time.Millisecond) // polling other processes
	}
	return nil, fmt.Errorf("no running controller after %s (last error %v)", timeout, last)
}
