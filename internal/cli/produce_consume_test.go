package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// consumeLines consumes count records from topic with the given extra flags and returns the
// output split into lines (the formats used here end each record with a newline).
func consumeLines(t *testing.T, brokers, topic string, count int, flags ...string) []string {
	t.Helper()
	args := append([]string{"--topic", topic, "--count", strconv.Itoa(count)}, flags...)
	out := must(t, brokers, "", "consume", args...)
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestProduceConsumeFormats(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)

	r := tool(t, brokers, "k1:v1\nk2:v:2\nno key\n\nlast line without newline", "produce",
		"--topic", topic, "--key-separator", ":", "--header", "h1=a", "--header", "h2=b=c")
	if r.err != nil {
		t.Fatalf("produce: %v\nstderr: %s", r.err, r.stderr)
	}
	if want := "produced 5 records to " + topic + "\n"; r.stderr != want {
		t.Fatalf("produce reported %q, want %q", r.stderr, want)
	}

	equalLines(t, "default format", consumeLines(t, brokers, topic, 5),
		[]string{"v1", "v:2", "no key", "", "last line without newline"})
	equalLines(t, "kcat-style format",
		consumeLines(t, brokers, topic, 3, "--format", `%t|%p|%o|%k|%s|%h|%K|%S|100%%\n`),
		[]string{
			topic + "|0|0|k1|v1|h1=a,h2=b=c|2|2|100%",
			topic + "|0|1|k2|v:2|h1=a,h2=b=c|2|3|100%",
			topic + "|0|2||no key|h1=a,h2=b=c|-1|6|100%",
		})

	// Timestamps are the producer's create times: recent, and the same for the whole test
	// within a generous bound.
	for _, line := range consumeLines(t, brokers, topic, 5, "--format", `%T\n`) {
		ms, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			t.Fatalf("%%T printed %q", line)
		}
		if age := time.Since(time.UnixMilli(ms)); age < -time.Minute || age > time.Minute {
			t.Fatalf("record timestamp %d is %v from now", ms, age)
		}
	}

	var got []jsonRecord
	for _, line := range consumeLines(t, brokers, topic, 3, "--format", "json") {
		var jr jsonRecord
		if err := json.Unmarshal([]byte(line), &jr); err != nil {
			t.Fatalf("json format line %q: %v", line, err)
		}
		got = append(got, jr)
	}
	first := got[0]
	if first.Topic != topic || first.Partition != 0 || first.Offset != 0 || first.Key == nil || *first.Key != "k1" ||
		first.Value == nil || *first.Value != "v1" || len(first.Headers) != 2 ||
		first.Headers[1].Key != "h2" || first.Headers[1].Value == nil || *first.Headers[1].Value != "b=c" {
		t.Fatalf("first json record: %+v", first)
	}
	if got[2].Key != nil || got[2].Offset != 2 {
		t.Fatalf("a line without the separator must have a null key, got %+v", got[2])
	}
}

func TestConsumeFrom(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	must(t, brokers, "a\nb\nc\n", "produce", "--topic", topic)

	equalLines(t, "from beginning", consumeLines(t, brokers, topic, 2, "--from", "beginning"), []string{"a", "b"})
	equalLines(t, "read_committed", consumeLines(t, brokers, topic, 3, "--isolation", "read_committed"), []string{"a", "b", "c"})
	equalLines(t, "from offset:1", consumeLines(t, brokers, topic, 2, "--from", "offset:1"), []string{"b", "c"})
	equalLines(t, "from offset:-1", consumeLines(t, brokers, topic, 1, "--from", "offset:-1"), []string{"c"})

	// Stamp a second batch strictly later than the first, then start from its time: only the
	// second batch comes back, both by epoch milliseconds and by RFC 3339 time.
	stamps := consumeLines(t, brokers, topic, 3, "--format", `%T\n`)
	last, err := strconv.ParseInt(stamps[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().UnixMilli() <= last {
		time.Sleep(time.Millisecond) // the clock, not another goroutine, is what we wait for
	}
	must(t, brokers, "d\ne\n", "produce", "--topic", topic)
	later := time.UnixMilli(last + 1)
	equalLines(t, "from timestamp", consumeLines(t, brokers, topic, 2, "--from", "timestamp:"+strconv.FormatInt(later.UnixMilli(), 10)),
		[]string{"d", "e"})
	equalLines(t, "from time", consumeLines(t, brokers, topic, 2, "--from", "time:"+later.UTC().Format(time.RFC3339Nano)),
		[]string{"d", "e"})

	// From the end nothing is waiting: the idle --timeout ends the run, successfully.
	if out := must(t, brokers, "", "consume", "--topic", topic, "--from", "end", "--timeout", "300ms"); out != "" {
		t.Fatalf("consume from end printed %q", out)
	}
	// Asking for more than there is returns what there is once the topic goes quiet.
	out := must(t, brokers, "", "consume", "--topic", topic, "--from", "offset:3", "--count", "10", "--timeout", "500ms")
	if out != "d\ne\n" {
		t.Fatalf("consume with idle timeout printed %q", out)
	}
}

func TestProducePartitionAndCompression(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 3)
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for i, codec := range codecs {
		acks := []string{"all", "1"}[i%2]
		must(t, brokers, codec+"\n", "produce", "--topic", topic, "--partition", "2", "--compression", codec, "--acks", acks)
	}
	got := consumeLines(t, brokers, topic, len(codecs), "--partition", "2", "--format", `%p %o %v\n`)
	var want []string
	for i, codec := range codecs {
		want = append(want, "2 "+strconv.Itoa(i)+" "+codec)
	}
	equalLines(t, "partition 2", got, want)

	// acks=0 gets no answer, so only delivery to the socket is known; the record still lands.
	must(t, brokers, "fire and forget\n", "produce", "--topic", topic, "--partition", "0", "--acks", "0")
	equalLines(t, "acks=0", consumeLines(t, brokers, topic, 1, "--partition", "0"), []string{"fire and forget"})
}

func TestProduceKeysPartitionConsistently(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 3)
	var in strings.Builder
	for i := range 30 {
		in.WriteString("key" + strconv.Itoa(i%3) + "\t" + strconv.Itoa(i) + "\n")
	}
	must(t, brokers, in.String(), "produce", "--topic", topic, "--key-separator", "\t")
	partOf := map[string]string{}
	for _, line := range consumeLines(t, brokers, topic, 30, "--format", `%k %p\n`) {
		k, p, _ := strings.Cut(line, " ")
		if prev, ok := partOf[k]; ok && prev != p {
			t.Fatalf("key %s went to partitions %s and %s", k, prev, p)
		}
		partOf[k] = p
	}
	if len(partOf) != 3 {
		t.Fatalf("consumed keys %v, want key0..key2", partOf)
	}
}

func TestConsumeGroupCommitsPrintedRecords(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	group := uniqueTopic(t)
	must(t, brokers, "1\n2\n3\n4\n", "produce", "--topic", topic)

	equalLines(t, "first member", consumeLines(t, brokers, topic, 2, "--group", group), []string{"1", "2"})
	// The group resumes after the last printed record, even though the first run may have
	// fetched more than it printed.
	equalLines(t, "second member", consumeLines(t, brokers, topic, 1, "--group", group), []string{"3"})
	// --from applies only where the group has no commit.
	equalLines(t, "third member", consumeLines(t, brokers, topic, 1, "--group", group, "--from", "end", "--timeout", "10s"),
		[]string{"4"})
}

func TestProduceConsumeErrors(t *testing.T) {
	brokers := testBrokers(t)
	missing := uniqueTopic(t)

	mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "", "consume", "--topic", missing, "--count", "1")
	// Whether produce creates a missing topic is the broker's auto.create.topics.enable; the
	// test kfake cluster has it off, a real broker may not.
	if os.Getenv(testBrokersEnv) == "" {
		r := mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "x\ny\n", "produce", "--topic", missing, "--timeout", "2s")
		if !strings.Contains(r.stderr, "produced 0 records to "+missing+", 2 failed") {
			t.Fatalf("failed produce reported %q", r.stderr)
		}
	}

	topic := createTopic(t, brokers, 2)
	mustFail(t, "no partition 5", brokers, "", "consume", "--topic", topic, "--partition", "5")
	mustFail(t, "1 of 1 records failed", brokers, "x\n", "produce", "--topic", topic, "--partition", "5")
	mustFail(t, "--partition -5", brokers, "x\n", "produce", "--topic", topic, "--partition", "-5")
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"produce", nil, "--topic is required"},
		{"produce", []string{"--topic", topic, "--acks", "2"}, `--acks "2"`},
		{"produce", []string{"--topic", topic, "--compression", "brotli"}, `--compression "brotli"`},
		{"consume", nil, "--topic is required"},
		{"consume", []string{"--topic", topic, "--from", "yesterday"}, `--from "yesterday"`},
		{"consume", []string{"--topic", topic, "--from", "offset:x"}, `--from "offset:x"`},
		{"consume", []string{"--topic", topic, "--format", "%q"}, "unknown verb %q"},
		{"consume", []string{"--topic", topic, "--group", "g", "--partition", "1"}, "do not mix"},
		{"consume", []string{"--topic", topic, "--log-level", "loud"}, `--log-level "loud"`},
		{"consume", []string{"--topic", topic, "--isolation", "serializable"}, `--isolation "serializable"`},
	} {
		mustFail(t, tc.want, brokers, "", tc.cmd, tc.args...)
	}
}

func TestUnreachableBroker(t *testing.T) {
	// A port from a listener that is closed again: nothing answers there.
	addr := closedAddr(t)
	mustFail(t, addr, addr, "", "topic", "list", "--timeout", "300ms")
	mustFail(t, addr, addr, "", "consume", "--topic", "t", "--timeout", "300ms")
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestProduceInterrupted checks that an interrupted produce still accounts for every line:
// nothing is reported as produced that was not, and the run does not hang on records that
// can no longer be sent.
func TestProduceInterrupted(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Three lines, then the interrupt arrives while the tool waits for more input.
	stdin := io.MultiReader(strings.NewReader("a\nb\nc\n"), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, io.EOF
	}))
	var out, errOut bytes.Buffer
	env := Env{Stdin: stdin, Stdout: &out, Stderr: &errOut}
	_, err := env.Run(ctx, "produce", []string{"--topic", topic, "--timeout", "0", "--brokers", brokers})
	var ok, failed int
	if _, serr := fmt.Sscanf(strings.TrimSuffix(errOut.String(), "\n"), "produced %d records to "+topic+", %d failed", &ok, &failed); serr != nil &&
		!(serr == io.EOF && failed == 0) {
		t.Fatalf("interrupted produce reported %q (%v)", errOut.String(), serr)
	}
	if ok+failed != 3 {
		t.Fatalf("interrupted produce accounted for %d+%d records, want 3: %q", ok, failed, errOut.String())
	}
	if (failed > 0) != (err != nil) || (err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%d of 3 records failed", failed))) {
		t.Fatalf("interrupted produce with %d failed returned %v", failed, err)
	}
	// An interrupt before anything was sent ends the run at once.
	_, err = env.Run(ctx, "produce", []string{"--topic", topic, "--brokers", brokers})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("produce interrupted at start returned %v", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
