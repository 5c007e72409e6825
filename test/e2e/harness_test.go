// Package e2e drives the built broker binary as a separate process with
// unmodified Kafka clients: kcat (librdkafka), python3-kafka,
// python3-confluent-kafka and franz-go.
//
// TestMain builds the broker once per `go test` run into a temporary
// directory. By default that is ./cmd/vltava; VLTAVA_E2E_BROKER=kfake builds
// ./test/e2e/internal/kfakeserver instead (franz-go's fake cluster behind the
// same command line), which is how the harness itself is cross-checked against
// a Kafka-like peer. VLTAVA_E2E_BIN=/path/to/binary uses a prebuilt server.
// CI runs against vltava built from this tree.
//
// Every server a test starts listens on 127.0.0.1:0, reports its bound
// address through a ready file, and is stopped by its pid in t.Cleanup; its
// stderr goes to the test log when the test fails.
//
// What is here:
//   - matrix_test.go: each producer x each codec to a fresh topic, read back
//     by every client from the beginning, an offset and a timestamp, and
//     with small fetch limits, compared byte for byte (records_test.go holds
//     the record model, clients_test.go one adapter per client, pyclient.py
//     the python side);
//   - crash_test.go: kill -9 under franz-go and python producers, a producer
//     that lives through the restart, torn and corrupt segment tails;
//   - timestamps_test.go, topics_test.go, livetail_test.go: LogAppendTime,
//     timestamp queries, auto-creation, consumers waiting in long polls.
//
// A client that cannot do something (python3-kafka without its optional
// codec modules, kcat's fixed headers and producer-side timestamps) is
// narrowed or asserted to fail with its documented error, never skipped.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// brokerBin is the server binary built by TestMain; brokerKind names it.
var (
	brokerBin  string
	brokerKind string
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	// Cases spend their time waiting on client and broker processes, not on
	// the CPU: run more of them at once than -parallel's default of
	// GOMAXPROCS unless the caller chose.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "6")
	}
	if err := checkClientsInstalled(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n(.ci/run installs them: kcat python3-kafka python3-confluent-kafka)\n", err)
		return 1
	}
	if bin := os.Getenv("VLTAVA_E2E_BIN"); bin != "" {
		// A prebuilt server binary, for bisecting or trying a patched broker.
		brokerKind, brokerBin = "vltava", bin
		return m.Run()
	}
	brokerKind = os.Getenv("VLTAVA_E2E_BROKER")
	pkg := "./cmd/vltava"
	switch brokerKind {
	case "", "vltava":
		brokerKind = "vltava"
	case "kfake":
		pkg = "./test/e2e/internal/kfakeserver"
	default:
		fmt.Fprintf(os.Stderr, "e2e: VLTAVA_E2E_BROKER=%q: want vltava or kfake\n", brokerKind)
		return 2
	}
	dir, err := os.MkdirTemp("", "vltava-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	brokerBin = filepath.Join(dir, "broker")
	build := exec.Command("go", "build", "-o", brokerBin, pkg)
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", pkg, err, out)
		return 1
	}
	return m.Run()
}

// checkClientsInstalled fails early, with one clear message, when a client
// the tests drive is missing, rather than in every case that uses it.
func checkClientsInstalled() error {
	if _, err := exec.LookPath("kcat"); err != nil {
		return fmt.Errorf("kcat not found: %w", err)
	}
	for _, mod := range []string{"kafka", "confluent_kafka"} {
		if out, err := exec.Command("/usr/bin/python3", "-c", "import "+mod).CombinedOutput(); err != nil {
			return fmt.Errorf("/usr/bin/python3 cannot import %s: %v: %s", mod, err, out)
		}
	}
	return nil
}

// repoRoot is the module root: this package lives in <root>/test/e2e.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// e2eDir is the directory holding this package and its helper scripts.
func e2eDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// lockedBuffer collects a process's stderr while the test reads it.
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

// server is one broker process; it can be killed and restarted on the same
// data directory.
type server struct {
	t         testing.TB
	DataDir   string
	overrides []string
	// Listen is the address the next Start binds; empty means
	// 127.0.0.1:0. A restart may reuse the port the previous run was given
	// so that clients that know only that address reconnect.
	Listen string
	// Wrap, if set, runs the binary through this command (e.g. a shell setting
	// ulimit -n before it execs the broker, so the pid stays the broker's).
	Wrap []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	Addr   string        // host:port from the ready file of the current run
	runs   int
	logs   []*lockedBuffer // stderr of every run, in order
}

// startServer starts a broker on a fresh data directory and registers its
// stop with t.Cleanup.
func startServer(t testing.TB, overrides ...string) *server {
	t.Helper()
	s := &server{t: t, DataDir: t.TempDir(), overrides: overrides}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			for i, l := range s.logs {
				t.Logf("broker run %d stderr:\n%s", i+1, l.String())
			}
		}
	})
	s.Start()
	return s
}

// Start runs the binary and waits until its ready file appears.
func (s *server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("server already running")
	}
	s.runs++
	ready := filepath.Join(filepath.Dir(s.DataDir), fmt.Sprintf("ready-%d", s.runs))
	listen := s.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	args := []string{"server", "--data-dir", s.DataDir, "--listen", listen, "--ready-file", ready, "--http-listen", "none"}
	for _, o := range s.overrides {
		args = append(args, "--override", o)
	}
	cmd := exec.Command(brokerBin, args...)
	if len(s.Wrap) > 0 {
		cmd = exec.Command(s.Wrap[0], append(append(s.Wrap[1:len(s.Wrap):len(s.Wrap)], brokerBin), args...)...)
	}
	// If the test binary itself dies (a -timeout panic skips Cleanup), the
	// kernel kills the broker rather than leaving it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &lockedBuffer{}
	s.logs = append(s.logs, logs)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start broker: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	// Wait for the condition (the ready file) or the process's death; the
	// ticker only paces the checks of the file.
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(ready)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			s.Addr = strings.TrimSpace(string(b))
			return
		}
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("broker exited before ready (%v):\n%s", cmd.ProcessState, logs.String())
		case <-deadline:
			s.t.Fatalf("broker not ready after 60s:\n%s", logs.String())
		case <-tick.C:
		}
	}
}

// Signal sends sig to the running broker (SIGSTOP and SIGCONT for a pause).
func (s *server) Signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("signal %v: broker not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to be gone.
func (s *server) Kill() {
	s.t.Helper()
	s.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM (clean shutdown), escalating to SIGKILL after 20s; it is
// a no-op when the server is not running.
func (s *server) Stop() {
	s.t.Helper()
	if !s.signalAndWait(syscall.SIGTERM, 20*time.Second) {
		s.t.Errorf("broker did not stop within 20s of SIGTERM; killed")
		s.signalAndWait(syscall.SIGKILL, 10*time.Second)
	}
}

// signalAndWait signals the running process and waits up to wait for it to
// exit; false means it is still running.
func (s *server) signalAndWait(sig syscall.Signal, wait time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return true
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		if sig == syscall.SIGTERM && !s.cmd.ProcessState.Success() {
			s.t.Errorf("broker exited with %v after SIGTERM, want a clean exit", s.cmd.ProcessState)
		}
		s.cmd = nil
		return true
	case <-time.After(wait):
		return false
	}
}

// runCmd runs a client process with stdin, bounded by timeout (the process is
// killed by its pid when it expires), and returns its stdout and stderr.
func runCmd(ctx context.Context, timeout time.Duration, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = errors.Join(err, fmt.Errorf("timed out after %v", timeout))
	}
	return out.Bytes(), errb.Bytes(), err
}
