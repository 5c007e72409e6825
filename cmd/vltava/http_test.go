package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// startJSONServer is startServer for --log-format json: every line must be one JSON
// object; it returns the lines up to "vltava started", or all of them if the server
// exited first.
func startJSONServer(t *testing.T, args ...string) (log []map[string]any, started bool) {
	t.Helper()
	args = append([]string{"server", "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-format", "json"}, args...)
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
	var text []string
	for lines.Scan() {
		text = append(text, lines.Text())
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			// The process's last words (an error from main) are not a log line.
			if strings.HasPrefix(lines.Text(), "vltava server: ") {
				log = append(log, map[string]any{"msg": lines.Text()})
				continue
			}
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			t.Fatalf("log line is not JSON (%v): %s", err, lines.Text())
		}
		log = append(log, m)
		if m["msg"] == "vltava started" {
			t.Cleanup(func() {
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				_, _ = io.Copy(io.Discard, stderr)
				_ = cmd.Wait()
			})
			return log, true
		}
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("vltava %q exited 0 without starting:\n%s", args, strings.Join(text, "\n"))
	}
	return log, false
}

// TestServerHTTPListener: --http-listen starts the HTTP listener, the start-up line
// names its address, and /readyz and /metrics answer there; the JSON log parses.
func TestServerHTTPListener(t *testing.T) {
	log, started := startJSONServer(t, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	if !started {
		t.Fatalf("server did not start: %v", log)
	}
	addr, _ := log[len(log)-1]["http"].(string)
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		t.Fatalf("start-up line names HTTP address %q: %v", addr, log[len(log)-1])
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nkafka_controller_kafkacontroller_activecontrollercount 1\n") {
		t.Fatalf("/metrics does not report the active controller:\n%.2000s", body)
	}
}

// TestServerHTTPListenerTaken: an HTTP address the operator set must bind (the start
// fails, naming the key); the default one may be taken by another broker on this
// machine, and the broker then starts without it and says so.
func TestServerHTTPListenerTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log, started := startJSONServer(t, "--listen", "127.0.0.1:0", "--http-listen", ln.Addr().String())
	if started {
		t.Fatal("started with its HTTP address taken")
	}
	if last := log[len(log)-1]["msg"].(string); !strings.Contains(last, "vltava.http.listener") || !strings.Contains(last, "address already in use") {
		t.Fatalf("the refusal does not say which address and why: %q", last)
	}

	// The default port (9404), taken: by this test, or by whatever already holds it.
	if def, err := net.Listen("tcp", "127.0.0.1:9404"); err == nil {
		defer def.Close()
	}
	log, started = startJSONServer(t, "--listen", "127.0.0.1:0")
	if !started {
		t.Fatalf("did not start with the default HTTP port taken: %v", log)
	}
	warned := false
	for _, l := range log {
		if l["level"] == "WARN" && strings.Contains(l["msg"].(string), "no HTTP listener") && l["addr"] == "127.0.0.1:9404" {
			warned = true
		}
	}
	if !warned || log[len(log)-1]["http"] != "none" {
		t.Fatalf("no warning that the default HTTP port is taken, or the start-up line names one: %v", log)
	}
}
