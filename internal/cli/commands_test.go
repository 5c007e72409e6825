package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// jsonOut runs a tool that must succeed with -o json and decodes its output into v.
func jsonOut(t *testing.T, v any, brokers, cmd string, args ...string) {
	t.Helper()
	out := must(t, brokers, "", cmd, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("vltava %s %s -o json: %v\n%s", cmd, strings.Join(args, " "), err, out)
	}
}

func TestTopicCreateIfNotExists(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 2)
	out := must(t, brokers, "", "topic", "create", topic, "--partitions", "5", "--if-not-exists")
	if out != "topic "+topic+" already exists\n" {
		t.Fatalf("create --if-not-exists of an existing topic printed %q", out)
	}
	if desc := must(t, brokers, "", "topic", "describe", topic); !strings.Contains(desc, "PartitionCount: 2\t") {
		t.Fatalf("--if-not-exists changed the topic:\n%s", desc)
	}
	fresh := uniqueTopic(t)
	if out := must(t, brokers, "", "topic", "create", fresh, "--partitions", "1", "--if-not-exists"); !strings.HasPrefix(out, "created topic "+fresh) {
		t.Fatalf("create --if-not-exists of a new topic printed %q", out)
	}
}

// TestTopicAlterPartitions: `topic alter NAME --partitions N` sets the total, as
// kafka-topics --alter --partitions does; fewer partitions is Kafka's INVALID_PARTITIONS.
func TestTopicAlterPartitions(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 1)
	if out := must(t, brokers, "", "topic", "alter", topic, "--partitions", "3"); out != "topic "+topic+" now has 3 partitions\n" {
		t.Fatalf("alter --partitions printed %q", out)
	}
	if desc := must(t, brokers, "", "topic", "describe", topic); !strings.Contains(desc, "PartitionCount: 3\t") {
		t.Fatalf("after alter --partitions 3:\n%s", desc)
	}
	mustFail(t, "INVALID_PARTITIONS", brokers, "", "topic", "alter", topic, "--partitions", "2")
	mustFail(t, "--partitions", brokers, "", "topic", "alter", topic)
}

// TestTopicOffsetsAndTrim: `topic offsets` shows each partition's log start, high
// watermark and log end; `topic trim` deletes the records before an offset (Kafka's
// DeleteRecords, kafka-delete-records.sh) and moves the log start there.
func TestTopicOffsetsAndTrim(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	topic := createTopic(t, brokers, 2)
	must(t, brokers, "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", "produce", "--topic", topic, "--partition", "0")
	must(t, brokers, "x\ny\n", "produce", "--topic", topic, "--partition", "1")

	rows := func() [][]string {
		var out [][]string
		for _, l := range strings.Split(strings.TrimSpace(must(t, brokers, "", "topic", "offsets", topic)), "\n") {
			out = append(out, strings.Fields(l))
		}
		return out
	}
	got := rows()
	want := [][]string{
		{"TOPIC", "PARTITION", "LOG-START-OFFSET", "HIGH-WATERMARK", "LOG-END-OFFSET", "RECORDS"},
		{topic, "0", "0", "10", "10", "10"},
		{topic, "1", "0", "2", "2", "2"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("topic offsets:\n got %q\nwant %q", got, want)
	}

	out := must(t, brokers, "", "topic", "trim", topic, "--partition", "0", "--before", "4")
	if !strings.Contains(out, topic) || !strings.Contains(out, "4") {
		t.Fatalf("trim printed %q", out)
	}
	if got := rows(); !slices.Equal(got[1], []string{topic, "0", "4", "10", "10", "6"}) || !slices.Equal(got[2], want[2]) {
		t.Fatalf("after trim --before 4 of partition 0: %q", got)
	}
	equalLines(t, "consume after trim", consumeLines(t, brokers, topic, 1, "--partition", "0"), []string{"4"})
	// Without --partition every partition is trimmed; "end" empties them.
	must(t, brokers, "", "topic", "trim", topic, "--before", "end")
	if got := rows(); !slices.Equal(got[1], []string{topic, "0", "10", "10", "10", "0"}) || !slices.Equal(got[2], []string{topic, "1", "2", "2", "2", "0"}) {
		t.Fatalf("after trim --before end: %q", got)
	}
	mustFail(t, "OFFSET_OUT_OF_RANGE", brokers, "", "topic", "trim", topic, "--partition", "1", "--before", "99")
	mustFail(t, "--before", brokers, "", "topic", "trim", topic)

	var js []struct {
		Topic          string `json:"topic"`
		Partition      int32  `json:"partition"`
		LogStartOffset int64  `json:"log_start_offset"`
		HighWatermark  int64  `json:"high_watermark"`
		LogEndOffset   *int64 `json:"log_end_offset"`
	}
	jsonOut(t, &js, brokers, "topic", "offsets", topic)
	if len(js) != 2 || js[0].Topic != topic || js[0].LogStartOffset != 10 || js[0].HighWatermark != 10 ||
		js[0].LogEndOffset == nil || *js[0].LogEndOffset != 10 {
		t.Fatalf("topic offsets -o json: %+v", js)
	}
}

// TestTopicDescribeAllConfigs: --all adds every effective config with where its value
// comes from (kafka-configs --describe --all); JSON carries the same.
func TestTopicDescribeAllConfigs(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	topic := createTopic(t, brokers, 1)
	must(t, brokers, "", "topic", "alter-config", topic, "--set", "retention.ms=1234")
	desc := must(t, brokers, "", "topic", "describe", topic, "--all")
	for _, want := range []string{"Configs: retention.ms=1234\n", "All configs for topic " + topic + ":\n",
		"  retention.ms=1234 ", "DYNAMIC_TOPIC_CONFIG", "  cleanup.policy=delete ", "DEFAULT_CONFIG", "  segment.bytes="} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe --all lacks %q:\n%s", want, desc)
		}
	}
	if plain := must(t, brokers, "", "topic", "describe", topic); strings.Contains(plain, "cleanup.policy") {
		t.Errorf("describe without --all lists default configs:\n%s", plain)
	}

	var js []struct {
		Name       string `json:"name"`
		ID         string `json:"id"`
		Partitions []struct {
			Partition int32   `json:"partition"`
			Leader    int32   `json:"leader"`
			Replicas  []int32 `json:"replicas"`
			ISR       []int32 `json:"isr"`
		} `json:"partitions"`
		Configs []jsonConfig `json:"configs"`
	}
	jsonOut(t, &js, brokers, "topic", "describe", topic, "--all")
	if len(js) != 1 || js[0].Name != topic || js[0].ID == "" || len(js[0].Partitions) != 1 || js[0].Partitions[0].Leader < 0 {
		t.Fatalf("describe -o json: %+v", js)
	}
	sources := map[string]string{}
	for _, c := range js[0].Configs {
		sources[c.Name] = c.Source
	}
	if sources["retention.ms"] != "DYNAMIC_TOPIC_CONFIG" || sources["cleanup.policy"] != "DEFAULT_CONFIG" {
		t.Errorf("describe --all -o json configs: %v", sources)
	}
}

// TestClusterConfig: broker configs, described (set ones, or --all) and altered as
// cluster-wide dynamic defaults (kafka-configs --entity-type brokers --entity-default) or
// per broker.
func TestClusterConfig(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	out := must(t, brokers, "", "cluster", "config", "describe", "--all")
	for _, want := range []string{"Configs for broker 1:\n", "  log.retention.hours=168 ", "  num.partitions=1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster config describe --all lacks %q:\n%s", want, out)
		}
	}
	if out := must(t, brokers, "", "cluster", "config", "alter", "--set", "log.retention.ms=7200000"); out != "altered cluster-wide broker configs\n" {
		t.Errorf("cluster config alter printed %q", out)
	}
	out = must(t, brokers, "", "cluster", "config", "describe")
	if !strings.Contains(out, "  log.retention.ms=7200000 ") || !strings.Contains(out, "DYNAMIC_DEFAULT_BROKER_CONFIG") ||
		strings.Contains(out, "num.partitions=") {
		t.Errorf("after the alter, describe (set configs only):\n%s", out)
	}
	var js []struct {
		Broker  string       `json:"broker"`
		Configs []jsonConfig `json:"configs"`
	}
	jsonOut(t, &js, brokers, "cluster", "config", "describe", "--broker", "1")
	if len(js) != 1 || js[0].Broker != "1" || !slices.ContainsFunc(js[0].Configs, func(c jsonConfig) bool {
		return c.Name == "log.retention.ms" && c.Value != nil && *c.Value == "7200000"
	}) {
		t.Errorf("cluster config describe -o json: %+v", js)
	}
	must(t, brokers, "", "cluster", "config", "alter", "--delete", "log.retention.ms")
	if out := must(t, brokers, "", "cluster", "config", "describe"); strings.Contains(out, "log.retention.ms=7200000") {
		t.Errorf("after --delete:\n%s", out)
	}
	mustFail(t, "INVALID_CONFIG", brokers, "", "cluster", "config", "alter", "--set", "log.retention.ms=soon")
}

// TestJSONOutput: every topic, group and cluster command that prints a result can print it
// as JSON for scripts (-o json or --format json), and text is the default.
func TestJSONOutput(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 2)
	group := uniqueTopic(t)
	must(t, brokers, "1\n2\n3\n", "produce", "--topic", topic, "--partition", "0")
	must(t, brokers, "", "consume", "--topic", topic, "--group", group, "--count", "2")

	var topics []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
		Internal   bool   `json:"internal"`
	}
	jsonOut(t, &topics, brokers, "topic", "list")
	if !slices.ContainsFunc(topics, func(x struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
		Internal   bool   `json:"internal"`
	}) bool {
		return x.Name == topic && x.Partitions == 2
	}) {
		t.Errorf("topic list -o json lacks %s with 2 partitions: %+v", topic, topics)
	}

	var groups []struct {
		Group string `json:"group"`
		State string `json:"state"`
	}
	jsonOut(t, &groups, brokers, "group", "list")
	if !slices.Contains(groups, struct {
		Group string `json:"group"`
		State string `json:"state"`
	}{group, "Empty"}) {
		t.Errorf("group list -o json: %+v", groups)
	}

	var described []struct {
		Group   string `json:"group"`
		State   string `json:"state"`
		Offsets []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Committed *int64 `json:"committed_offset"`
			End       *int64 `json:"log_end_offset"`
			Lag       *int64 `json:"lag"`
		} `json:"offsets"`
	}
	jsonOut(t, &described, brokers, "group", "describe", group)
	if len(described) != 1 || described[0].State != "Empty" || len(described[0].Offsets) != 2 {
		t.Fatalf("group describe -o json: %+v", described)
	}
	// Partition 0 has the records and the commit; partition 1 neither.
	if o := described[0].Offsets[0]; o.Topic != topic || o.Partition != 0 || o.Committed == nil || *o.Committed != 2 || *o.End != 3 || *o.Lag != 1 {
		t.Errorf("group describe -o json, partition 0: %+v", o)
	}
	if o := described[0].Offsets[1]; o.Partition != 1 || o.Committed != nil || *o.End != 0 {
		t.Errorf("group describe -o json, partition 1: %+v", o)
	}

	var info struct {
		ClusterID string `json:"cluster_id"`
		Brokers   []struct {
			ID   int32  `json:"id"`
			Host string `json:"host"`
			Port int32  `json:"port"`
		} `json:"brokers"`
		ClientVersion string `json:"client_version"`
	}
	jsonOut(t, &info, brokers, "cluster", "info")
	if info.ClusterID == "" || len(info.Brokers) == 0 || info.ClientVersion != Version().String() {
		t.Errorf("cluster info -o json: %+v", info)
	}
	var apis []struct {
		Broker int32 `json:"broker"`
		APIs   []struct {
			Name string `json:"name"`
			Max  int16  `json:"max"`
		} `json:"apis"`
	}
	jsonOut(t, &apis, brokers, "cluster", "api-versions", "--format", "json")
	if len(apis) == 0 || len(apis[0].APIs) == 0 || apis[0].APIs[0].Name != "Produce" {
		t.Errorf("cluster api-versions -o json: %+v", apis)
	}

	var created struct {
		Topic      string `json:"topic"`
		Created    bool   `json:"created"`
		Partitions int32  `json:"partitions"`
	}
	fresh := uniqueTopic(t)
	jsonOut(t, &created, brokers, "topic", "create", fresh, "--partitions", "3")
	if created.Topic != fresh || !created.Created || created.Partitions != 3 {
		t.Errorf("topic create -o json: %+v", created)
	}
	var reset struct {
		Group    string `json:"group"`
		Executed bool   `json:"executed"`
		Offsets  []struct {
			Partition int32 `json:"partition"`
			New       int64 `json:"new"`
		} `json:"offsets"`
	}
	jsonOut(t, &reset, brokers, "group", "reset-offsets", group, "--to-earliest")
	if reset.Group != group || reset.Executed || len(reset.Offsets) != 2 {
		t.Errorf("group reset-offsets -o json: %+v", reset)
	}
	// Text is the default, and a format that does not exist is refused, not echoed.
	mustFail(t, `want text or json, got "xml"`, brokers, "", "topic", "list", "--format", "xml")
}
