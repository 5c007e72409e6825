package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// elect-leaders against a Vltava broker, as kafka-leader-election.sh is used: a partition
// whose preferred replica leads needs no election; unknown partitions fail the command;
// a JSON file and --all-topic-partitions name the partitions; usage errors name the
// option.
func TestPartitionElectLeaders(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	topic := createTopic(t, brokers, 2)

	out := must(t, brokers, "", "partition", "elect-leaders", "--election-type", "preferred", "--topic", topic, "--partition", "0")
	if want := "Valid replica already elected for partitions " + topic + "-0\n"; out != want {
		t.Fatalf("preferred election of a partition its preferred replica leads: %q, want %q", out, want)
	}
	r := mustFail(t, "1 replica(s) could not be elected", brokers, "", "partition", "elect-leaders", "--election-type", "PREFERRED", "--topic", topic, "--partition", "9")
	if !strings.Contains(r.stdout, "Error completing leader election (PREFERRED) for partition: "+topic+"-9") {
		t.Fatalf("unknown partition: stdout %q", r.stdout)
	}
	// --all-topic-partitions leaves out the partitions that need nothing.
	if out := must(t, brokers, "", "partition", "elect-leaders", "--election-type", "unclean", "--all-topic-partitions"); out != "" {
		t.Fatalf("unclean election of partitions that all have leaders: %q, want nothing", out)
	}
	path := filepath.Join(t.TempDir(), "election.json")
	if err := os.WriteFile(path, []byte(`{"partitions": [{"topic": "`+topic+`", "partition": 0}, {"topic": "`+topic+`", "partition": 1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out = must(t, brokers, "", "partition", "elect-leaders", "--election-type", "unclean", "--path-to-json-file", path, "-o", "json")
	if strings.Count(out, `"outcome": "not-needed"`) != 2 {
		t.Fatalf("json: %s", out)
	}
	dup := filepath.Join(t.TempDir(), "dup.json")
	os.WriteFile(dup, []byte(`{"partitions": [{"topic": "a", "partition": 0}, {"topic": "a", "partition": 0}]}`), 0o600)
	mustFail(t, "duplicate partitions: a-0", brokers, "", "partition", "elect-leaders", "--election-type", "preferred", "--path-to-json-file", dup)
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, []byte(`{"partitions": []}`), 0o600)
	mustFail(t, "names no partition", brokers, "", "partition", "elect-leaders", "--election-type", "preferred", "--path-to-json-file", empty)

	for want, args := range map[string][]string{
		"--election-type":        {"--topic", topic, "--partition", "0"},
		`"sideways"`:             {"--election-type", "sideways", "--all-topic-partitions"},
		"one and only one":       {"--election-type", "preferred"},
		"one and only one of":    {"--election-type", "preferred", "--all-topic-partitions", "--topic", topic, "--partition", "0"},
		"--partition (with":      {"--election-type", "preferred", "--topic", topic},
		"only allowed with --to": {"--election-type", "preferred", "--partition", "0", "--all-topic-partitions"},
	} {
		mustFail(t, want, brokers, "", "partition", append([]string{"elect-leaders"}, args...)...)
	}
}
