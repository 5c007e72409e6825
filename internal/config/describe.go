package config

// DescribeConfigs support: each config's value, source, read-only and sensitive flags,
// type, documentation and synonyms, following Kafka's ConfigHelper: synonyms are listed
// layer by layer (topic override; then per-broker dynamic, dynamic default, static and
// default, each over the broker synonyms in Kafka's order), and a config's source is
// that of its first synonym.
//
// One deliberate difference for topic configs: Kafka lists a topic config's broker
// synonyms only from its first broker synonym on (it drops the list up to the first
// entry named log.retention.ms, say), so with only log.retention.hours set it reports
// retention.ms as DEFAULT_CONFIG with no synonyms although the operator changed it. We
// list every synonym that is set, so retention.ms shows STATIC_BROKER_CONFIG from
// log.retention.hours. Broker configs follow Kafka exactly (describing
// log.retention.hours does not list log.retention.ms ahead of it).

import (
	"slices"
	"strings"
)

// ValidateBrokerDynamic checks a dynamic broker config change (IncrementalAlterConfigs on a
// BROKER resource): only keys Kafka allows to change dynamically are accepted.
func ValidateBrokerDynamic(key, value string) error {
	v := strings.TrimSpace(value)
	if err := validateDynamicKey(key, v); err != nil {
		return err
	}
	k := brokerKeyIndex[key]
	if why := validate(k.typ, k.check, v); why != "" {
		return &Error{Key: key, Value: v, Reason: why}
	}
	return nil
}

// ValidateBrokerDynamicDelete checks that a dynamic broker config may be removed
// (IncrementalAlterConfigs DELETE, or a null value): the key must be one Kafka lets
// change at run time. Removing it brings back the static or default value.
func ValidateBrokerDynamicDelete(key string) error {
	return validateDynamicKey(key, "")
}

func validateDynamicKey(key, value string) error {
	k := brokerKeyIndex[key]
	if k == nil {
		return &Error{Key: key, Hint: brokerKeyHint(key)}
	}
	if !k.dynamic {
		return &Error{Key: key, Value: value, Reason: "cannot be updated dynamically; set it in the static configuration and restart"}
	}
	return nil
}

// IsDynamicBrokerKey reports whether Kafka lets key change at run time.
func IsDynamicBrokerKey(key string) bool {
	k := brokerKeyIndex[key]
	return k != nil && k.dynamic
}

func strPtr(s string) *string { return &s }

// wanted reports whether name is asked for; no names means all.
func wanted(names []string, name string) bool {
	return len(names) == 0 || slices.Contains(names, name)
}

// brokerSynonyms lists the layers that set any of names, in Kafka's order: all names
// for the per-broker dynamic layer, then all for the dynamic defaults, the static
// configuration, and finally the defaults that are not null.
func (b *Broker) brokerSynonyms(names []string, sensitive bool) []Synonym {
	var out []Synonym
	add := func(layer map[string]string, source int8) {
		for _, n := range names {
			if v, ok := layer[n]; ok {
				s := Synonym{Name: n, Source: source}
				if !sensitive {
					s.Value = strPtr(v)
				}
				out = append(out, s)
			}
		}
	}
	add(b.dynBroker, SourceDynamicBroker)
	add(b.dynDefault, SourceDynamicDefaultBroker)
	add(b.static, SourceStaticBroker)
	for _, n := range names {
		if k := brokerKeyIndex[n]; k != nil && !k.null {
			s := Synonym{Name: n, Source: SourceDefault}
			if !sensitive {
				s.Value = strPtr(k.def)
			}
			out = append(out, s)
		}
	}
	return out
}

// DescribeTopic lists every topic config (or only names, if non-empty) with value, source and
// synonyms (if requested), as Kafka's DescribeConfigs does. Unknown names are left out.
func (b Broker) DescribeTopic(overrides map[string]string, names []string, synonyms bool) []Entry {
	var out []Entry
	for i := range topicKeys {
		k := &topicKeys[i]
		if k.hidden || !wanted(names, k.name) {
			continue
		}
		value, _ := b.topicValue(k, overrides)
		var all []Synonym
		if v, ok := overrides[k.name]; ok && validate(k.typ, k.check, strings.TrimSpace(v)) == "" {
			all = append(all, Synonym{Name: k.name, Value: strPtr(strings.TrimSpace(v)), Source: SourceDynamicTopic})
		}
		synNames := make([]string, len(k.synonyms))
		for j, s := range k.synonyms {
			synNames[j] = s.name
		}
		all = append(all, b.brokerSynonyms(synNames, false)...)
		e := Entry{
			Name:   k.name,
			Value:  strPtr(value),
			Source: SourceDefault,
			Type:   k.typ,
			Doc:    k.doc,
		}
		if len(all) > 0 {
			e.Source = all[0].Source
		}
		if synonyms {
			e.Synonyms = all
		}
		out = append(out, e)
	}
	return out
}

// DescribeBroker lists broker configs with sources; dynamic holds dynamically altered values.
// dynamic is this broker's DYNAMIC_BROKER_CONFIG layer; when nil, the layer given to
// WithDynamic (if any) is used. Cluster-wide dynamic defaults come from
// WithDynamicDefaults. Keys that cannot change at run time are read-only; PASSWORD
// values are never returned. Entries are sorted by name; unknown names are left out.
func (b Broker) DescribeBroker(dynamic map[string]string, names []string, synonyms bool) []Entry {
	if dynamic != nil {
		b = b.WithDynamic(dynamic)
	}
	return b.describeBroker(names, synonyms, false)
}

// DescribeBrokerDefaults describes the cluster-wide default resource (BROKER resource
// ""): as Kafka does, it lists only the configs set as dynamic cluster defaults (given
// with WithDynamicDefaults), each with that value and only that layer as synonym.
func (b Broker) DescribeBrokerDefaults(names []string, synonyms bool) []Entry {
	b = b.WithDynamic(nil)
	return b.describeBroker(names, synonyms, true)
}

func (b *Broker) describeBroker(names []string, synonyms, clusterDefault bool) []Entry {
	keys := make([]*brokerKey, 0, len(brokerKeys))
	for i := range brokerKeys {
		if _, set := b.dynDefault[brokerKeys[i].name]; clusterDefault && !set {
			continue
		}
		if wanted(names, brokerKeys[i].name) {
			keys = append(keys, &brokerKeys[i])
		}
	}
	slices.SortFunc(keys, func(x, y *brokerKey) int { return strings.Compare(x.name, y.name) })
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		sensitive := k.typ == TypePassword
		all := b.brokerSynonyms(brokerSynonymGroup(k.name), sensitive)
		// Synonyms for a more specific key listed before this one describe another
		// config (log.retention.ms when describing log.retention.hours): drop them.
		for len(all) > 0 && all[0].Name != k.name {
			all = all[1:]
		}
		if clusterDefault {
			all = slices.DeleteFunc(all, func(s Synonym) bool { return s.Source != SourceDynamicDefaultBroker })
		}
		if len(all) == 0 {
			all = nil
		}
		e := Entry{
			Name:      k.name,
			Source:    SourceDefault,
			ReadOnly:  !k.dynamic,
			Sensitive: sensitive,
			Type:      k.typ,
			Doc:       k.doc,
		}
		if v, _, ok := b.lookup(k.name); ok && !sensitive {
			e.Value = strPtr(v)
		}
		if len(all) > 0 {
			e.Source = all[0].Source
		}
		if synonyms {
			e.Synonyms = all
		}
		out = append(out, e)
	}
	return out
}
