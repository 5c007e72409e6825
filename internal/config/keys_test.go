package config

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The constants must be the wire values kmsg uses.
func TestWireConstants(t *testing.T) {
	types := map[int8]kmsg.ConfigType{
		TypeBoolean: kmsg.ConfigTypeBoolean, TypeString: kmsg.ConfigTypeString, TypeInt: kmsg.ConfigTypeInt,
		TypeShort: kmsg.ConfigTypeShort, TypeLong: kmsg.ConfigTypeLong, TypeDouble: kmsg.ConfigTypeDouble,
		TypeList: kmsg.ConfigTypeList, TypeClass: kmsg.ConfigTypeClass, TypePassword: kmsg.ConfigTypePassword,
	}
	for ours, theirs := range types {
		if ours != int8(theirs) {
			t.Errorf("type %s: %d, kmsg %d", TypeName(ours), ours, theirs)
		}
	}
	sources := map[int8]kmsg.ConfigSource{
		SourceDynamicTopic: kmsg.ConfigSourceDynamicTopicConfig, SourceDynamicBroker: kmsg.ConfigSourceDynamicBrokerConfig,
		SourceDynamicDefaultBroker: kmsg.ConfigSourceDynamicDefaultBrokerConfig, SourceStaticBroker: kmsg.ConfigSourceStaticBrokerConfig,
		SourceDefault: kmsg.ConfigSourceDefaultConfig,
	}
	for ours, theirs := range sources {
		if ours != int8(theirs) {
			t.Errorf("source %d, kmsg %d", ours, theirs)
		}
	}
}

func TestKeyListings(t *testing.T) {
	bk := BrokerKeys()
	if len(bk) != len(brokerKeys) {
		t.Fatalf("%d broker keys", len(bk))
	}
	var sawNull, sawDynamic bool
	for _, k := range bk {
		sawNull = sawNull || (k.Name == "log.retention.ms" && k.Default == nil)
		sawDynamic = sawDynamic || (k.Name == "message.max.bytes" && k.Dynamic)
	}
	if !sawNull || !sawDynamic {
		t.Errorf("log.retention.ms null default %v, message.max.bytes dynamic %v", sawNull, sawDynamic)
	}
	for _, k := range TopicKeys() {
		if k.Name == "internal.segment.bytes" {
			t.Errorf("internal key listed")
		}
		if k.Name == "retention.ms" && (k.Default != nil || len(k.Synonyms) != 3 || k.Synonyms[2] != "log.retention.hours") {
			t.Errorf("retention.ms: %+v", k)
		}
	}
	if d := Default(); d.NodeID != 1 || d.Listeners[0] != "127.0.0.1:9092" {
		t.Errorf("Default: %+v", d)
	}
}

// A zero Broker (built by hand in another package's test) still resolves topics with
// Kafka's defaults.
func TestZeroBrokerResolves(t *testing.T) {
	var b Broker
	if got, want := b.TopicDefaults(), Default().TopicDefaults(); got != want {
		t.Fatalf("zero broker:\n got %+v\nwant %+v", got, want)
	}
}
