package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// newCluster starts a one-broker kfake cluster on a free loopback port.
func newCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// runJSON runs one bench with --json and returns its parsed result.
func runJSON(t *testing.T, args ...string) *Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--json", "--quiet")
	if err := run(context.Background(), args, &stdout, &stderr, nil); err != nil {
		t.Fatalf("bench %v: %v\nstderr: %s", args, err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("bench %v: output is not one JSON result: %v\n%s", args, err, stdout.String())
	}
	return &r
}

func TestProduceThenConsumeCountsEveryRecord(t *testing.T) {
	addr := newCluster(t)
	p := runJSON(t, "produce", "--brokers", addr, "--topic", "pc", "--partitions", "4",
		"--records", "3000", "--record-size", "64", "--key-distribution", "sequential", "--producers", "2")
	if p.Mode != "produce" || p.Records != 3000 || p.Produced != 3000 || p.Errors != 0 {
		t.Fatalf("produce: records %d, produced %d, errors %d (%s); want 3000, 3000, 0",
			p.Records, p.Produced, p.Errors, p.FirstError)
	}
	if want := int64(3000 * (64 + 8)); p.Bytes != want {
		t.Errorf("produce bytes %d, want %d (8-byte keys and 64-byte values)", p.Bytes, want)
	}
	if p.ProduceLatency == nil || p.ProduceLatency.Count != 3000 {
		t.Errorf("produce latency %+v, want 3000 samples", p.ProduceLatency)
	}
	if p.Settings.Partitions != 4 || p.Settings.Producers != 2 {
		t.Errorf("settings %+v do not echo the flags", p.Settings)
	}

	// Consume with no limit reads what the topic held when it started, across all partitions.
	c := runJSON(t, "consume", "--brokers", addr, "--topic", "pc", "--consumers", "3")
	if c.Records != 3000 || c.Bytes != p.Bytes || c.Errors != 0 {
		t.Fatalf("consume: records %d bytes %d errors %d (%s); want 3000, %d, 0",
			c.Records, c.Bytes, c.Errors, c.FirstError, p.Bytes)
	}
	if c.Settings.Partitions != 4 {
		t.Errorf("consume settings say %d partitions; the topic has 4", c.Settings.Partitions)
	}
	if c.ProduceLatency != nil || c.EndToEndLatency != nil {
		t.Errorf("consume reported latencies it cannot measure: %+v %+v", c.ProduceLatency, c.EndToEndLatency)
	}

	// Limits stop the read early, at exactly the record count asked for.
	c = runJSON(t, "consume", "--brokers", addr, "--topic", "pc", "--records", "1000", "--consumers", "2")
	if c.Records != 1000 {
		t.Errorf("consume --records 1000 read %d", c.Records)
	}
}

func TestWarmupRecordsAreWrittenButNotMeasured(t *testing.T) {
	addr := newCluster(t)
	p := runJSON(t, "produce", "--brokers", addr, "--topic", "w", "--records", "500",
		"--warmup", "20ms", "--rate", "5000")
	if p.Records != 500 || p.Errors != 0 {
		t.Fatalf("produce: %d measured records, %d errors; want 500, 0", p.Records, p.Errors)
	}
	if p.Produced != p.Records+p.WarmupRecords {
		t.Errorf("produced %d != measured %d + warm-up %d", p.Produced, p.Records, p.WarmupRecords)
	}
	if p.ProduceLatency.Count != 500 {
		t.Errorf("latency samples %d, want 500: warm-up records must not be in the histogram", p.ProduceLatency.Count)
	}
	c := runJSON(t, "consume", "--brokers", addr, "--topic", "w")
	if c.Records != p.Produced {
		t.Errorf("topic holds %d records, want %d (warm-up records are real records)", c.Records, p.Produced)
	}
}

func TestE2EReceivesEveryAcknowledgedRecord(t *testing.T) {
	addr := newCluster(t)
	// A topic with data already in it: e2e must start at its end, not read the old records.
	runJSON(t, "produce", "--brokers", addr, "--topic", "e", "--partitions", "3", "--records", "100")
	r := runJSON(t, "e2e", "--brokers", addr, "--topic", "e", "--records", "2000",
		"--record-size", "256", "--key-distribution", "random", "--consumers", "2", "--warmup", "10ms")
	if r.Mode != "e2e" || r.Records != 2000 || r.Errors != 0 {
		t.Fatalf("e2e: received %d, errors %d (%s); want 2000, 0", r.Records, r.Errors, r.FirstError)
	}
	if r.EndToEndLatency == nil || r.EndToEndLatency.Count != 2000 {
		t.Errorf("e2e latency %+v, want 2000 samples", r.EndToEndLatency)
	}
	if r.ProduceLatency == nil || r.ProduceLatency.Count != 2000 {
		t.Errorf("produce latency %+v, want 2000 samples", r.ProduceLatency)
	}
	if r.Produced != 2000+r.WarmupRecords {
		t.Errorf("produced %d, want 2000 + %d warm-up", r.Produced, r.WarmupRecords)
	}
	if r.EndToEndLatency != nil && r.EndToEndLatency.P50Ms > r.EndToEndLatency.MaxMs {
		t.Errorf("p50 %v above max %v", r.EndToEndLatency.P50Ms, r.EndToEndLatency.MaxMs)
	}
}

func TestIdleConnectionsAreHeldDuringTheRun(t *testing.T) {
	addr := newCluster(t)
	r := runJSON(t, "produce", "--brokers", addr, "--topic", "i", "--records", "100", "--idle-connections", "25")
	if r.IdleConnections != 25 || r.Records != 100 {
		t.Errorf("idle connections %d records %d, want 25 and 100", r.IdleConnections, r.Records)
	}
}

func TestAcksZeroAndOneTurnIdempotenceOff(t *testing.T) {
	addr := newCluster(t)
	for _, acks := range []string{"0", "1"} {
		r := runJSON(t, "produce", "--brokers", addr, "--topic", "a"+acks, "--records", "300", "--acks", acks,
			"--compression", "lz4")
		if r.Records != 300 || r.Settings.Idempotent || r.Settings.Acks != acks {
			t.Errorf("acks=%s: records %d settings %+v; want 300, not idempotent", acks, r.Records, r.Settings)
		}
	}
}

func TestTextReport(t *testing.T) {
	addr := newCluster(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"e2e", "--brokers", addr, "--topic", "txt", "--records", "50", "--quiet"},
		&stdout, &stderr, nil)
	if err != nil {
		t.Fatalf("e2e: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"e2e: received 50 records", "produce-ack latency ms: p50", "end-to-end latency ms: p50"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestBadFlagsAreRejected(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"fly"},
		{"produce", "--record-size", "4"},
		{"produce", "--acks", "2"},
		{"produce", "--compression", "brotli"},
		{"produce", "--key-distribution", "zipf"},
		{"produce", "--rate", "fast"},
		{"produce", "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, nil); err == nil {
			t.Errorf("bench %q: no error", args)
		}
	}
}

func TestParseSizeAndRate(t *testing.T) {
	sizes := map[string]int64{"0": 0, "1000": 1000, "10K": 10000, "64MiB": 64 << 20, "1GiB": 1 << 30, "2GB": 2e9, "1.5KiB": 1536}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	rates := []struct {
		in   string
		size int
		want float64
	}{
		{"0", 100, 0},
		{"5000", 100, 5000},
		{"20MB", 1000, 20000},
		{"20MB/s", 1000, 20000},
		{"1MiB/s", 1024, 1024},
		{"2K", 10, 2000},
	}
	for _, c := range rates {
		if got, err := parseRate(c.in, c.size); err != nil || got != c.want {
			t.Errorf("parseRate(%q, %d) = %v, %v; want %v", c.in, c.size, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "-5", "MB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): no error", bad)
		}
	}
}

// TestProgressLinesNameOnlyWhatTheModeDoes: a produce run consumes nothing, so its progress
// lines must not say "consumed 0", nor a consume run's "produced 0".
func TestProgressLinesNameOnlyWhatTheModeDoes(t *testing.T) {
	for _, tc := range []struct {
		mode        string
		want, lacks []string
	}{
		{"produce", []string{"produced 7 "}, []string{"consumed"}},
		{"consume", []string{"consumed 5 "}, []string{"produced"}},
		{"e2e", []string{"produced 7 ", "consumed 5 "}, nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			var out bytes.Buffer
			c := &counters{}
			c.produced.Store(7)
			c.consumed.Store(5)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); progress(&out, tc.mode, time.Second, c, stop) }()
			time.Sleep(1500 * time.Millisecond) // the bubble's fake clock: one tick
			close(stop)
			<-done
			line := out.String()
			if strings.Count(line, "\n") != 1 {
				t.Fatalf("%s: want one progress line after one interval, got %q", tc.mode, line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%s progress %q lacks %q", tc.mode, line, w)
				}
			}
			for _, l := range tc.lacks {
				if strings.Contains(line, l) {
					t.Errorf("%s progress %q mentions %q", tc.mode, line, l)
				}
			}
		})
	}
}

// TestFlagsAcceptWhatTheHelpSays: sizes take the units the help lists, and the brokers
// come from VLTAVA_BROKERS like every other tool's.
func TestFlagsAcceptWhatTheHelpSays(t *testing.T) {
	env := func(k string) string {
		if k == "VLTAVA_BROKERS" {
			return "10.1.2.3:9092,10.1.2.4:9092"
		}
		return ""
	}
	cfg, err := parseFlags("produce", []string{"--batch-size", "64KiB", "--record-size", "1KiB", "--records", "10K",
		"--buffer-memory", "1MB"}, io.Discard, io.Discard, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.batchBytes != 64<<10 || cfg.recordSize != 1024 || cfg.records != 10000 || cfg.bufferMemory != 1e6 {
		t.Errorf("sizes: batch %d record %d records %d buffer %d", cfg.batchBytes, cfg.recordSize, cfg.records, cfg.bufferMemory)
	}
	if !slices.Equal(cfg.brokers, []string{"10.1.2.3:9092", "10.1.2.4:9092"}) {
		t.Errorf("brokers %q, want those of VLTAVA_BROKERS", cfg.brokers)
	}
	cfg, err = parseFlags("consume", []string{"--bootstrap-server", "h:1"}, io.Discard, io.Discard, env)
	if err != nil || !slices.Equal(cfg.brokers, []string{"h:1"}) {
		t.Errorf("--bootstrap-server: %v %q", err, cfg.brokers)
	}
}
