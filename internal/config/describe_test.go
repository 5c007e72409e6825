package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sp(s string) *string { return &s }

func findEntry(t *testing.T, entries []Entry, name string) Entry {
	t.Helper()
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s", name)
	return Entry{}
}

func TestDescribeTopic(t *testing.T) {
	b := mustLoad(t, map[string]string{"log.retention.hours": "24", "log.segment.bytes": "2097152"})
	b = b.WithDynamicDefaults(map[string]string{"log.retention.ms": "3600000", "message.max.bytes": "2000"})
	b = b.WithDynamic(map[string]string{"message.max.bytes": "3000"})
	overrides := map[string]string{"max.message.bytes": "4000", "cleanup.policy": "compact"}

	cases := []struct {
		name  string
		value *string
		src   int8
		syns  []Synonym
	}{
		{"max.message.bytes", sp("4000"), SourceDynamicTopic, []Synonym{
			{"max.message.bytes", sp("4000"), SourceDynamicTopic},
			{"message.max.bytes", sp("3000"), SourceDynamicBroker},
			{"message.max.bytes", sp("2000"), SourceDynamicDefaultBroker},
			{"message.max.bytes", sp("1048588"), SourceDefault},
		}},
		{"retention.ms", sp("3600000"), SourceDynamicDefaultBroker, []Synonym{
			{"log.retention.ms", sp("3600000"), SourceDynamicDefaultBroker},
			{"log.retention.hours", sp("24"), SourceStaticBroker},
			{"log.retention.hours", sp("168"), SourceDefault},
		}},
		{"segment.bytes", sp("2097152"), SourceStaticBroker, []Synonym{
			{"log.segment.bytes", sp("2097152"), SourceStaticBroker},
			{"log.segment.bytes", sp("1073741824"), SourceDefault},
		}},
		{"segment.ms", sp("604800000"), SourceDefault, []Synonym{
			{"log.roll.hours", sp("168"), SourceDefault},
		}},
		{"flush.ms", sp("9223372036854775807"), SourceDefault, []Synonym{
			{"log.flush.scheduler.interval.ms", sp("9223372036854775807"), SourceDefault},
		}},
		{"cleanup.policy", sp("compact"), SourceDynamicTopic, []Synonym{
			{"cleanup.policy", sp("compact"), SourceDynamicTopic},
			{"log.cleanup.policy", sp("delete"), SourceDefault},
		}},
		{"leader.replication.throttled.replicas", sp(""), SourceDefault, nil},
	}
	all := b.DescribeTopic(overrides, nil, true)
	for _, tc := range cases {
		e := findEntry(t, all, tc.name)
		if !reflect.DeepEqual(e.Value, tc.value) || e.Source != tc.src || !reflect.DeepEqual(e.Synonyms, tc.syns) {
			t.Errorf("%s: value %v source %d synonyms %s; want %v %d %s", tc.name, deref(e.Value), e.Source, synString(e.Synonyms), deref(tc.value), tc.src, synString(tc.syns))
		}
		if e.ReadOnly || e.Sensitive || e.Doc == "" || e.Type == 0 {
			t.Errorf("%s: flags %+v", tc.name, e)
		}
	}
	for _, e := range all {
		if e.Name == "internal.segment.bytes" {
			t.Errorf("internal key described")
		}
	}
	if len(all) != len(topicKeys)-1 {
		t.Errorf("described %d topic configs, want %d", len(all), len(topicKeys)-1)
	}

	some := b.DescribeTopic(overrides, []string{"retention.ms", "no.such.key"}, false)
	if len(some) != 1 || some[0].Name != "retention.ms" || some[0].Synonyms != nil {
		t.Fatalf("named describe without synonyms: %+v", some)
	}
}

func TestDescribeBroker(t *testing.T) {
	b := mustLoad(t, map[string]string{"log.retention.hours": "24", "num.partitions": "3", "ssl.keystore.password": "secret"})
	b = b.WithDynamicDefaults(map[string]string{"log.retention.ms": "1000", "num.io.threads": "4"})
	all := b.DescribeBroker(map[string]string{"num.io.threads": "6"}, nil, true)

	cases := []struct {
		name     string
		value    *string
		src      int8
		readOnly bool
		syns     []Synonym
	}{
		{"num.partitions", sp("3"), SourceStaticBroker, true, []Synonym{
			{"num.partitions", sp("3"), SourceStaticBroker},
			{"num.partitions", sp("1"), SourceDefault},
		}},
		{"num.io.threads", sp("6"), SourceDynamicBroker, false, []Synonym{
			{"num.io.threads", sp("6"), SourceDynamicBroker},
			{"num.io.threads", sp("4"), SourceDynamicDefaultBroker},
			{"num.io.threads", sp("8"), SourceDefault},
		}},
		// log.retention.hours: the log.retention.ms synonym ahead of it describes another
		// config and is dropped, as in Kafka.
		{"log.retention.hours", sp("24"), SourceStaticBroker, true, []Synonym{
			{"log.retention.hours", sp("24"), SourceStaticBroker},
			{"log.retention.hours", sp("168"), SourceDefault},
		}},
		{"log.retention.ms", sp("1000"), SourceDynamicDefaultBroker, false, []Synonym{
			{"log.retention.ms", sp("1000"), SourceDynamicDefaultBroker},
			{"log.retention.hours", sp("24"), SourceStaticBroker},
			{"log.retention.hours", sp("168"), SourceDefault},
		}},
		{"log.retention.minutes", nil, SourceDefault, true, nil},
		{"ssl.keystore.password", nil, SourceStaticBroker, false, []Synonym{
			{"ssl.keystore.password", nil, SourceStaticBroker},
		}},
	}
	for _, tc := range cases {
		e := findEntry(t, all, tc.name)
		if !reflect.DeepEqual(e.Value, tc.value) || e.Source != tc.src || e.ReadOnly != tc.readOnly || !reflect.DeepEqual(e.Synonyms, tc.syns) {
			t.Errorf("%s: value %v source %d readOnly %v synonyms %s; want %v %d %v %s", tc.name, deref(e.Value), e.Source, e.ReadOnly,
				synString(e.Synonyms), deref(tc.value), tc.src, tc.readOnly, synString(tc.syns))
		}
	}
	pw := findEntry(t, all, "ssl.keystore.password")
	if !pw.Sensitive || pw.Type != TypePassword {
		t.Errorf("password entry %+v", pw)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Fatalf("broker entries not sorted at %s", all[i].Name)
		}
	}

	// The cluster-default resource shows only dynamic default sources.
	defs := b.DescribeBrokerDefaults([]string{"num.io.threads", "num.partitions"}, true)
	if len(defs) != 1 {
		t.Fatalf("defaults: want only num.io.threads, got %+v", defs)
	}
	io := defs[0]
	if io.Name != "num.io.threads" || deref(io.Value) != "4" || io.Source != SourceDynamicDefaultBroker ||
		!reflect.DeepEqual(io.Synonyms, []Synonym{{"num.io.threads", sp("4"), SourceDynamicDefaultBroker}}) {
		t.Errorf("default num.io.threads: %+v %s", io, synString(io.Synonyms))
	}
	all = b.DescribeBrokerDefaults(nil, false)
	if len(all) != 2 || all[0].Name != "log.retention.ms" || all[1].Name != "num.io.threads" {
		t.Errorf("all defaults: %+v", all)
	}
}

func TestValidateBrokerDynamic(t *testing.T) {
	good := map[string]string{
		"log.retention.ms": "1000", "log.segment.bytes": "1048576", "message.max.bytes": "10",
		"log.cleaner.threads": "2", "num.io.threads": "16", "max.connections": "100",
		"log.cleanup.policy": "compact", "unclean.leader.election.enable": "true", "compression.type": "lz4",
		"min.insync.replicas": "2", "log.cleaner.min.cleanable.ratio": "0.2",
	}
	for k, v := range good {
		if err := ValidateBrokerDynamic(k, v); err != nil {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	bad := []struct{ key, value, want string }{
		{"node.id", "2", "cannot be updated dynamically"},
		{"log.dirs", "/x", "cannot be updated dynamically"},
		{"log.retention.hours", "1", "cannot be updated dynamically"},
		{"listeners", "PLAINTEXT://:1", "cannot be updated dynamically"},
		{"retention.ms", "1", `unknown configuration "retention.ms" (retention.ms is a topic config; its broker default is log.retention.ms)`},
		{"log.segment.bytes", "10", "must be at least 1048576"},
		{"num.io.threads", "0", "must be at least 1"},
		{"message.max.bytes", "big", "not a number"},
	}
	for _, tc := range bad {
		err := ValidateBrokerDynamic(tc.key, tc.value)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: error %v, want %q", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestWithDynamic(t *testing.T) {
	b := mustLoad(t, map[string]string{"message.max.bytes": "500", "log.retention.hours": "2"})
	d := b.WithDynamicDefaults(map[string]string{"message.max.bytes": "600", "max.connections": "10"}).
		WithDynamic(map[string]string{"message.max.bytes": "700", "log.retention.ms": "5000", "node.id": "9", "num.io.threads": "bad"})
	if d.MaxConnections != 10 || d.Values["message.max.bytes"] != "700" {
		t.Errorf("dynamic fields: max bytes %s conns %d", d.Values["message.max.bytes"], d.MaxConnections)
	}
	if d.NodeID != 1 || d.Values["num.io.threads"] != "8" {
		t.Errorf("non-dynamic or invalid dynamic values must be ignored: node %d io %s", d.NodeID, d.Values["num.io.threads"])
	}
	if got := d.TopicDefaults(); got.MaxMessageBytes != 700 || got.Retention.Milliseconds() != 5000 {
		t.Errorf("topic defaults with dynamic: %+v", got)
	}
	// The original is untouched: WithDynamic returns a copy.
	if b.TopicDefaults().Retention.Hours() != 2 || b.Values["message.max.bytes"] != "500" {
		t.Errorf("original changed: %s", b.Values["message.max.bytes"])
	}
	// Clearing the per-broker layer falls back to the dynamic defaults.
	if c := d.WithDynamic(nil); c.Values["message.max.bytes"] != "600" {
		t.Errorf("cleared per-broker layer: %s", c.Values["message.max.bytes"])
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func synString(syns []Synonym) string {
	var parts []string
	for _, s := range syns {
		parts = append(parts, s.Name+"="+deref(s.Value)+"@"+string(rune('0'+s.Source)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestValidateBrokerDynamicDelete(t *testing.T) {
	if err := ValidateBrokerDynamicDelete("log.retention.ms"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"node.id", "nope"} {
		if err := ValidateBrokerDynamicDelete(key); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
