package cli

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func listTopics(t *testing.T, brokers string) []string {
	t.Helper()
	return strings.Fields(must(t, brokers, "", "topic", "list"))
}

func TestTopicLifecycle(t *testing.T) {
	brokers := testBrokers(t)
	topic := uniqueTopic(t)

	out := must(t, brokers, "", "topic", "create", topic, "--partitions", "3", "--replication-factor", "1",
		"--config", "retention.ms=123456", "--config", "max.message.bytes=65536")
	if want := "created topic " + topic + " (partitions 3, replication factor 1)\n"; out != want {
		t.Fatalf("create printed %q, want %q", out, want)
	}
	mustFail(t, "TOPIC_ALREADY_EXISTS", brokers, "", "topic", "create", topic)
	mustFail(t, "INVALID_REPLICATION_FACTOR", brokers, "", "topic", "create", uniqueTopic(t), "--replication-factor", "1000")

	dry := uniqueTopic(t)
	out = must(t, brokers, "", "topic", "create", dry, "--partitions", "2", "--replication-factor", "1", "--validate-only")
	if !strings.HasPrefix(out, "validated topic "+dry) {
		t.Fatalf("validate-only create printed %q", out)
	}
	names := listTopics(t, brokers)
	if !slices.Contains(names, topic) {
		t.Fatalf("topic list %q lacks %s", names, topic)
	}
	if slices.Contains(names, dry) {
		t.Fatalf("validate-only create made topic %s", dry)
	}

	desc := must(t, brokers, "", "topic", "describe", topic)
	lines := strings.Split(strings.TrimSpace(desc), "\n")
	if len(lines) != 4 {
		t.Fatalf("describe printed %d lines, want a summary and 3 partitions:\n%s", len(lines), desc)
	}
	for _, want := range []string{"Topic: " + topic, "PartitionCount: 3", "ReplicationFactor: 1",
		"Configs: max.message.bytes=65536,retention.ms=123456"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("describe summary %q lacks %q", lines[0], want)
		}
	}
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		// Topic: T Partition: N Leader: L Replicas: R Isr: I, then Elr: LastKnownElr: (both
		// empty) where the cluster serves DescribeTopicPartitions.
		elr := len(f) == 10 || len(f) == 12 && f[10] == "Elr:" && f[11] == "LastKnownElr:"
		if !elr || f[0] != "Topic:" || f[1] != topic || f[2] != "Partition:" || f[3] != strconv.Itoa(i) || f[5] == "none" || f[7] != f[5] || f[9] != f[5] {
			t.Errorf("describe partition line %q: want partition %d led by its only replica, which is in sync", line, i)
		}
	}

	must(t, brokers, "", "topic", "alter-config", topic, "--set", "cleanup.policy=compact", "--delete", "retention.ms")
	desc = must(t, brokers, "", "topic", "describe", topic)
	if !strings.Contains(desc, "Configs: cleanup.policy=compact,max.message.bytes=65536\t") &&
		!strings.Contains(desc, "Configs: cleanup.policy=compact,max.message.bytes=65536\n") {
		t.Fatalf("after alter-config, describe shows:\n%s", desc)
	}
	mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "", "topic", "alter-config", "no-such-"+topic, "--set", "retention.ms=1")

	out = must(t, brokers, "", "topic", "delete", topic)
	if out != "deleted topic "+topic+"\n" {
		t.Fatalf("delete printed %q", out)
	}
	if slices.Contains(listTopics(t, brokers), topic) {
		t.Fatalf("topic %s still listed after delete", topic)
	}
	mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "", "topic", "describe", topic)
	mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "", "topic", "delete", topic)
}

func TestTopicDescribeAll(t *testing.T) {
	brokers := testBrokers(t)
	a, b := createTopic(t, brokers, 1), createTopic(t, brokers, 2)
	desc := must(t, brokers, "", "topic", "describe")
	for _, topic := range []string{a, b} {
		if !strings.Contains(desc, "Topic: "+topic+"\t") {
			t.Errorf("describe with no names lacks %s:\n%s", topic, desc)
		}
	}
	// One bad name among good ones: the good one is still described, the command fails.
	r := mustFail(t, "UNKNOWN_TOPIC_OR_PARTITION", brokers, "", "topic", "describe", a, "no-such-topic-"+a)
	if !strings.Contains(r.stdout, "Topic: "+a+"\t") {
		t.Fatalf("describe of a good and a bad topic printed:\n%s", r.stdout)
	}
}

func TestTopicUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "missing subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"create"}, "want exactly one topic name"},
		{[]string{"create", "a", "b"}, "want exactly one topic name"},
		{[]string{"create", "a", "--partitions", "0"}, "--partitions 0"},
		{[]string{"create", "a", "--config", "novalue"}, "want key=value"},
		{[]string{"delete"}, "want at least one topic name"},
		{[]string{"alter-config", "a"}, "nothing to change"},
		{[]string{"list", "extra"}, "unexpected arguments"},
	} {
		// No broker is contacted: each of these fails before connecting.
		r := tool(t, "", "", "topic", tc.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("topic %q: err %v, want it to contain %q", tc.args, r.err, tc.want)
		}
	}
}
