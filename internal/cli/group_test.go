package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestGroupListDescribeDelete(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	group := uniqueTopic(t)
	must(t, brokers, "1\n2\n3\n4\n", "produce", "--topic", topic)
	must(t, brokers, "", "consume", "--topic", topic, "--group", group, "--count", "3")

	// The consumer left, so the group is empty but remembers its offsets.
	var state string
	for _, line := range strings.Split(must(t, brokers, "", "group", "list"), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == group {
			state = f[1]
		}
	}
	if state != "Empty" {
		t.Fatalf("group list shows %s in state %q, want Empty", group, state)
	}

	desc := must(t, brokers, "", "group", "describe", group)
	lines := strings.Split(strings.TrimSpace(desc), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Group: "+group+"\tState: Empty\t") {
		t.Fatalf("group describe printed:\n%s", desc)
	}
	// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG MEMBER-ID HOST CLIENT-ID
	if got, want := strings.Fields(lines[2]), []string{topic, "0", "3", "4", "1", "-", "-", "-"}; !slices.Equal(got, want) {
		t.Fatalf("group describe partition line %q, want %q", got, want)
	}

	if out := must(t, brokers, "", "group", "delete", group); out != "deleted group "+group+"\n" {
		t.Fatalf("group delete printed %q", out)
	}
	if strings.Contains(must(t, brokers, "", "group", "list"), group) {
		t.Fatalf("group %s still listed after delete", group)
	}
	mustFail(t, "GROUP_ID_NOT_FOUND", brokers, "", "group", "delete", group)
	mustFail(t, "want at least one group name", "", "", "group", "delete")
	mustFail(t, `unknown subcommand "rename"`, "", "", "group", "rename")
}
