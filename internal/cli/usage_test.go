package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestHelpGoesToStdout pins the GNU and Kafka-tools habit: asking for help is not an error,
// so the usage goes to stdout (pipeable into less or grep) and the exit status is 0; and
// no Go "Usage of ..." header, which names a flag set rather than a command.
func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"topic", "-h"}, {"topic", "--help"}, {"topic", "create", "-h"}, {"topic", "alter-config", "--help"},
		{"topic", "describe", "x", "-h"}, {"produce", "-h"}, {"consume", "--help"}, {"cluster", "-h"},
		{"cluster", "info", "-h"}, {"group", "-h"}, {"group", "describe", "-h"}, {"group", "reset-offsets", "-h"},
		{"bench", "-h"}, {"bench", "produce", "-h"}, {"bench", "consume", "--help"}, {"bench", "e2e", "-h"},
	} {
		r := tool(t, "", "", args[0], args[1:]...)
		if !r.ok || r.err != nil {
			t.Errorf("%q: ok=%v err=%v", args, r.ok, r.err)
		}
		if !strings.Contains(r.stdout, "usage: vltava "+args[0]) {
			t.Errorf("%q printed no usage on stdout; stdout %q, stderr %q", args, r.stdout, r.stderr)
		}
		if r.stderr != "" {
			t.Errorf("%q wrote to stderr: %q", args, r.stderr)
		}
		if strings.Contains(r.stdout, "Usage of") {
			t.Errorf("%q printed Go's default usage header:\n%s", args, r.stdout)
		}
	}
	// A mistake is not a request for help: the error and the usage go to stderr.
	r := tool(t, "", "", "topic", "create", "--no-such-flag")
	if r.err == nil || r.stdout != "" || !strings.Contains(r.stderr, "usage: vltava topic create") {
		t.Errorf("bad flag: err %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
	if r := tool(t, "", "", "no-such-tool"); r.ok {
		t.Errorf("unknown tool reported ok")
	}
}

// TestBenchHelpShowsOnlyItsModesFlags: a flag that does nothing in a mode is noise in its
// help, and accepting it silently hides a mistake.
func TestBenchHelpShowsOnlyItsModesFlags(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		has, lacks []string
	}{
		{"produce", []string{"--acks", "--rate", "--producers", "--record-size"}, []string{"--consumers", "--timeout"}},
		{"consume", []string{"--consumers", "--timeout", "--records"}, []string{"--acks", "--rate", "--producers", "--linger", "--warmup"}},
		{"e2e", []string{"--acks", "--consumers", "--producers", "--timeout"}, nil},
	} {
		out := tool(t, "", "", "bench", tc.mode, "-h").stdout
		for _, f := range tc.has {
			if !strings.Contains(out, "  "+f+" ") {
				t.Errorf("bench %s -h lacks %s:\n%s", tc.mode, f, out)
			}
		}
		for _, f := range tc.lacks {
			if strings.Contains(out, "  "+f+" ") {
				t.Errorf("bench %s -h shows %s, which it ignores:\n%s", tc.mode, f, out)
			}
		}
	}
	mustFail(t, "not defined: -acks", "", "", "bench", "consume", "--acks", "1")
}

// TestKafkaToolHabits: what a kafka-topics or kafka-console-consumer user types first works.
func TestKafkaToolHabits(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	if out := must(t, "", "", "topic", "list", "--bootstrap-server", brokers); !strings.Contains(out, topic+"\n") {
		t.Fatalf("topic list --bootstrap-server printed %q, want %s", out, topic)
	}
	must(t, "", "a\nb\n", "produce", "--topic", topic, "--bootstrap-server", brokers)
	equalLines(t, "--from-beginning", consumeLines(t, brokers, topic, 2, "--from-beginning"), []string{"a", "b"})
	mustFail(t, "--from-beginning and --from", brokers, "", "consume", "--topic", topic, "--from-beginning", "--from", "end")
}

// TestBenchReadsBrokersFromTheEnvironment: like every other tool, bench takes its default
// brokers from VLTAVA_BROKERS instead of silently loading 127.0.0.1:9092.
func TestBenchReadsBrokersFromTheEnvironment(t *testing.T) {
	brokers := testBrokers(t)
	topic := uniqueTopic(t)
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == brokersEnv {
				return brokers
			}
			return ""
		}}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := env.Run(ctx, "bench", []string{"produce", "--topic", topic, "--records", "20", "--record-size", "16",
		"--json", "--quiet"})
	if err != nil {
		t.Fatalf("bench with VLTAVA_BROKERS=%s: %v\n%s", brokers, err, errOut.String())
	}
	if got := consumeLines(t, brokers, topic, 20, "--format", `%o\n`); len(got) != 20 {
		t.Fatalf("the cluster in VLTAVA_BROKERS holds %d records of %s, want 20", len(got), topic)
	}
}
