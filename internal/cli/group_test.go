package cli

import (
	"bufio"
	"context"
	"io"
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

// TestGroupDescribeLiveMember runs a consumer until it is interrupted, as Ctrl-C does, and
// checks the group while the member is live and after it left.
func TestGroupDescribeLiveMember(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	group := uniqueTopic(t)
	must(t, brokers, "a\nb\nc\n", "produce", "--topic", topic)

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
	lines := bufio.NewScanner(pr)
	for _, want := range []string{"a", "b", "c"} {
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("live consumer printed %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}

	desc := must(t, brokers, "", "group", "describe", group)
	rows := strings.Split(strings.TrimSpace(desc), "\n")
	if len(rows) != 3 || !strings.Contains(rows[0], "\tState: Stable\t") || !strings.Contains(rows[0], "\tMembers: 1") {
		t.Fatalf("describe of a live group:\n%s", desc)
	}
	if f := strings.Fields(rows[2]); len(f) != 8 || f[0] != topic || f[3] != "3" || f[5] == "-" {
		t.Fatalf("live group partition row %q: want log end 3 and an owning member", rows[2])
	} else if f[7] != "vltava-consume" {
		t.Errorf("the member's client ID is %q, want vltava-consume (brokers log it; kgo's default says nothing)", f[7])
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("interrupted consume returned %v, want a clean stop", err)
	}
	desc = must(t, brokers, "", "group", "describe", group)
	rows = strings.Split(strings.TrimSpace(desc), "\n")
	if got, want := strings.Fields(rows[len(rows)-1]), []string{topic, "0", "3", "3", "0", "-", "-", "-"}; !slices.Equal(got, want) {
		t.Fatalf("after the member left, partition row %q, want %q (everything printed was committed)", got, want)
	}
}
