package controller

// Configs: AlterConfigs v0-2 (the legacy form: a resource's dynamic configs become
// exactly the given set) and IncrementalAlterConfigs v0-1 (SET, DELETE, APPEND and
// SUBTRACT, the last two for LIST configs only), for TOPIC and BROKER resources, with
// validate_only, as Kafka's ConfigAdminManager and ConfigurationControlManager decide
// them. One request is one change; each resource succeeds or fails alone.
//
// A resource named twice in a request, a key twice in one resource, or a null value
// (but for DELETE) is INVALID_REQUEST. TOPIC: the topic must exist (UNKNOWN_TOPIC_OR_PARTITION) and its
// resulting overrides must validate with the broker defaults (INVALID_CONFIG). BROKER:
// "" is the cluster-wide default and a broker ID in decimal one broker (anything else is
// INVALID_REQUEST); only the keys Kafka lets change at run time may be set or removed
// (INVALID_CONFIG). BROKER_LOGGER and other types are INVALID_REQUEST. APPEND and
// SUBTRACT start from the current value: the override if there is one, else the
// effective value (the broker default).

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// Config resource types (Kafka's ConfigResource.Type).
const (
	resourceTopic        int8 = 2
	resourceBroker       int8 = 4
	resourceBrokerLogger int8 = 8
)

// configChange is one key's change: Value nil removes it.
type configChange struct {
	key   string
	value *string
}

// resourceKey names a config resource.
type resourceKey struct {
	typ  int8
	name string
}

func (c *core) alterConfigs(r *kmsg.AlterConfigsRequest) decision {
	keys := make([]resourceKey, len(r.Resources))
	changes := make([][]configChange, len(r.Resources))
	pre := make([]error, len(r.Resources))
	for i, rr := range r.Resources {
		keys[i] = resourceKey{int8(rr.ResourceType), rr.ResourceName}
		seen := map[string]bool{}
		var nulls []string
		for _, cf := range rr.Configs {
			if seen[cf.Name] {
				pre[i] = errorf(kerr.InvalidRequest, "Error due to duplicate config keys")
				break
			}
			seen[cf.Name] = true
			if cf.Value == nil {
				nulls = append(nulls, cf.Name)
			}
			changes[i] = append(changes[i], configChange{cf.Name, cf.Value})
		}
		if pre[i] == nil && len(nulls) > 0 {
			pre[i] = errorf(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
		}
	}
	rs, errs := c.alterResources(keys, changes, pre, true)
	if r.ValidateOnly {
		rs = nil
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
		for i, rr := range r.Resources {
			resp.Resources = append(resp.Resources, kmsg.AlterConfigsResponseResource{ErrorCode: codeOf(errs[i]),
				ErrorMessage: errMsg(errs[i]), ResourceType: rr.ResourceType, ResourceName: rr.ResourceName})
		}
		return resp
	}}
}

func (c *core) incrementalAlterConfigs(r *kmsg.IncrementalAlterConfigsRequest) decision {
	keys := make([]resourceKey, len(r.Resources))
	changes := make([][]configChange, len(r.Resources))
	pre := make([]error, len(r.Resources))
	for i, rr := range r.Resources {
		keys[i] = resourceKey{int8(rr.ResourceType), rr.ResourceName}
		seen := map[string]bool{}
		for _, cf := range rr.Configs {
			if seen[cf.Name] {
				pre[i] = errorf(kerr.InvalidRequest, "Error due to duplicate config keys")
				break
			}
			seen[cf.Name] = true
			if cf.Op != 1 && cf.Value == nil {
				pre[i] = errorf(kerr.InvalidRequest, "Null value not supported for : %s", cf.Name)
				break
			}
			switch cf.Op {
			case 0: // SET
				changes[i] = append(changes[i], configChange{cf.Name, cf.Value})
			case 1: // DELETE
				changes[i] = append(changes[i], configChange{key: cf.Name})
			case 2, 3: // APPEND, SUBTRACT
				cur, typ, err := c.currentConfig(keys[i], cf.Name)
				if err != nil {
					pre[i] = err
					break
				}
				if typ != config.TypeList {
					pre[i] = errorf(kerr.InvalidConfig, "Config value append is not allowed for config key: %s", cf.Name)
					break
				}
				changes[i] = append(changes[i], configChange{cf.Name, new(listOp(cur, cf.Value, cf.Op == 2))})
			default:
				pre[i] = errorf(kerr.InvalidRequest, "Unknown alter config operation %d for %s", cf.Op, cf.Name)
			}
			if pre[i] != nil {
				break
			}
		}
	}
	rs, errs := c.alterResources(keys, changes, pre, false)
	if r.ValidateOnly {
		rs = nil
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for i, rr := range r.Resources {
			resp.Resources = append(resp.Resources, kmsg.IncrementalAlterConfigsResponseResource{ErrorCode: codeOf(errs[i]),
				ErrorMessage: errMsg(errs[i]), ResourceType: rr.ResourceType, ResourceName: rr.ResourceName})
		}
		return resp
	}}
}

// listOp appends the comma-separated items of v to the list cur, or subtracts them.
func listOp(cur string, v *string, appendOp bool) string {
	var items []string
	if cur != "" {
		items = strings.Split(cur, ",")
	}
	if v != nil && *v != "" {
		for _, x := range strings.Split(*v, ",") {
			x = strings.TrimSpace(x)
			i := slices.Index(items, x)
			if appendOp && i < 0 {
				items = append(items, x)
			} else if !appendOp && i >= 0 {
				items = slices.Delete(items, i, i+1)
			}
		}
	}
	return strings.Join(items, ",")
}

// currentConfig returns a config's current value for APPEND and SUBTRACT, and its type.
func (c *core) currentConfig(res resourceKey, key string) (string, int8, error) {
	im := c.spec
	eff := c.cfg.Broker.WithDynamicDefaults(im.BrokerConfigs(""))
	var entries []config.Entry
	switch res.typ {
	case resourceTopic:
		t := im.Topic(res.name)
		if t == nil {
			return "", 0, errorf(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", res.name)
		}
		entries = eff.DescribeTopic(t.Configs, []string{key}, false)
	case resourceBroker:
		if res.name == "" {
			entries = eff.DescribeBroker(nil, []string{key}, false)
		} else {
			entries = eff.DescribeBroker(im.BrokerConfigs(res.name), []string{key}, false)
		}
	default:
		return "", 0, errorf(kerr.InvalidRequest, "Unsupported resource type %d", res.typ)
	}
	if len(entries) == 0 {
		return "", 0, errorf(kerr.InvalidConfig, "Unknown config key %s", key)
	}
	if entries[0].Value == nil {
		return "", entries[0].Type, nil
	}
	return *entries[0].Value, entries[0].Type, nil
}

// alterResources decides the changes of each resource (with replace, the legacy form)
// and returns the records of those that succeed and each resource's error. pre, if not
// nil, holds the errors already found in each resource's changes.
func (c *core) alterResources(keys []resourceKey, changes [][]configChange, pre []error, replace bool) ([]metadata.Record, []error) {
	im := c.spec
	eff := c.cfg.Broker.WithDynamicDefaults(im.BrokerConfigs(""))
	count := map[resourceKey]int{}
	for _, k := range keys {
		count[k]++
	}
	errs := make([]error, len(keys))
	var rs []metadata.Record
	for i, k := range keys {
		if count[k] > 1 {
			errs[i] = errorf(kerr.InvalidRequest, "Each resource must appear at most once.")
			continue
		}
		if pre != nil && pre[i] != nil {
			errs[i] = pre[i]
			continue
		}
		var krs []metadata.Record
		switch k.typ {
		case resourceTopic:
			krs, errs[i] = alterTopicConfigs(im, eff, k.name, changes[i], replace)
		case resourceBroker:
			krs, errs[i] = alterBrokerConfigs(im, k.name, changes[i], replace)
		case resourceBrokerLogger:
			errs[i] = errorf(kerr.InvalidRequest, "Broker loggers are not configurable")
		default:
			errs[i] = errorf(kerr.InvalidRequest, "Unsupported resource type %d", k.typ)
		}
		rs = append(rs, krs...)
	}
	if len(rs) > 0 { // a new min.insync.replicas clears the ELRs it concerns (elect.go)
		if next, _, err := im.Apply(metadata.Offset{Index: im.Offset().Index + 1, Term: im.Offset().Term}, rs); err == nil {
			rs = append(rs, c.clearELRRecords(next)...)
		}
	}
	return rs, errs
}

// alterTopicConfigs decides one topic's config change.
func alterTopicConfigs(im *metadata.Image, eff config.Broker, name string, changes []configChange, replace bool) ([]metadata.Record, error) {
	t := im.Topic(name)
	if t == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", name)
	}
	next := map[string]string{}
	if !replace {
		maps.Copy(next, t.Configs)
	}
	for _, ch := range changes {
		if ch.value == nil {
			delete(next, ch.key)
		} else {
			next[ch.key] = *ch.value
		}
	}
	if err := eff.ValidateTopic(next); err != nil {
		return nil, errorf(kerr.InvalidConfig, "%v", err)
	}
	return configRecords(metadata.ResourceTopic, name, t.Configs, next), nil
}

// alterBrokerConfigs decides one broker resource's config change.
func alterBrokerConfigs(im *metadata.Image, name string, changes []configChange, replace bool) ([]metadata.Record, error) {
	if name != "" {
		id, err := strconv.ParseInt(name, 10, 32)
		if err != nil || id < 0 || strconv.FormatInt(id, 10) != name {
			return nil, errorf(kerr.InvalidRequest, "Invalid broker name %q: expected a broker ID or the empty string for the cluster default", name)
		}
	}
	old := im.BrokerConfigs(name)
	next := map[string]string{}
	if !replace {
		maps.Copy(next, old)
	}
	for _, ch := range changes {
		var err error
		if ch.value == nil {
			err = config.ValidateBrokerDynamicDelete(ch.key)
			delete(next, ch.key)
		} else {
			err = config.ValidateBrokerDynamic(ch.key, *ch.value)
			next[ch.key] = strings.TrimSpace(*ch.value)
		}
		if err != nil {
			return nil, errorf(kerr.InvalidConfig, "%v", err)
		}
	}
	return configRecords(metadata.ResourceBroker, name, old, next), nil
}

// configRecords returns the records that turn a resource's configs from old into next,
// by key.
func configRecords(typ int8, name string, old, next map[string]string) []metadata.Record {
	var rs []metadata.Record
	for _, k := range slices.Sorted(maps.Keys(old)) {
		if _, ok := next[k]; !ok {
			rs = append(rs, &metadata.ConfigRecord{ResourceType: typ, ResourceName: name, Name: k})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if v, ok := old[k]; !ok || v != next[k] {
			rs = append(rs, &metadata.ConfigRecord{ResourceType: typ, ResourceName: name, Name: k, Value: new(next[k])})
		}
	}
	return rs
}
