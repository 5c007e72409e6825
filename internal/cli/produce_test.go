package cli

import (
	"strings"
	"testing"
	"time"
)

// TestProduceRecordsOverOneMegabyte: a topic that allows 4 MiB records takes a 2 MB one
// from `vltava produce` (the client's limit follows the topic's max.message.bytes unless
// --max-message-bytes says otherwise), and a refusal says which side refused.
func TestProduceRecordsOverOneMegabyte(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	big := uniqueTopic(t)
	must(t, brokers, "", "topic", "create", big, "--partitions", "1", "--config", "max.message.bytes=4194304")
	line := strings.Repeat("x", 2_000_000) + "\n"
	must(t, brokers, line, "produce", "--topic", big)
	if got := consumeLines(t, brokers, big, 1, "--format", `%S\n`); got[0] != "2000000" {
		t.Fatalf("consumed a record of %s bytes, want 2000000", got[0])
	}

	// This client's limit, set lower: refused before sending, and the message says so.
	r := mustFail(t, "this client's limit", brokers, line, "produce", "--topic", big, "--max-message-bytes", "1MiB")
	for _, want := range []string{"--max-message-bytes", "1048576", "not sent"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("client-side refusal %q lacks %q", r.err, want)
		}
	}

	// The broker's limit: the client sends it, the broker refuses, and the message says so.
	small := uniqueTopic(t)
	must(t, brokers, "", "topic", "create", small, "--partitions", "1", "--config", "max.message.bytes=100000")
	r = mustFail(t, "MESSAGE_TOO_LARGE", brokers, line, "produce", "--topic", small, "--max-message-bytes", "4MiB")
	for _, want := range []string{"the broker refused", "max.message.bytes is 100000"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("broker-side refusal %q lacks %q", r.err, want)
		}
	}
	// With no flag the topic's limit applies at once, without a round trip to be refused.
	r = mustFail(t, "not sent", brokers, line, "produce", "--topic", small)
	if !strings.Contains(r.err.Error(), "max.message.bytes") {
		t.Errorf("refusal by the topic's limit %q does not name max.message.bytes", r.err)
	}
}

// TestProduceToADeadBrokerFailsFast: like the other tools, produce fails within
// milliseconds when nothing listens at --brokers, instead of retrying for the whole
// 30 s delivery timeout.
func TestProduceToADeadBrokerFailsFast(t *testing.T) {
	addr := closedAddr(t)
	start := time.Now()
	r := mustFail(t, addr, addr, "a\nb\n", "produce", "--topic", "t")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("produce to a dead broker took %v to fail", took)
	}
	if !strings.Contains(r.err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", r.err)
	}
}

// TestInvalidTopicNameSaysWhatIsAllowed: Kafka's INVALID_TOPIC_EXCEPTION says only that the
// topic is invalid; the tools say which characters a name may use, as kafka-topics does.
func TestInvalidTopicNameSaysWhatIsAllowed(t *testing.T) {
	brokers := testBrokers(t)
	const rule = "ASCII letters, digits, '.', '_' and '-'"
	for _, args := range [][]string{
		{"produce", "--topic", "bad name"},
		{"consume", "--topic", "bad/name"},
		{"topic", "create", "bad:name"},
	} {
		r := mustFail(t, rule, brokers, "x\n", args[0], args[1:]...)
		if strings.Count(r.err.Error(), rule) != 1 {
			t.Errorf("%q: %v", args, r.err)
		}
	}
	mustFail(t, "at most 249", brokers, "x\n", "produce", "--topic", strings.Repeat("a", 250))
	mustFail(t, `"." and ".." are not topic names`, brokers, "x\n", "produce", "--topic", "..")
}

// TestProduceHeadersPerRecord: with --header-delimiter each line starts with its own
// headers (k=v pairs separated by commas, as consume's %h prints them), as
// kafka-console-producer's parse.headers does.
func TestProduceHeadersPerRecord(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	in := "trace=1,user=ann|k1:v1\n|k2:v2\nflag,empty=|k3:v3=x\n"
	must(t, brokers, in, "produce", "--topic", topic, "--header-delimiter", "|", "--key-separator", ":", "--header", "src=cli")
	equalLines(t, "headers per record", consumeLines(t, brokers, topic, 3, "--format", `%h|%k:%v\n`), []string{
		"src=cli,trace=1,user=ann|k1:v1",
		"src=cli|k2:v2",
		"src=cli,flag=,empty=|k3:v3=x",
	})
	got := consumeLines(t, brokers, topic, 3, "--format", "json")
	if !strings.Contains(got[2], `{"key":"flag","value":null}`) || !strings.Contains(got[2], `{"key":"empty","value":""}`) {
		t.Errorf("a header without = has a null value, one with = an empty one: %s", got[2])
	}
	// A line without the delimiter stops the run, as Kafka's console producer does, after
	// the lines before it were sent.
	r := mustFail(t, `line 2: no header delimiter "|"`, brokers, "a=1|x\nno headers here\ny\n", "produce", "--topic", topic,
		"--header-delimiter", "|")
	if !strings.Contains(r.stderr, "produced 1 records") {
		t.Errorf("stderr %q, want the first line produced", r.stderr)
	}
}
