package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one `vltava server` process of the battery. It listens on its own
// loopback address (127.0.0.<10+id>) and keeps the port it was first given
// across restarts, so clients that know the address reconnect. Every start
// appends the process's output to LogPath.
type Node struct {
	ID        int
	Bin       string
	Host      string
	DataDir   string
	LogPath   string
	Overrides []string
	// Listeners, when set, is the node's listeners value (a cluster node
	// has a PLAINTEXT and a CONTROLLER listener at fixed ports, named in
	// every node's controller.quorum.voters); otherwise the node listens
	// on Host with the port of its first start.
	Listeners string
	// Controller is a cluster node's CONTROLLER listener (host:port).
	Controller string
	// GID, when not 0, is the group the process runs as (root only; it
	// stays root, so it reads and writes what the battery made). The nodes
	// of a cluster each run as their own group so that nftables can tell
	// their packets apart (meta skgid): a node's dialer does not bind its
	// own address, so all its connections leave from 127.0.0.1.
	GID int

	mu     sync.Mutex
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	paused bool
	runs   int
}

// ErrNotRunning is returned by signals to a node that is not running.
var ErrNotRunning = errors.New("node not running")

// Addr is the node's host:port (port 0 before its first start).
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("%s:%d", n.Host, n.port)
}

// Start runs the server and waits, up to timeout, for its ready file.
func (n *Node) Start(timeout time.Duration) error {
	ready, err := n.launch()
	if err != nil {
		return err
	}
	return n.waitReady(ready, timeout)
}

// StartAll launches every node before waiting for any: a node of a cluster
// may not be ready before a quorum of its peers runs.
func StartAll(nodes []*Node, timeout time.Duration) error {
	readies := make([]string, len(nodes))
	for i, n := range nodes {
		r, err := n.launch()
		if err != nil {
			return err
		}
		readies[i] = r
	}
	var errs []error
	for i, n := range nodes {
		if err := n.waitReady(readies[i], timeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// launch starts the process; it returns the ready file to wait for.
func (n *Node) launch() (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return "", fmt.Errorf("node %d already running", n.ID)
	}
	n.runs++
	dir := filepath.Dir(n.DataDir)
	ready := filepath.Join(dir, fmt.Sprintf("ready-%d", n.runs))
	args := []string{"server", "--data-dir", n.DataDir, "--ready-file", ready, "--http-listen", "none"}
	if n.Listeners == "" {
		args = append(args, "--listen", fmt.Sprintf("%s:%d", n.Host, n.port))
	}
	for _, o := range n.Overrides {
		args = append(args, "--override", o)
	}
	if n.Listeners != "" {
		args = append(args, "--override", "listeners="+n.Listeners)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(logf, "=== run %d at %s: %s %s\n", n.runs, time.Now().Format(time.RFC3339Nano), n.Bin, strings.Join(args, " "))
	cmd := exec.Command(n.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the battery dies (even by SIGKILL), the kernel kills its nodes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if n.GID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(n.GID)}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", fmt.Errorf("start node %d: %w", n.ID, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== run ended: %v\n", err)
		logf.Close()
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return ready, nil
}

// waitReady waits for the ready file of the run just launched, or the
// process's death, and learns the port the node listens on.
func (n *Node) waitReady(ready string, timeout time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd, exited := n.cmd, n.exited
	if cmd == nil {
		return fmt.Errorf("node %d not running", n.ID)
	}
	// Wait for the ready file or the process's death; the ticker only
	// paces the checks of the file.
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(b)) != "" {
			_, port, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
			p, err := strconv.Atoi(port)
			if err != nil {
				return fmt.Errorf("node %d ready file %q: %w", n.ID, b, err)
			}
			n.port = p
			return nil
		}
		select {
		case <-exited:
			n.cmd = nil
			return fmt.Errorf("node %d exited before it was ready (%v); see %s", n.ID, cmd.ProcessState, n.LogPath)
		case <-deadline.C:
			n.mu.Unlock()
			n.signalAndWait(syscall.SIGKILL, 10*time.Second)
			n.mu.Lock()
			return fmt.Errorf("node %d not ready after %v; killed; see %s", n.ID, timeout, n.LogPath)
		case <-tick.C:
		}
	}
}

// Running reports whether the process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		n.cmd = nil
		return false
	default:
		return true
	}
}

// Pid is the running process's id (0 when not running).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Paused reports whether the process is stopped by Pause.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && n.paused
}

// Pause freezes the process (SIGSTOP); Resume thaws it (SIGCONT).
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP, true) }

// Resume thaws a paused process.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return ErrNotRunning
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return err
	}
	n.paused = paused
	return nil
}

// Kill is kill -9: it returns once the process is gone.
func (n *Node) Kill() error {
	if !n.signalAndWait(syscall.SIGKILL, 10*time.Second) {
		return fmt.Errorf("node %d still alive 10s after SIGKILL", n.ID)
	}
	return nil
}

// Stop shuts the node down cleanly (SIGTERM, thawing it if paused). If it
// has not exited within grace it gets SIGQUIT, on which the Go runtime
// writes every goroutine's stack to the node's log (where the shutdown
// hung), then SIGKILL. It reports an unclean end.
func (n *Node) Stop(grace time.Duration) error {
	if n.signalAndWait(syscall.SIGTERM, grace) {
		return nil
	}
	if !n.signalAndWait(syscall.SIGQUIT, 5*time.Second) {
		n.signalAndWait(syscall.SIGKILL, 10*time.Second)
	}
	return fmt.Errorf("node %d did not stop within %v of SIGTERM; its goroutines' stacks are in %s (SIGQUIT), and it was killed", n.ID, grace, n.LogPath)
}

// signalAndWait signals the process and waits up to wait for it to exit;
// false means it is still running.
func (n *Node) signalAndWait(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-exited:
		n.mu.Lock()
		if n.cmd == cmd {
			n.cmd, n.paused = nil, false
		}
		n.mu.Unlock()
		return true
	case <-t.C:
		return false
	}
}

// WaitExit waits until the process exits or ctx ends; it reports whether it
// exited.
func (n *Node) WaitExit(ctx context.Context) bool {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-ctx.Done():
		return false
	}
}
