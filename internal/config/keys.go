package config

import "strings"

// Read-only views of the key tables, for help output and documentation.

// KeyInfo describes one configuration key.
type KeyInfo struct {
	Name     string
	Type     int8    // kmsg ConfigType
	Default  *string // nil when the default is null or, for topic keys, comes from a broker key
	Doc      string
	Dynamic  bool     // broker keys: may change at run time (IncrementalAlterConfigs)
	Synonyms []string // topic keys: the broker keys that supply the default, in order
}

// BrokerKeys lists the broker keys Vltava reads, in table order.
func BrokerKeys() []KeyInfo {
	out := make([]KeyInfo, 0, len(brokerKeys))
	for _, k := range brokerKeys {
		info := KeyInfo{Name: k.name, Type: k.typ, Doc: k.doc, Dynamic: k.dynamic}
		if !k.null {
			info.Default = strPtr(k.def)
		}
		out = append(out, info)
	}
	return out
}

// TopicKeys lists the topic keys, sorted by name, without internal ones.
func TopicKeys() []KeyInfo {
	out := make([]KeyInfo, 0, len(topicKeys))
	for _, k := range topicKeys {
		if k.hidden {
			continue
		}
		info := KeyInfo{Name: k.name, Type: k.typ, Doc: k.doc}
		if len(k.synonyms) == 0 {
			info.Default = strPtr(k.def)
		}
		for _, s := range k.synonyms {
			info.Synonyms = append(info.Synonyms, s.name)
		}
		out = append(out, info)
	}
	return out
}

// Default is the configuration with no file, environment or overrides: a single-node
// cluster on 127.0.0.1:9092 with its data in ./data. Handy in tests of other packages.
func Default() Broker {
	b, err := Load("", nil, nil)
	if err != nil {
		// The defaults are validated by this package's tests; failing here is a bug.
		panic("config: defaults do not load: " + err.Error())
	}
	return b
}

// IsSet reports whether a broker key was set by the file, the environment, an override
// or a dynamic config, rather than left at its default.
func (b Broker) IsSet(key string) bool { return b.explicit(key) }

// Sensitive reports whether a broker or topic key holds a secret (Kafka's PASSWORD
// type): its value is never described or logged.
func Sensitive(key string) bool {
	if k := brokerKeyIndex[key]; k != nil {
		return k.typ == TypePassword
	}
	if k := topicKeyIndex[key]; k != nil {
		return k.typ == TypePassword
	}
	// Keys the table does not know (accepted Kafka keys such as ssl.* and sasl.*) are
	// judged by their names.
	for _, s := range []string{"password", "secret", "jaas"} {
		if strings.Contains(key, s) {
			return true
		}
	}
	return false
}
