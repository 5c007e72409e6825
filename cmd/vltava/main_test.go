package main

import (
	"bufio"
	"bytes"
	"errors"
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

// TestServerStartLineNamesTheVersion: the start-up log line says which build is running,
// so a log shows what code wrote it.
func TestServerStartLineNamesTheVersion(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "server", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stopped by its pid whatever happens below; Wait reaps it.
	defer func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stderr)
	var started string
	for lines.Scan() {
		if strings.Contains(lines.Text(), `msg="vltava started"`) {
			started = lines.Text()
			break
		}
	}
	if started == "" {
		t.Fatalf("no start-up line (%v)", lines.Err())
	}
	if !strings.Contains(started, ` version="(devel)`) || !strings.Contains(started, "go1.") {
		t.Errorf("start-up line %q does not name the version", started)
	}
}
