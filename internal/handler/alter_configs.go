package handler

// AlterConfigs v0-2 (the legacy, replacing form: a topic's overrides become exactly the
// given set) and IncrementalAlterConfigs v0-1 (SET, DELETE, APPEND and SUBTRACT, the
// last two for list-typed configs only) for TOPIC and BROKER resources, with
// validate_only. Broker changes are dynamic cluster-wide defaults, checked against
// the keys Kafka lets change at run time.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) alterConfigs(_ context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		var changes []broker.ConfigChange
		for _, c := range rr.Configs {
			changes = append(changes, broker.ConfigChange{Key: c.Name, Value: c.Value})
		}
		err := h.applyConfigs(r, int8(rr.ResourceType), rr.ResourceName, changes, true, req.ValidateOnly)
		resp.Resources = append(resp.Resources, kmsg.AlterConfigsResponseResource{
			ErrorCode: codeOf(err), ErrorMessage: errMsg(err), ResourceType: rr.ResourceType, ResourceName: rr.ResourceName,
		})
	}
	return resp
}

func (h *Handler) incrementalAlterConfigs(_ context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		err := func() error {
			seen := map[string]bool{}
			var changes []broker.ConfigChange
			for _, c := range rr.Configs {
				if seen[c.Name] {
					return fmt.Errorf("%w: duplicate config key %s", kerr.InvalidRequest, c.Name)
				}
				seen[c.Name] = true
				switch c.Op {
				case 0: // SET
					if c.Value == nil {
						return fmt.Errorf("%w: null value for %s", kerr.InvalidRequest, c.Name)
					}
					changes = append(changes, broker.ConfigChange{Key: c.Name, Value: c.Value})
				case 1: // DELETE
					changes = append(changes, broker.ConfigChange{Key: c.Name})
				case 2, 3: // APPEND, SUBTRACT
					cur, typ, err := h.currentValue(int8(rr.ResourceType), rr.ResourceName, c.Name)
					if err != nil {
						return err
					}
					if typ != 7 { // LIST
						return fmt.Errorf("%w: config %s is not a list: APPEND and SUBTRACT apply to lists only", kerr.InvalidConfig, c.Name)
					}
					v := listOp(cur, c.Value, c.Op == 2)
					changes = append(changes, broker.ConfigChange{Key: c.Name, Value: &v})
				default:
					return fmt.Errorf("%w: unknown config operation %d", kerr.InvalidRequest, c.Op)
				}
			}
			return h.applyConfigs(r, int8(rr.ResourceType), rr.ResourceName, changes, false, req.ValidateOnly)
		}()
		resp.Resources = append(resp.Resources, kmsg.IncrementalAlterConfigsResponseResource{
			ErrorCode: codeOf(err), ErrorMessage: errMsg(err), ResourceType: rr.ResourceType, ResourceName: rr.ResourceName,
		})
	}
	return resp
}

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

func (h *Handler) currentValue(rtype int8, name, key string) (string, int8, error) {
	switch rtype {
	case resourceTopic:
		t := h.b.Image().Topic(name)
		if t == nil {
			return "", 0, fmt.Errorf("%w: topic %s does not exist", kerr.UnknownTopicOrPartition, name)
		}
		for _, e := range h.b.TopicConfigEntries(t.Configs, []string{key}, false) {
			if e.Value != nil {
				return *e.Value, e.Type, nil
			}
			return "", e.Type, nil
		}
	case resourceBroker:
		for _, e := range h.b.BrokerConfigEntries([]string{key}, false, false) {
			if e.Value != nil {
				return *e.Value, e.Type, nil
			}
			return "", e.Type, nil
		}
	}
	return "", 0, fmt.Errorf("%w: unknown config %s", kerr.InvalidConfig, key)
}

// applyConfigs applies (or with validateOnly checks) a resource's changes, and logs the
// ones applied.
func (h *Handler) applyConfigs(r *Request, rtype int8, name string, changes []broker.ConfigChange, replace, validateOnly bool) error {
	logged := func(err error) error {
		if err == nil && !validateOnly {
			h.logConfigChange(r, rtype, name, changes, replace)
		}
		return err
	}
	switch rtype {
	case resourceTopic:
		return logged(h.b.AlterTopicConfigs(name, changes, replace, validateOnly))
	case resourceBroker:
		if err := h.checkBrokerResource(name); err != nil {
			return err
		}
		return logged(h.b.AlterBrokerConfigs(name, changes, validateOnly))
	case resourceBrokerLogger:
		return fmt.Errorf("%w: broker loggers are not configurable", kerr.InvalidRequest)
	}
	return fmt.Errorf("%w: unsupported resource type %d", kerr.InvalidRequest, rtype)
}
