package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type alter struct {
	typ       int8
	name      string
	op        int8 // IncrementalAlterConfigs
	key       string
	value     *string
	resources int // for building requests with several
}

func incremental(validateOnly bool, as ...alter) *kmsg.IncrementalAlterConfigsRequest {
	r := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r.ValidateOnly = validateOnly
	for _, a := range as {
		n := len(r.Resources)
		if n == 0 || r.Resources[n-1].ResourceType != kmsg.ConfigResourceType(a.typ) || r.Resources[n-1].ResourceName != a.name || a.resources < 0 {
			r.Resources = append(r.Resources, kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceType(a.typ), ResourceName: a.name})
			n++
		}
		r.Resources[n-1].Configs = append(r.Resources[n-1].Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: a.key, Op: kmsg.IncrementalAlterConfigOp(a.op), Value: a.value})
	}
	return r
}

func codes(resp kmsg.Response) []int16 {
	var out []int16
	switch r := resp.(type) {
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, rr := range r.Resources {
			out = append(out, rr.ErrorCode)
		}
	case *kmsg.AlterConfigsResponse:
		for _, rr := range r.Resources {
			out = append(out, rr.ErrorCode)
		}
	}
	return out
}

func TestIncrementalAlterConfigs(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(1)
	h.createOK("t", 1, 1)
	ok := func(as ...alter) {
		t.Helper()
		for i, c := range codes(h.do(incremental(false, as...))) {
			if c != 0 {
				t.Fatalf("resource %d: %s", i, codeName(c))
			}
		}
	}
	ok(alter{typ: resourceTopic, name: "t", key: "retention.ms", value: new("5000")},
		alter{typ: resourceTopic, name: "t", key: "cleanup.policy", value: new("compact")})
	if c := h.image().Topic("t").Configs; c["retention.ms"] != "5000" || c["cleanup.policy"] != "compact" {
		t.Fatalf("topic configs after SET: %v", c)
	}
	ok(alter{typ: resourceTopic, name: "t", op: 2, key: "cleanup.policy", value: new("delete")})
	if v := h.image().Topic("t").Configs["cleanup.policy"]; v != "compact,delete" {
		t.Fatalf("cleanup.policy after APPEND: %q", v)
	}
	ok(alter{typ: resourceTopic, name: "t", op: 3, key: "cleanup.policy", value: new("compact")},
		alter{typ: resourceTopic, name: "t", op: 1, key: "retention.ms"})
	if c := h.image().Topic("t").Configs; c["cleanup.policy"] != "delete" || c["retention.ms"] != "" {
		t.Fatalf("topic configs after SUBTRACT and DELETE: %v", c)
	}
	// Broker resources: the cluster default and one broker.
	ok(alter{typ: resourceBroker, name: "", key: "log.retention.ms", value: new("60000")})
	ok(alter{typ: resourceBroker, name: "1", key: "log.retention.ms", value: new("120000")})
	if h.image().BrokerConfigs("")["log.retention.ms"] != "60000" || h.image().BrokerConfigs("1")["log.retention.ms"] != "120000" {
		t.Fatalf("broker configs: %v %v", h.image().BrokerConfigs(""), h.image().BrokerConfigs("1"))
	}

	for _, c := range []struct {
		name string
		as   []alter
		want []*kerr.Error
	}{
		{"unknown topic", []alter{{typ: resourceTopic, name: "nope", key: "retention.ms", value: new("1")}}, []*kerr.Error{kerr.UnknownTopicOrPartition}},
		{"bad value", []alter{{typ: resourceTopic, name: "t", key: "retention.ms", value: new("soon")}}, []*kerr.Error{kerr.InvalidConfig}},
		{"unknown key", []alter{{typ: resourceTopic, name: "t", key: "no.such", value: new("1")}}, []*kerr.Error{kerr.InvalidConfig}},
		{"SET without a value", []alter{{typ: resourceTopic, name: "t", key: "retention.ms"}}, []*kerr.Error{kerr.InvalidRequest}},
		{"APPEND without a value", []alter{{typ: resourceTopic, name: "t", op: 2, key: "cleanup.policy"}}, []*kerr.Error{kerr.InvalidRequest}},
		{"APPEND to a non-list", []alter{{typ: resourceTopic, name: "t", op: 2, key: "retention.ms", value: new("1")}}, []*kerr.Error{kerr.InvalidConfig}},
		{"unknown operation", []alter{{typ: resourceTopic, name: "t", op: 7, key: "retention.ms", value: new("1")}}, []*kerr.Error{kerr.InvalidRequest}},
		{"a key twice", []alter{{typ: resourceTopic, name: "t", key: "retention.ms", value: new("1")}, {typ: resourceTopic, name: "t", key: "retention.ms", value: new("2")}}, []*kerr.Error{kerr.InvalidRequest}},
		{"a static broker key", []alter{{typ: resourceBroker, name: "", key: "log.dirs", value: new("/x")}}, []*kerr.Error{kerr.InvalidConfig}},
		{"a broker name that is not an ID", []alter{{typ: resourceBroker, name: "one", key: "log.retention.ms", value: new("1")}}, []*kerr.Error{kerr.InvalidRequest}},
		{"broker loggers", []alter{{typ: resourceBrokerLogger, name: "1", key: "x", value: new("INFO")}}, []*kerr.Error{kerr.InvalidRequest}},
		{"a resource twice", []alter{{typ: resourceTopic, name: "t", key: "retention.ms", value: new("1")}, {typ: resourceTopic, name: "t", key: "segment.ms", value: new("100000"), resources: -1}},
			[]*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest}},
		{"one bad resource does not fail the other", []alter{{typ: resourceTopic, name: "nope", key: "retention.ms", value: new("1")}, {typ: resourceBroker, name: "", key: "log.retention.ms", value: new("70000")}},
			[]*kerr.Error{kerr.UnknownTopicOrPartition, nil}},
	} {
		got := codes(h.do(incremental(false, c.as...)))
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d answers, want %d", c.name, len(got), len(c.want))
		}
		for i, w := range c.want {
			if code := int16(0); w != nil {
				code = w.Code
				if got[i] != code {
					t.Errorf("%s: resource %d: %s, want %s", c.name, i, codeName(got[i]), w.Message)
				}
			} else if got[i] != 0 {
				t.Errorf("%s: resource %d: %s, want success", c.name, i, codeName(got[i]))
			}
		}
	}
	if v := h.image().Topic("t").Configs["retention.ms"]; v != "" {
		t.Fatalf("a refused change was applied: retention.ms %q", v)
	}
	if v := h.image().BrokerConfigs("")["log.retention.ms"]; v != "70000" {
		t.Fatalf("the good resource of a mixed request was not applied: %q", v)
	}
	// validate_only writes nothing.
	before := h.image().Offset()
	if c := codes(h.do(incremental(true, alter{typ: resourceTopic, name: "t", key: "retention.ms", value: new("9")}))); c[0] != 0 || h.image().Offset() != before {
		t.Fatalf("validate_only: %v, image %v -> %v", c, before, h.image().Offset())
	}
}

// The legacy AlterConfigs replaces a resource's configs with the given set.
func TestAlterConfigsReplaces(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(1)
	h.do(createTopic("t", 1, 1, "retention.ms", "1000", "segment.ms", "100000"))
	r := kmsg.NewPtrAlterConfigsRequest()
	r.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceType(resourceTopic), ResourceName: "t",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Value: new("compact")}}}}
	if c := codes(h.do(r)); c[0] != 0 {
		t.Fatalf("AlterConfigs: %s", codeName(c[0]))
	}
	if c := h.image().Topic("t").Configs; len(c) != 1 || c["cleanup.policy"] != "compact" {
		t.Fatalf("configs after AlterConfigs: %v, want only cleanup.policy", c)
	}
	r.Resources[0].Configs[0].Value = new("never")
	if c := codes(h.do(r)); c[0] != kerr.InvalidConfig.Code {
		t.Fatalf("AlterConfigs with a bad value: %s", codeName(c[0]))
	}
	// As Kafka's ConfigAdminManager: a null value or a key twice is INVALID_REQUEST.
	r.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "cleanup.policy"}}
	if c := codes(h.do(r)); c[0] != kerr.InvalidRequest.Code {
		t.Fatalf("AlterConfigs with a null value: %s", codeName(c[0]))
	}
	r.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Value: new("delete")}, {Name: "cleanup.policy", Value: new("compact")}}
	if c := codes(h.do(r)); c[0] != kerr.InvalidRequest.Code {
		t.Fatalf("AlterConfigs with a key twice: %s", codeName(c[0]))
	}
	if c := h.image().Topic("t").Configs; len(c) != 1 || c["cleanup.policy"] != "compact" {
		t.Fatalf("refused AlterConfigs changed the configs: %v", c)
	}
}
