package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

// testBrokersEnv, when set, points every test at a running cluster (Vltava or Kafka) instead
// of a fresh in-memory kfake one, so the same tests check the tools against a real broker:
//
//	VLTAVA_TEST_BROKERS=127.0.0.1:9092 go test ./internal/cli/
const testBrokersEnv = "VLTAVA_TEST_BROKERS"

// testBrokers returns the bootstrap brokers of the cluster one test talks to. Tests must not
// assume the cluster is empty or private: they name topics with uniqueTopic.
func testBrokers(t *testing.T) string {
	t.Helper()
	if b := os.Getenv(testBrokersEnv); b != "" {
		return b
	}
	// kfake listens on 127.0.0.1 with kernel-chosen ports.
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// uniqueTopic returns a topic name no other test run uses, so tests can share a cluster.
func uniqueTopic(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return "cli-" + name + "-" + hex.EncodeToString(b[:])
}

// result is what one tool run printed and returned.
type result struct {
	ok     bool
	stdout string
	stderr string
	err    error
}

// tool runs one command in-process, as `vltava cmd args... --brokers brokers` would, with
// stdin fed from the given string and an empty environment.
func tool(t *testing.T, brokers, stdin, cmd string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	if brokers != "" {
		args = append(args, "--brokers", brokers)
	}
	ok, err := env.Run(ctx, cmd, args)
	return result{ok: ok, stdout: out.String(), stderr: errOut.String(), err: err}
}

// must runs a tool that is expected to succeed and returns its stdout.
func must(t *testing.T, brokers, stdin, cmd string, args ...string) string {
	t.Helper()
	r := tool(t, brokers, stdin, cmd, args...)
	if !r.ok || r.err != nil {
		t.Fatalf("vltava %s %s: ok=%v err=%v\nstderr:\n%s", cmd, strings.Join(args, " "), r.ok, r.err, r.stderr)
	}
	return r.stdout
}

// mustFail runs a tool that is expected to fail and returns its error text, checking that the
// error names what went wrong.
func mustFail(t *testing.T, want, brokers, stdin, cmd string, args ...string) result {
	t.Helper()
	r := tool(t, brokers, stdin, cmd, args...)
	if r.err == nil {
		t.Fatalf("vltava %s %s: succeeded, want an error containing %q\nstdout:\n%s", cmd, strings.Join(args, " "), want, r.stdout)
	}
	if !strings.Contains(r.err.Error(), want) {
		t.Fatalf("vltava %s %s: error %q, want it to contain %q", cmd, strings.Join(args, " "), r.err, want)
	}
	return r
}

// createTopic makes a fresh topic with the given partition count.
func createTopic(t *testing.T, brokers string, partitions int) string {
	t.Helper()
	topic := uniqueTopic(t)
	must(t, brokers, "", "topic", "create", topic, "--partitions", strconv.Itoa(partitions), "--replication-factor", "1")
	return topic
}

// vltavaBroker starts an in-process Vltava broker on a random loopback port with its data in
// a temp dir, for the behaviours only a real broker shows (its error messages, group join
// delays, broker configs); the broker is closed when the test ends.
func vltavaBroker(t *testing.T, overrides map[string]string) string {
	t.Helper()
	ov := map[string]string{"log.dirs": t.TempDir(), "listeners": "PLAINTEXT://127.0.0.1:0"}
	maps.Copy(ov, overrides)
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatalf("broker config: %v", err)
	}
	srv, err := server.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return srv.Addrs()[0]
}
