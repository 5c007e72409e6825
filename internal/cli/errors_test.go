package cli

import (
	"strings"
	"testing"
)

// TestBrokerErrorsAreNotDoubled: the Kafka error's name and the broker's own message are
// printed once each, not "TOPIC_ALREADY_EXISTS: ... (broker says: TOPIC_ALREADY_EXISTS: ...)".
func TestBrokerErrorsAreNotDoubled(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	topic := createTopic(t, brokers, 1)
	r := mustFail(t, "TOPIC_ALREADY_EXISTS", brokers, "", "topic", "create", topic)
	if msg := r.err.Error(); strings.Count(msg, "TOPIC_ALREADY_EXISTS") != 1 || strings.Count(msg, "already exists") != 1 ||
		!strings.Contains(msg, topic) {
		t.Errorf("error %q: want the code once, the broker's message (naming the topic) once", msg)
	}
	r = mustFail(t, "INVALID_CONFIG", brokers, "", "topic", "alter-config", topic, "--set", "retention.ms=x")
	if msg := r.err.Error(); strings.Count(msg, "INVALID_CONFIG") != 1 || !strings.Contains(msg, "retention.ms") {
		t.Errorf("error %q: want the code once and the broker's reason", msg)
	}
}

// TestGroupDescribeOfAMissingGroup: Kafka answers DescribeGroups for a group it does not
// know with the state Dead; kafka-consumer-groups then says the group does not exist, and
// so does vltava, with a failing exit status.
func TestGroupDescribeOfAMissingGroup(t *testing.T) {
	for name, brokers := range map[string]string{"vltava": vltavaBroker(t, nil), "kfake": testBrokers(t)} {
		missing := uniqueTopic(t)
		r := mustFail(t, "group "+missing+" does not exist", brokers, "", "group", "describe", missing)
		if strings.Contains(r.stdout, "Dead") {
			t.Errorf("%s: describe of a missing group printed %q", name, r.stdout)
		}
	}
}

func TestResetOffsetsTimes(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	group := uniqueTopic(t)
	must(t, brokers, "a\nb\n", "produce", "--topic", topic)
	for _, at := range []string{"2001-01-01", "2001-01-01T00:00:00", "2001-01-01T00:00:00Z", "-1h"} {
		out := must(t, brokers, "", "group", "reset-offsets", group, "--topic", topic, "--to-datetime", at)
		if !strings.Contains(out, topic) {
			t.Errorf("--to-datetime %s: dry run printed %q", at, out)
		}
	}
	r := mustFail(t, "--to-datetime", brokers, "", "group", "reset-offsets", group, "--topic", topic, "--to-datetime", "2001-02-30")
	if strings.Contains(r.err.Error(), "2006") || strings.Contains(r.err.Error(), "parsing time") {
		t.Errorf("error %q leaks Go's time layout", r.err)
	}
}
