package handler

// DescribeConfigs v0-4 for TOPIC (2) and BROKER (4) resources, with Kafka's names,
// values, sources and synonyms (v1+) and types and documentation (v3+). A broker
// resource names this node or "" (the cluster-wide default). BROKER_LOGGER (8) answers
// with no configs: Vltava's logging is not log4j.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
)

const (
	resourceTopic        = 2
	resourceBroker       = 4
	resourceBrokerLogger = 8
)

func (h *Handler) checkBrokerResource(name string) error {
	if name == "" || name == strconv.Itoa(int(h.b.NodeID())) {
		return nil
	}
	return fmt.Errorf("%w: unexpected broker id, expected %d or empty string, but received %s", kerr.InvalidRequest, h.b.NodeID(), name)
}

func (h *Handler) describeConfigs(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []config.Entry
		var err error
		switch int8(rr.ResourceType) {
		case resourceTopic:
			t := h.b.Image().Topic(rr.ResourceName)
			if t == nil {
				err = fmt.Errorf("%w: topic %s does not exist", kerr.UnknownTopicOrPartition, rr.ResourceName)
				break
			}
			entries = h.b.TopicConfigEntries(t.Configs, rr.ConfigNames, req.IncludeSynonyms)
		case resourceBroker:
			if err = h.checkBrokerResource(rr.ResourceName); err == nil {
				entries = h.b.BrokerConfigEntries(rr.ConfigNames, req.IncludeSynonyms, rr.ResourceName == "")
			}
		case resourceBrokerLogger:
			err = h.checkBrokerResource(rr.ResourceName)
		default:
			err = fmt.Errorf("%w: unsupported resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = codeOf(err), errMsg(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, e := range entries {
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Sensitive
			c.Source = kmsg.ConfigSource(e.Source)
			c.IsDefault = e.Source == 5
			if req.IncludeSynonyms {
				for _, s := range e.Synonyms {
					c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: s.Name, Value: s.Value, Source: kmsg.ConfigSource(s.Source)})
				}
			}
			if req.Version >= 3 {
				c.ConfigType = kmsg.ConfigType(e.Type)
				if req.IncludeDocumentation {
					d := e.Doc
					c.Documentation = &d
				}
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
