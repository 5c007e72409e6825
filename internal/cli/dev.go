// dev.go is `vltava dev`: a cluster of N nodes on loopback for trying things, each node a
// separate `vltava server` process of this binary with its own data dir, properties file
// and ports, all of them voters of the metadata quorum (process.roles=broker,controller).
//
// Layout under --dir (default ./dev-data):
//
//	dev.json                 the ports of every node, so that a second run of `vltava dev`
//	                         on the same dir reuses them: the cluster ID is derived from the
//	                         voters' addresses, so new ports would be another cluster
//	node-<id>/server.properties   Kafka's KRaft keys for the node (restart it with these)
//	node-<id>/data/          log.dirs
//	node-<id>/server.log     the node's stderr
//
// The nodes run in their own process group, so a Ctrl-C in the terminal reaches only this
// command, which then stops them in order: SIGTERM to each (a controlled shutdown), and
// SIGKILL to any still running after --stop-timeout. A node that dies (kill -9 by hand) is
// reported with the command that restarts it; a node restarted by hand is the user's to
// stop.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// devState is dev.json: the ports the dev cluster in a dir was given.
type devState struct {
	Nodes []devNode `json:"nodes"`
}

type devNode struct {
	ID             int `json:"id"`
	BrokerPort     int `json:"broker_port"`
	ControllerPort int `json:"controller_port"`
	HTTPPort       int `json:"http_port"`
}

// devProc is one running node.
type devProc struct {
	node   devNode
	dir    string // node-<id>
	props  string // its properties file
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	err    error         // cmd.Wait's result, set before exited closes
}

const devHost = "127.0.0.1"

func (e Env) dev(ctx context.Context, args []string) error {
	fs := e.plainFlagSet("dev", "[flags]")
	fs.About = "Starts a local cluster of --nodes processes of this binary (vltava server) on\n" +
		"127.0.0.1, every node a broker and a voter of the metadata quorum, and stops them all\n" +
		"on Ctrl-C. The ports are kept in DIR/dev.json, so running it again on the same --dir\n" +
		"restarts the same cluster."
	nodes := fs.Int("nodes", 3, "number of nodes (node.id 1..N)")
	dir := fs.String("dir", "dev-data", "base `DIR` of the nodes' data dirs, properties files and logs")
	bin := fs.String("bin", "", "the vltava `BINARY` to run the nodes with (default: this one)")
	stopTimeout := fs.Duration("stop-timeout", 30*time.Second, "how long a node may take to stop after SIGTERM before it is killed")
	startTimeout := fs.Duration("start-timeout", 60*time.Second, "how long to wait for every node to listen")
	racks := fs.String("racks", "", "comma-separated `RACKS` given to the nodes in turn as broker.rack (node 1 the first), for trying rack-aware placement")
	ov := &kvList{}
	fs.Var(ov, "override", "`key=value` broker config for every node (repeatable), e.g. --override num.partitions=3")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 64 {
		return fs.Fail(fmt.Errorf("--nodes %d: want 1 to 64", *nodes))
	}
	exe := *bin
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
	}
	base, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	state, reused, err := devLoadState(base, *nodes)
	if err != nil {
		return err
	}

	procs := make([]*devProc, len(state.Nodes))
	for i, n := range state.Nodes {
		p := &devProc{node: n, dir: filepath.Join(base, fmt.Sprintf("node-%d", n.ID))}
		p.props = filepath.Join(p.dir, "server.properties")
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			return err
		}
		rack := ""
		if rs := splitList(*racks); len(rs) > 0 {
			rack = rs[i%len(rs)]
		}
		if err := os.WriteFile(p.props, []byte(devProperties(state, n, p.dir, rack, ov)), 0o644); err != nil {
			return err
		}
		procs[i] = p
	}
	// From here on every started node is stopped on the way out, whatever happens.
	defer devStopAll(e.Stderr, procs, *stopTimeout)
	for _, p := range procs {
		if err := p.start(exe); err != nil {
			return fmt.Errorf("start node %d: %w", p.node.ID, err)
		}
	}
	if err := devWaitListening(ctx, procs, *startTimeout); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting: the deferred stop is what was asked for
		}
		return err
	}

	how := "new ports"
	if reused {
		how = "the ports of the last run"
	}
	nodesWord := "nodes"
	if len(procs) == 1 {
		nodesWord = "node"
	}
	fmt.Fprintf(e.Stdout, "vltava dev: %d %s, data in %s (%s, kept in dev.json)\n", len(procs), nodesWord, base, how)
	fmt.Fprintf(e.Stdout, "bootstrap servers: %s\n", devBootstrap(state))
	fmt.Fprintf(e.Stdout, "controller quorum: %s\n", devVoters(state))
	for _, p := range procs {
		fmt.Fprintf(e.Stdout, "node %d: pid %d, broker %s, controller %s, metrics http://%s/metrics, log %s\n",
			p.node.ID, p.cmd.Process.Pid, devAddr(p.node.BrokerPort), devAddr(p.node.ControllerPort),
			devAddr(p.node.HTTPPort), filepath.Join(p.dir, "server.log"))
		fmt.Fprintf(e.Stdout, "  to kill and restart it by hand: kill -9 %d; %s server --config %s\n",
			p.cmd.Process.Pid, exe, p.props)
	}
	fmt.Fprintf(e.Stdout, "try: %s cluster info --bootstrap-server %s\n", exe, devBootstrap(state))
	fmt.Fprintln(e.Stdout, "Ctrl-C stops every node.")

	// Report nodes that die while we wait for the interrupt.
	died := make(chan *devProc, len(procs))
	for _, p := range procs {
		go func() {
			<-p.exited
			died <- p
		}()
	}
	for alive := len(procs); alive > 0; {
		select {
		case <-ctx.Done():
			return nil // the deferred stop does the work
		case p := <-died:
			alive--
			fmt.Fprintf(e.Stderr, "vltava dev: node %d (pid %d) exited: %v; restart it with: %s server --config %s\n",
				p.node.ID, p.cmd.Process.Pid, devExitStatus(p.err), exe, p.props)
		}
	}
	return errors.New("every node has exited")
}

// devLoadState reads dir/dev.json, or picks free ports for n nodes and writes it. reused
// says the ports came from the file.
func devLoadState(dir string, n int) (devState, bool, error) {
	path := filepath.Join(dir, "dev.json")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var s devState
		if err := json.Unmarshal(b, &s); err != nil {
			return devState{}, false, fmt.Errorf("%s: %w (remove it to start a new cluster)", path, err)
		}
		if len(s.Nodes) != n {
			return devState{}, false, fmt.Errorf("%s holds a cluster of %d nodes, not %d: use --nodes %d, or another --dir for a new cluster",
				dir, len(s.Nodes), n, len(s.Nodes))
		}
		return s, true, nil
	case !errors.Is(err, os.ErrNotExist):
		return devState{}, false, err
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		return devState{}, false, err
	}
	var s devState
	for i := range n {
		s.Nodes = append(s.Nodes, devNode{ID: i + 1, BrokerPort: ports[3*i], ControllerPort: ports[3*i+1], HTTPPort: ports[3*i+2]})
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return devState{}, false, err
	}
	return s, false, os.Rename(tmp, path)
}

// freePorts asks the kernel for n distinct free ports on loopback, holding all of them
// open until the last is chosen so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", devHost+":0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func devAddr(port int) string { return net.JoinHostPort(devHost, strconv.Itoa(port)) }

func devBootstrap(s devState) string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, devAddr(n.BrokerPort))
	}
	return strings.Join(out, ",")
}

func devVoters(s devState) string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, fmt.Sprintf("%d@%s", n.ID, devAddr(n.ControllerPort)))
	}
	return strings.Join(out, ",")
}

// devProperties is a node's server.properties: Kafka's KRaft keys, its rack if any, then
// the --overrides.
func devProperties(s devState, n devNode, dir, rack string, ov *kvList) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `vltava dev`; rewritten at its next start.\n")
	fmt.Fprintf(&b, "node.id=%d\nprocess.roles=broker,controller\n", n.ID)
	fmt.Fprintf(&b, "listeners=PLAINTEXT://%s,CONTROLLER://%s\n", devAddr(n.BrokerPort), devAddr(n.ControllerPort))
	fmt.Fprintf(&b, "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n")
	fmt.Fprintf(&b, "controller.quorum.voters=%s\n", devVoters(s))
	fmt.Fprintf(&b, "log.dirs=%s\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "vltava.http.listener=%s\n", devAddr(n.HTTPPort))
	if rack != "" {
		fmt.Fprintf(&b, "broker.rack=%s\n", rack)
	}
	keys := append([]string(nil), ov.keys...)
	vals := map[string]string{}
	for i, k := range ov.keys {
		vals[k] = ov.values[i] // the last of a repeated key wins, as in a properties file
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k, vals[k])
	}
	return b.String()
}

// start runs the node with its stderr in server.log, in a process group of its own.
func (p *devProc) start(exe string) error {
	logf, err := os.OpenFile(filepath.Join(p.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	p.cmd = exec.Command(exe, "server", "--config", p.props)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group keeps a terminal's Ctrl-C from reaching it before this command
	// stops it in order; Pdeathsig stops it cleanly if this command dies without doing so
	// (kill -9). It names the forking thread, which Go keeps for the life of the process
	// unless a goroutine locked to it exits, which this package never does.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.exited = make(chan struct{})
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// devWaitListening waits until every node accepts connections on its broker listener.
func devWaitListening(ctx context.Context, procs []*devProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range procs {
		for {
			select {
			case <-p.exited:
				return fmt.Errorf("node %d exited at start: %v (see %s)", p.node.ID, devExitStatus(p.err), filepath.Join(p.dir, "server.log"))
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
			c, err := net.DialTimeout("tcp", devAddr(p.node.BrokerPort), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d does not listen on %s after %s (see %s)", p.node.ID, devAddr(p.node.BrokerPort), timeout, filepath.Join(p.dir, "server.log"))
			}
			// A connection refused comes back at once: pace the retries.
			select {
			case <-p.exited:
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// devStopAll sends SIGTERM to every running node, waits for them, and kills those still
// running after timeout.
func devStopAll(w io.Writer, procs []*devProc, timeout time.Duration) {
	var running []*devProc
	for _, p := range procs {
		if p.cmd == nil || p.cmd.Process == nil {
			continue
		}
		select {
		case <-p.exited:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		running = append(running, p)
	}
	if len(running) == 0 {
		return
	}
	fmt.Fprintf(w, "vltava dev: stopping %d nodes\n", len(running))
	kill := time.NewTimer(timeout)
	defer kill.Stop()
	for _, p := range running {
		select {
		case <-p.exited:
		case <-kill.C:
			for _, q := range running {
				select {
				case <-q.exited:
				default:
					fmt.Fprintf(w, "vltava dev: node %d (pid %d) still running %s after SIGTERM: killing it\n", q.node.ID, q.cmd.Process.Pid, timeout)
					_ = q.cmd.Process.Kill()
				}
			}
			<-p.exited
		}
		fmt.Fprintf(w, "vltava dev: node %d (pid %d) stopped: %s\n", p.node.ID, p.cmd.Process.Pid, devExitStatus(p.err))
	}
}

func devExitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
