package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The tests run the binary as a separate process without building it: the test binary
// itself runs main() when asked to by runMainEnv.
const runMainEnv = "VLTAVA_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// vltava runs `vltava args...` as a process and returns its output and exit status.
func vltava(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run vltava %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestVersion(t *testing.T) {
	out, errOut, code := vltava(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vltava ") || !strings.Contains(out, "go1.") || errOut != "" {
		t.Fatalf("vltava version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out2, _, code := vltava(t, "--version")
	if code != 0 || out2 != out {
		t.Fatalf("vltava --version: exit %d, %q; want what `vltava version` printed, %q", code, out2, out)
	}
}

// TestHelpIsNotAnError: the top-level and server help go to stdout with exit 0, like every
// tool's; running with no command at all is a mistake (usage on stderr, exit 2).
func TestHelpIsNotAnError(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"server", "-h"}, {"server", "--help"}} {
		out, errOut, code := vltava(t, args...)
		if code != 0 || !strings.Contains(out, "usage: vltava") || errOut != "" || strings.Contains(out, "Usage of") {
			t.Errorf("vltava %q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	out, errOut, code := vltava(t)
	if code != 2 || out != "" || !strings.Contains(errOut, "usage: vltava") {
		t.Errorf("vltava with no command: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// startServer starts `vltava server args...` with its data in a temp dir and reads its log
// until it has started or exited. It returns the log lines read, and whether it started;
// a started server is killed by its pid when the test ends.
func startServer(t *testing.T, args ...string) (log []string, started bool) {
	t.Helper()
	return startServerWith(t, append([]string{"--data-dir", filepath.Join(t.TempDir(), "data")}, args...)...)
}

// startServerWith is startServer with the data dirs args name (a config file's).
func startServerWith(t *testing.T, args ...string) (log []string, started bool) {
	t.Helper()
	args = append([]string{"server", "--http-listen", "none"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		log = append(log, lines.Text())
		if strings.Contains(lines.Text(), `msg="vltava started"`) {
			t.Cleanup(func() {
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				_, _ = io.Copy(io.Discard, stderr)
				_ = cmd.Wait()
			})
			return log, true
		}
	}
	// stderr closed: the process has exited.
	if err := cmd.Wait(); err == nil {
		t.Fatalf("vltava %q exited 0 without starting:\n%s", args, strings.Join(log, "\n"))
	}
	return log, false
}

// TestServerStartLineNamesTheVersion: the start-up log line says which build is running,
// so a log shows what code wrote it.
func TestServerStartLineNamesTheVersion(t *testing.T) {
	log, started := startServer(t, "--listen", "127.0.0.1:0")
	if !started {
		t.Fatalf("server did not start:\n%s", strings.Join(log, "\n"))
	}
	line := log[len(log)-1]
	if !strings.Contains(line, ` version="(devel)`) || !strings.Contains(line, "go1.") {
		t.Errorf("start-up line %q does not name the version", line)
	}
}

// TestServerRefusesToAdvertiseAWildcard: a broker bound to every interface cannot tell
// clients "connect to 0.0.0.0"; like Kafka ("advertised.listeners cannot use the
// nonroutable meta-address 0.0.0.0"), it refuses to start and says what to set. An empty
// host, Kafka's other way of binding every interface, advertises the machine's host name.
func TestServerRefusesToAdvertiseAWildcard(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::]:0"} {
		log, started := startServer(t, "--listen", listen)
		all := strings.Join(log, "\n")
		if started {
			t.Errorf("--listen %s started a broker:\n%s", listen, all)
			continue
		}
		if !strings.Contains(all, "advertised.listeners") || !strings.Contains(all, "PLAINTEXT://") {
			t.Errorf("--listen %s: the refusal does not say to set advertised.listeners:\n%s", listen, all)
		}
	}
	log, started := startServer(t, "--listen", ":0")
	if !started {
		t.Fatalf("--listen :0 did not start:\n%s", strings.Join(log, "\n"))
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	var listening string
	for _, l := range log {
		if strings.Contains(l, "msg=listening") {
			listening = l
		}
	}
	if !strings.Contains(listening, " advertised="+host+":") {
		t.Errorf("--listen :0 advertises %q, want this host's name %s", listening, host)
	}
}

// TestCompletionKnowsTheServer: the completion script comes from the tools' package, which
// learns `vltava server` and its flags from main.
func TestCompletionKnowsTheServer(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		out, errOut, code := vltava(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "server") || !strings.Contains(out, "--data-dir") || !strings.Contains(out, "--listen") {
			t.Errorf("vltava completion %s: exit %d, stderr %q; want the server and its flags in:\n%.300s", shell, code, errOut, out)
		}
	}
}

// TestSigtermWhileStarting: a SIGTERM that arrives while the broker opens its data (here
// as soon as it logs its first line from inside the broker) is a clean shutdown once it
// is up, not the default action that kills the process mid-write.
func TestSigtermWhileStarting(t *testing.T) {
	cmd := exec.Command(os.Args[0], "server", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--http-listen", "none")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) }()
	var log []string
	lines := bufio.NewScanner(stderr)
	signalled := false
	for lines.Scan() {
		log = append(log, lines.Text())
		if !signalled && strings.Contains(lines.Text(), "open data files limited") {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	err = cmd.Wait()
	if !signalled || err != nil || !strings.Contains(strings.Join(log, "\n"), `msg="stopped cleanly"`) {
		t.Fatalf("SIGTERM while starting: exit %v, want a clean shutdown (exit 0, \"stopped cleanly\"); log:\n%s", err, strings.Join(log, "\n"))
	}
}
