package cli

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumeGroupWaitsForItsAssignment: joining a group takes the broker's
// group.initial.rebalance.delay.ms (3 s by default) before any record can arrive, so the
// idle --timeout starts once the member has its partitions; it used to expire during the
// join and exit 0 with nothing printed.
func TestConsumeGroupWaitsForItsAssignment(t *testing.T) {
	brokers := vltavaBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "1500"})
	topic := createTopic(t, brokers, 1)
	must(t, brokers, "a\nb\nc\n", "produce", "--topic", topic)
	r := tool(t, brokers, "", "consume", "--topic", topic, "--group", uniqueTopic(t), "--timeout", "500ms")
	if r.err != nil || r.stdout != "a\nb\nc\n" {
		t.Fatalf("group consume with --timeout 500ms: err %v, stdout %q, stderr %q; want the 3 records", r.err, r.stdout, r.stderr)
	}
}

// TestConsumeGroupSaysWhyItGotNothing: a member that the group gives no partition (the
// other member holds the topic's only one) prints nothing; it says why instead of exiting
// as if the topic were empty.
func TestConsumeGroupSaysWhyItGotNothing(t *testing.T) {
	brokers := vltavaBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	topic := createTopic(t, brokers, 1)
	group := uniqueTopic(t)
	must(t, brokers, "a\n", "produce", "--topic", topic)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		env := Env{Stdin: strings.NewReader(""), Stdout: pw, Stderr: io.Discard}
		_, err := env.Run(ctx, "consume", []string{"--topic", topic, "--group", group, "--brokers", brokers})
		pw.CloseWithError(io.EOF)
		errc <- err
	}()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != "a\n" {
		t.Fatalf("first member printed %q (%v)", buf, err)
	}
	// The first member holds the only partition; cooperative-sticky keeps it there.
	r := tool(t, brokers, "", "consume", "--topic", topic, "--group", group, "--timeout", "1s")
	if r.err != nil || r.stdout != "" {
		t.Fatalf("second member: err %v, stdout %q", r.err, r.stdout)
	}
	if !strings.Contains(r.stderr, "was assigned no partition of "+topic) {
		t.Errorf("second member printed nothing and said %q, want why", r.stderr)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("first member: %v", err)
	}
}

func TestParseFromTimes(t *testing.T) {
	now := time.Date(2026, 12, 4, 15, 30, 0, 0, time.UTC)
	at := func(t time.Time) kgo.Offset { return kgo.NewOffset().AfterMilli(t.UnixMilli()) }
	for _, tc := range []struct {
		in   string
		want kgo.Offset
	}{
		{"-1h", at(now.Add(-time.Hour))},
		{"-90m", at(now.Add(-90 * time.Minute))},
		{"-2d", at(now.Add(-48 * time.Hour))},
		{"time:-1h30m", at(now.Add(-90 * time.Minute))},
		{"2026-12-04", at(time.Date(2026, 12, 4, 0, 0, 0, 0, time.Local))},
		{"2026-12-04T10:00:00", at(time.Date(2026, 12, 4, 10, 0, 0, 0, time.Local))},
		{"2026-12-04T10:00:00Z", at(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))},
		{"2026-12-04 10:00", at(time.Date(2026, 12, 4, 10, 0, 0, 0, time.Local))},
		{"time:2026-12-04", at(time.Date(2026, 12, 4, 0, 0, 0, 0, time.Local))},
		{"2023-11-14T23:13:20.5+01:00", kgo.NewOffset().AfterMilli(1700000000500)},
	} {
		got, err := parseFromAt(tc.in, now)
		if err != nil {
			t.Errorf("--from %q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("--from %q = %v, want %v", tc.in, got, tc.want)
		}
	}
	// Mistakes are explained in the tool's words, not Go's reference layout.
	for _, bad := range []string{"time:2026-13-04", "2026-12-04T25:00", "-1y", "time:yesterday", "+1h", "1700000000000", "-h"} {
		_, err := parseFromAt(bad, now)
		if err == nil {
			t.Errorf("--from %q accepted", bad)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "2006") || strings.Contains(msg, "parsing time") || !strings.Contains(msg, "2026-12-04") {
			t.Errorf("--from %q: error %q leaks Go's layout or gives no example", bad, msg)
		}
	}
}

func TestFormatNeedsAVerb(t *testing.T) {
	// "xml" is not a format: it would print the word xml once per record.
	for _, bad := range []string{"xml", "text", "csv"} {
		if _, err := parseFormat(bad); err == nil || !strings.Contains(err.Error(), "json") {
			t.Errorf("parseFormat(%q) = %v, want a refusal that lists the formats", bad, err)
		}
	}
}
