package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestGroupResetOffsets(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, "v")
	}
	must(t, brokers, strings.Join(lines, "\n")+"\n", "produce", "--topic", topic, "--partition", "0")
	group := uniqueTopic(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	commit := func(at int64) {
		o := kadm.Offsets{}
		o.AddOffset(topic, 0, at, -1)
		if r, err := adm.CommitOffsets(ctx, group, o); err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
	}
	committed := func() int64 {
		o, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := o.Lookup(topic, 0)
		return r.At
	}
	commit(5)

	// A dry run changes nothing.
	out := must(t, brokers, "", "group", "reset-offsets", group, "--to-earliest")
	if !strings.Contains(out, "5") || committed() != 5 {
		t.Fatalf("dry run: %s, committed %d", out, committed())
	}
	cases := []struct {
		args []string
		want int64
	}{
		{[]string{"--to-earliest"}, 0},
		{[]string{"--shift-by", "3"}, 3},
		{[]string{"--shift-by", "-10"}, 0},
		{[]string{"--to-latest"}, 10},
		{[]string{"--to-offset", "7"}, 7},
		{[]string{"--to-offset", "99"}, 10},
		{[]string{"--to-datetime", "2000-01-01T00:00:00Z"}, 0},
	}
	for _, c := range cases {
		args := append([]string{"reset-offsets", group, "--execute", "--topic", topic}, c.args...)
		must(t, brokers, "", "group", args...)
		if got := committed(); got != c.want {
			t.Fatalf("%v: committed %d, want %d", c.args, got, c.want)
		}
	}
	mustFail(t, "exactly one", brokers, "", "group", "reset-offsets", group, "--to-earliest", "--to-latest")

	// Refused while the group has a member.
	member, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		member.PollRecords(ctx, 1) // joins the group
		d, err := adm.DescribeGroups(ctx, group)
		if err == nil && len(d[group].Members) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("member never joined")
		}
	}
	mustFail(t, "active members", brokers, "", "group", "reset-offsets", group, "--to-earliest", "--execute")
}
