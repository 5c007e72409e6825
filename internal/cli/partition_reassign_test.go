package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

// The plan file: Kafka's JSON read and written back, and its mistakes refused.
func TestReassignmentJSON(t *testing.T) {
	in := `{"version":1,"partitions":[{"topic":"b","partition":0,"replicas":[3,1],"log_dirs":["any","any"]},{"topic":"a","partition":2,"replicas":[2]}]}`
	plan, err := parseReassignment([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"partitions":[{"topic":"a","partition":2,"replicas":[2],"log_dirs":["any"]},{"topic":"b","partition":0,"replicas":[3,1],"log_dirs":["any","any"]}]}`
	if got := formatReassignment(plan); got != want {
		t.Fatalf("formatted:\n%s\nwant\n%s", got, want)
	}
	for _, c := range []struct{ in, want string }{
		{`{"version":2,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}`, "version 2"},
		{`{"version":1,"partitions":[]}`, "no partitions"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[]}]}`, "empty replica list"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,1]}]}`, "repeated"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}`, "more than once"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}`, "not supported"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["any","any"]}]}`, "2 log_dirs for 1"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replica":[1]}]}`, "unknown field"},
	} {
		if _, err := parseReassignment([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.in, err, c.want)
		}
	}
	if _, err := parseTopicsToMove([]byte(`{"version":1,"topics":[{"topic":"a"},{"topic":"a"}]}`)); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate topics: %v", err)
	}
	if _, err := parseBrokerList("1,2,1"); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate brokers: %v", err)
	}
}

// --generate spreads every partition over the given brokers with its replication factor,
// leaders round robin.
func TestProposeAssignment(t *testing.T) {
	cur := assignmentPlan{}
	for p := range int32(6) {
		cur[topicPartition{"a", p}] = []int32{1, 2}
	}
	cur[topicPartition{"b", 0}] = []int32{1, 2, 3}
	got, err := proposeAssignment(cur, []int32{2, 3, 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for tp, rs := range got {
		if len(rs) != len(cur[tp]) {
			t.Fatalf("%s: %v, want %d replicas", tp, rs, len(cur[tp]))
		}
		seen := map[int32]bool{}
		for _, r := range rs {
			if seen[r] || !slices.Contains([]int32{2, 3, 4}, r) {
				t.Fatalf("%s: %v", tp, rs)
			}
			seen[r] = true
		}
		if tp.Topic == "a" {
			leaders[rs[0]]++
		}
	}
	if len(got) != 7 || leaders[2] != 2 || leaders[3] != 2 || leaders[4] != 2 {
		t.Fatalf("plan %v, leaders of a %v", got, leaders)
	}
	if _, err := proposeAssignment(cur, []int32{1, 2}, nil); err == nil {
		t.Fatal("replication factor 3 over 2 brokers was planned")
	}

	// Rack-aware: every partition of a's on both racks, b's on all three.
	racks := map[int32]string{1: "r1", 2: "r1", 3: "r2", 4: "r2", 5: "r3", 6: "r3"}
	all := []int32{1, 2, 3, 4, 5, 6}
	got, err = proposeAssignment(cur, all, racks)
	if err != nil {
		t.Fatal(err)
	}
	leaders = map[int32]int{}
	for tp, rs := range got {
		seen := map[string]bool{}
		for _, r := range rs {
			seen[racks[r]] = true
		}
		if len(seen) != len(rs) || len(slices.Compact(slices.Sorted(slices.Values(rs)))) != len(rs) {
			t.Fatalf("%s on %v: racks %v", tp, rs, seen)
		}
		if tp.Topic == "a" {
			leaders[rs[0]]++
		}
	}
	if len(leaders) != 6 {
		t.Fatalf("the leaders of a's 6 partitions are %v, want each broker once", leaders)
	}
	if _, err := proposeAssignment(cur, []int32{1, 2, 7}, racks); err == nil || !strings.Contains(err.Error(), "rack information") {
		t.Fatalf("a broker without a rack: %v", err)
	}
	if got, _ := rackAlternated(all, racks); !slices.Equal(got, []int32{1, 3, 5, 2, 4, 6}) {
		t.Fatalf("rack-alternated order %v", got)
	}
}

// --throttle lists every current replica of a moving partition as a leader throttle and
// the new ones as follower throttles; --verify's lines are Kafka's.
func TestThrottleListsAndVerifyLines(t *testing.T) {
	plan := assignmentPlan{{"a", 0}: {2, 3}, {"a", 1}: {1, 2}, {"b", 0}: {4}}
	cur := assignmentPlan{{"a", 0}: {1, 2}, {"a", 1}: {1, 2}, {"b", 0}: {1}}
	leader, follower, brokers := throttleLists(plan, cur)
	if !maps.Equal(leader, map[string]string{"a": "0:1,0:2", "b": "0:1"}) || !maps.Equal(follower, map[string]string{"a": "0:3", "b": "0:4"}) ||
		!slices.Equal(brokers, []int32{1, 2, 3, 4}) {
		t.Fatalf("leader %v follower %v brokers %v", leader, follower, brokers)
	}
	// A move under way in the same topic keeps its throttle; a partition moved again
	// throttles from its original replicas.
	ongoing := []kmsg.ListPartitionReassignmentsResponseTopic{{Topic: "a", Partitions: []kmsg.ListPartitionReassignmentsResponseTopicPartition{
		{Partition: 5, Replicas: []int32{4, 5, 1}, AddingReplicas: []int32{4, 5}, RemovingReplicas: []int32{1}},
		{Partition: 0, Replicas: []int32{2, 3, 1}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{1}}}}}
	targets, sources := withOngoing(plan, assignmentPlan{{"a", 0}: {2, 3, 1}, {"a", 1}: {1, 2}, {"b", 0}: {1}}, ongoing)
	leader, follower, _ = throttleLists(targets, sources)
	if !maps.Equal(leader, map[string]string{"a": "0:2,0:1,5:1", "b": "0:1"}) || !maps.Equal(follower, map[string]string{"a": "0:3,5:4,5:5", "b": "0:4"}) {
		t.Fatalf("with moves under way: leader %v follower %v", leader, follower)
	}
	lines, done := verifyLines(plan, assignmentPlan{{"a", 0}: {2, 3, 1}, {"a", 1}: {1, 2}, {"b", 0}: {1}}, map[topicPartition]bool{{"a", 0}: true})
	want := []string{"Status of partition reassignment:",
		"Reassignment of partition a-0 is still in progress.",
		"Reassignment of partition a-1 is completed.",
		"There is no active reassignment of partition b-0, but replica set is 1 rather than 4."}
	if done || !slices.Equal(lines, want) {
		t.Fatalf("done %v lines\n%s", done, strings.Join(lines, "\n"))
	}
}

// vltavaCluster starts n in-process Vltava nodes forming one quorum, every node a broker
// and a voter, and returns the bootstrap addresses once every broker is unfenced.
func vltavaCluster(t *testing.T, n int, overrides map[string]string) string {
	t.Helper()
	var voters []string
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ln.Addr()))
	}
	var addrs []string
	var srvs []*server.Server
	for i := range n {
		ov := map[string]string{"node.id": fmt.Sprint(i + 1), "log.dirs": t.TempDir(),
			"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + lns[i].Addr().String(), "controller.listener.names": "CONTROLLER",
			"controller.quorum.voters": strings.Join(voters, ","), "controller.quorum.election.timeout.ms": "500",
			"controller.quorum.fetch.timeout.ms": "1000", "broker.heartbeat.interval.ms": "100",
			"replica.fetch.wait.max.ms": "100", "replica.fetch.backoff.ms": "50"}
		maps.Copy(ov, overrides)
		cfg, err := config.Load("", nil, ov)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		srv.UseListener(lns[i].Addr().String(), lns[i])
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
		addrs = append(addrs, srv.Addrs()[0])
	}
	t.Cleanup(func() {
		for _, s := range srvs {
			s.Close()
		}
	})
	// Every broker unfenced: Metadata lists the unfenced ones.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, "every broker is unfenced", func() bool {
		bs, err := kadm.NewClient(cl).ListBrokers(t.Context())
		return err == nil && len(bs) == n
	})
	return strings.Join(addrs, ",")
}

// eventually waits up to a minute for cond, looking again every 50 ms.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// proposedOf returns the plan --generate printed.
func proposedOf(t *testing.T, out string) string {
	t.Helper()
	_, after, ok := strings.Cut(out, "Proposed partition reassignment configuration\n")
	if !ok {
		t.Fatalf("no proposed plan in:\n%s", out)
	}
	return strings.TrimSpace(after)
}

// The operator's round trip on a 3-node cluster: plan a move off broker 1, execute it
// with a throttle, verify until done (which removes the throttles), list and cancel
// with nothing under way.
func TestPartitionReassignCommand(t *testing.T) {
	brokers := vltavaCluster(t, 3, nil)
	topic := uniqueTopic(t)
	must(t, brokers, "", "topic", "create", topic, "--partitions", "3", "--replication-factor", "2")
	dir := t.TempDir()
	topicsFile := filepath.Join(dir, "topics.json")
	os.WriteFile(topicsFile, []byte(`{"version":1,"topics":[{"topic":"`+topic+`"}]}`), 0o600)
	out := must(t, brokers, "", "partition", "reassign", "--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "2,3")
	plan, err := parseReassignment([]byte(proposedOf(t, out)))
	if err != nil {
		t.Fatal(err)
	}
	for tp, rs := range plan {
		if slices.Contains(rs, 1) || len(rs) != 2 {
			t.Fatalf("proposed %s on %v", tp, rs)
		}
	}
	planFile := filepath.Join(dir, "plan.json")
	os.WriteFile(planFile, []byte(formatReassignment(plan)), 0o600)

	out = must(t, brokers, "", "partition", "reassign", "--execute", "--reassignment-json-file", planFile, "--throttle", "50000000")
	for _, want := range []string{"Current partition replica assignment", "Save this to use as the --reassignment-json-file option during rollback",
		"The inter-broker throttle limit was set to 50000000 B/s", "Successfully started partition reassignments for " + topic + "-0," + topic + "-1," + topic + "-2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("--execute printed:\n%s\nwant %q", out, want)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rc, err := adm.DescribeBrokerConfigs(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("2", nil); err != nil || !hasConfig(c.Configs, leaderThrottledRate, "50000000") {
		t.Fatalf("broker 2's throttle: %v %+v", err, c)
	}

	eventually(t, "the reassignment completes", func() bool {
		out = must(t, brokers, "", "partition", "reassign", "--verify", "--reassignment-json-file", planFile)
		// "rather than": the controller has completed a move the broker that answered
		// Metadata has not applied yet (Kafka's tool reads the two as racily).
		return !strings.Contains(out, "still in progress") && !strings.Contains(out, "rather than")
	})
	for _, want := range []string{"Reassignment of partition " + topic + "-0 is completed.", "Clearing broker-level throttles on brokers 1,2,3",
		"Clearing topic-level throttles on topic " + topic} {
		if !strings.Contains(out, want) {
			t.Fatalf("--verify printed:\n%s\nwant %q", out, want)
		}
	}
	// Whichever broker answers DescribeConfigs may apply the clearing a moment after the
	// controller committed it.
	eventually(t, "the topic's throttle is cleared", func() bool {
		tc, err := adm.DescribeTopicConfigs(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tc.On(topic, nil)
		return err == nil && hasConfig(c.Configs, leaderThrottledReplicas, "")
	})
	md, err := adm.Metadata(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if want := plan[topicPartition{topic, p.Partition}]; !slices.Equal(p.Replicas, want) ||
			!slices.Equal(slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values(want))) {
			t.Fatalf("partition %d: replicas %v ISR %v, want %v", p.Partition, p.Replicas, p.ISR, want)
		}
	}
	if out := must(t, brokers, "", "partition", "reassign", "--list"); !strings.Contains(out, "No partition reassignments found.") {
		t.Fatalf("--list: %s", out)
	}
	if out := must(t, brokers, "", "partition", "reassign", "--cancel", "--reassignment-json-file", planFile, "--preserve-throttles"); !strings.Contains(out, "None of the specified partition reassignments are active.") {
		t.Fatalf("--cancel: %s", out)
	}
	mustFail(t, "exactly one of", brokers, "", "partition", "reassign", "--verify", "--list")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"partitions":[{"topic":"`+topic+`","partition":0,"replicas":[1,9]}]}`), 0o600)
	mustFail(t, "Unknown broker id 9", brokers, "", "partition", "reassign", "--execute", "--reassignment-json-file", bad)
}

// hasConfig reports whether configs has name at value (value "" also matches a config
// that is absent or has no value: the default).
func hasConfig(configs []kadm.Config, name, value string) bool {
	for _, c := range configs {
		if c.Key == name {
			v := ""
			if c.Value != nil {
				v = *c.Value
			}
			return v == value || (value == "" && c.Source == 5) // DEFAULT_CONFIG
		}
	}
	return value == ""
}

// A reassignment held back by a throttle of 1 B/s stays under way after its first
// fetch; --list shows it, --verify leaves the throttles while it is, and --cancel puts
// the partition back on its original replica, clears the throttles, and the adding
// broker drops its partial copy.
func TestPartitionReassignThrottledCancel(t *testing.T) {
	brokers := vltavaCluster(t, 3, nil)
	topic := uniqueTopic(t)
	must(t, brokers, "", "topic", "create", topic, "--partitions", "1", "--replication-factor", "1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	val := []byte(strings.Repeat("x", 1024))
	for range 3000 { // 3 MB: more than one fetch (replica.fetch.max.bytes, 1 MiB)
		cl.Produce(t.Context(), &kgo.Record{Value: val}, nil)
	}
	if err := cl.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	orig := md.Topics[topic].Partitions[0].Replicas
	add := int32(1)
	for slices.Contains(orig, add) {
		add++
	}
	planFile := filepath.Join(t.TempDir(), "plan.json")
	os.WriteFile(planFile, []byte(formatReassignment(assignmentPlan{{topic, 0}: {orig[0], add}})), 0o600)
	must(t, brokers, "", "partition", "reassign", "--execute", "--reassignment-json-file", planFile, "--throttle", "1")

	size := func(b int32) int64 {
		ds, err := adm.DescribeBrokerLogDirs(t.Context(), b, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return -1
		}
		p, ok := ds.LookupPartition(topic, 0)
		if !ok {
			return -1
		}
		return p.Size
	}
	eventually(t, "the adding replica's first fetch", func() bool { return size(add) > 0 })
	if got, full := size(add), size(orig[0]); got >= full {
		t.Fatalf("the throttled replica has %d bytes of %d", got, full)
	}
	out := must(t, brokers, "", "partition", "reassign", "--list")
	if want := fmt.Sprintf("%s-0: replicas: %d,%d. adding: %d.", topic, orig[0], add, add); !strings.Contains(out, want) {
		t.Fatalf("--list:\n%s\nwant %q", out, want)
	}
	out = must(t, brokers, "", "partition", "reassign", "--verify", "--reassignment-json-file", planFile)
	if !strings.Contains(out, "is still in progress") || strings.Contains(out, "Clearing") {
		t.Fatalf("--verify while held:\n%s", out)
	}
	out = must(t, brokers, "", "partition", "reassign", "--cancel", "--reassignment-json-file", planFile)
	if !strings.Contains(out, "Successfully cancelled partition reassignment for: "+topic+"-0") || !strings.Contains(out, "Clearing broker-level throttles") {
		t.Fatalf("--cancel:\n%s", out)
	}
	eventually(t, "back on the original replica, the partial copy dropped", func() bool {
		md, err := adm.Metadata(t.Context(), topic)
		return err == nil && slices.Equal(md.Topics[topic].Partitions[0].Replicas, orig) && size(add) == -1
	})
	rc, err := adm.DescribeBrokerConfigs(t.Context(), add)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On(fmt.Sprint(add), nil); err != nil || !hasConfig(c.Configs, followerThrottledRate, "9223372036854775807") {
		t.Fatalf("broker %d's throttle not cleared: %v %+v", add, err, c)
	}
}
