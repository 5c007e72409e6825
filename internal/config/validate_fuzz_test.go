package config

import (
	"strings"
	"testing"
)

// FuzzTopicConfig checks that validation and resolution agree: a value
// ValidateTopicConfig accepts is what DescribeTopic reports, from the topic, and one it
// rejects never reaches the resolved configuration. Nothing may panic.
func FuzzTopicConfig(f *testing.F) {
	for i, v := range []string{"1", "-1", " 2 ", "x", "compact,delete", "0.5", "TRUE", "", "99999999999999999999", "1e3", "*", "0:1"} {
		f.Add(uint(i), v)
	}
	b := Default()
	f.Fuzz(func(t *testing.T, idx uint, value string) {
		k := topicKeys[idx%uint(len(topicKeys))]
		if k.hidden {
			return
		}
		overrides := map[string]string{k.name: value}
		err := ValidateTopicConfig(k.name, value)
		_ = b.ResolveTopic(overrides)
		entries := b.DescribeTopic(overrides, []string{k.name}, true)
		if len(entries) != 1 {
			t.Fatalf("%s: %d entries", k.name, len(entries))
		}
		e := entries[0]
		if err == nil {
			if e.Source != SourceDynamicTopic || e.Value == nil || *e.Value != strings.TrimSpace(value) {
				t.Fatalf("%s=%q valid but described as %v from %d", k.name, value, deref(e.Value), e.Source)
			}
		} else if e.Source == SourceDynamicTopic {
			t.Fatalf("%s=%q invalid (%v) but described as the topic's value", k.name, value, err)
		}
	})
}

// FuzzBrokerConfig checks Load never panics on any value of any broker key, and that
// a value it accepts is the one it reports.
func FuzzBrokerConfig(f *testing.F) {
	for i, v := range []string{"1", "-1", "x", "PLAINTEXT://:0", "a:b", "", "1.5", "true"} {
		f.Add(uint(i), v)
	}
	f.Fuzz(func(t *testing.T, idx uint, value string) {
		k := brokerKeys[idx%uint(len(brokerKeys))]
		b, err := Load("", nil, map[string]string{k.name: value})
		if err != nil {
			return
		}
		if got := b.Values[k.name]; got != strings.TrimSpace(value) {
			t.Fatalf("%s=%q loaded as %q", k.name, value, got)
		}
		_ = b.TopicDefaults()
		_ = b.DescribeBroker(nil, nil, true)
	})
}
