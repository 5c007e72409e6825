// topics.go is the topics API: the list (partitions, replication, records, sizes), one
// topic's partitions (leader, replicas, ISR, log start offset, high watermark, size) and
// configs, and the changes: create, delete, alter configs.
package console

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"` // as Kafka prints a Uuid: URL-safe base64, no padding
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replicationFactor"`
	// Records is what a consumer can read: the high watermarks less the log start offsets.
	Records         int64  `json:"records"`
	SizeBytes       *int64 `json:"sizeBytes"` // the leaders' logs; null if unknown
	UnderReplicated int    `json:"underReplicated"`
	Offline         int    `json:"offline"`
	Error           string `json:"error,omitempty"`
}

type partitionView struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Offline        []int32 `json:"offlineReplicas"`
	LogStartOffset int64   `json:"logStartOffset"` // -1 unknown
	HighWatermark  int64   `json:"highWatermark"`  // -1 unknown
	Records        int64   `json:"records"`
	SizeBytes      *int64  `json:"sizeBytes"` // the leader replica's log
	Error          string  `json:"error,omitempty"`
}

type configView struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"` // null: sensitive or unset
	Source    string  `json:"source"`
	Default   bool    `json:"default"` // not set on the topic: the broker's or Kafka's default
	Sensitive bool    `json:"sensitive"`
	ReadOnly  bool    `json:"readOnly"`
	Type      string  `json:"type,omitempty"`
	Doc       string  `json:"doc,omitempty"`
}

type topicView struct {
	topicSummary
	PartitionList []partitionView `json:"partitionList"`
	Configs       []configView    `json:"configs"`
	ConfigsError  string          `json:"configsError,omitempty"`
}

// topicOffsets are the log start offsets, high watermarks and leader sizes of some topics.
type topicOffsets struct {
	starts, ends kadm.ListedOffsets
	sizes        map[string]map[int32]int64 // topic -> partition -> the leader's size
	sizesKnown   bool
}

// offsets lists the start and end offsets of the topics in td and the size of each
// partition's leader replica. Sizes are best effort: not every cluster answers
// DescribeLogDirs.
func (c *Console) offsets(ctx context.Context, td kadm.TopicDetails) (*topicOffsets, error) {
	names := td.Names()
	o := &topicOffsets{sizes: map[string]map[int32]int64{}}
	if len(names) == 0 {
		return o, nil
	}
	var err error
	if o.starts, err = c.adm.ListStartOffsets(ctx, names...); err != nil && len(o.starts) == 0 {
		return nil, fmt.Errorf("list start offsets: %w", firstShardErr(err))
	}
	if o.ends, err = c.adm.ListEndOffsets(ctx, names...); err != nil && len(o.ends) == 0 {
		return nil, fmt.Errorf("list end offsets: %w", firstShardErr(err))
	}
	// DescribeLogDirs answers only for the partitions it is asked about: a topic with
	// none listed is answered with none.
	set := kadm.TopicsSet{}
	for _, n := range names {
		for p := range td[n].Partitions {
			set.Add(n, p)
		}
	}
	dirs, err := c.adm.DescribeAllLogDirs(ctx, set)
	if err != nil && len(dirs) == 0 {
		return o, nil
	}
	o.sizesKnown = true
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			t, ok := td[p.Topic]
			if !ok {
				return
			}
			// A replica that is not the leader may lag; the leader's log is the topic's.
			if pd, ok := t.Partitions[p.Partition]; ok && pd.Leader != p.Broker && len(pd.Replicas) > 1 {
				return
			}
			if o.sizes[p.Topic] == nil {
				o.sizes[p.Topic] = map[int32]int64{}
			}
			o.sizes[p.Topic][p.Partition] += p.Size
		})
	})
	return o, nil
}

// partitions fills the partition rows of one topic and sums them into s.
func (o *topicOffsets) partitions(t kadm.TopicDetail, s *topicSummary) []partitionView {
	var out []partitionView
	var size int64
	for _, p := range t.Partitions.Sorted() {
		pv := partitionView{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), Offline: nonNil(p.OfflineReplicas), LogStartOffset: -1, HighWatermark: -1}
		if p.Err != nil {
			pv.Error = p.Err.Error()
		}
		if st, ok := o.starts.Lookup(t.Topic, p.Partition); ok && st.Err == nil {
			pv.LogStartOffset = st.Offset
		}
		if end, ok := o.ends.Lookup(t.Topic, p.Partition); ok {
			if end.Err == nil {
				pv.HighWatermark = end.Offset
			} else if pv.Error == "" {
				pv.Error = end.Err.Error()
			}
		}
		if pv.LogStartOffset >= 0 && pv.HighWatermark >= 0 {
			pv.Records = max(0, pv.HighWatermark-pv.LogStartOffset)
		}
		if o.sizesKnown {
			sz := o.sizes[t.Topic][p.Partition]
			pv.SizeBytes = &sz
			size += sz
		}
		if p.Leader < 0 {
			s.Offline++
		}
		if len(p.ISR) < len(p.Replicas) {
			s.UnderReplicated++
		}
		s.Records += pv.Records
		out = append(out, pv)
	}
	if o.sizesKnown {
		s.SizeBytes = &size
	}
	return out
}

func summarize(t kadm.TopicDetail) topicSummary {
	s := topicSummary{Name: t.Topic, Internal: t.IsInternal, Partitions: len(t.Partitions)}
	if t.ID != (kadm.TopicID{}) {
		s.ID = base64.RawURLEncoding.EncodeToString(t.ID[:])
	}
	for _, p := range t.Partitions {
		s.ReplicationFactor = max(s.ReplicationFactor, len(p.Replicas))
	}
	if t.Err != nil {
		s.Error = t.Err.Error()
	}
	return s
}

func (c *Console) listTopics(ctx context.Context, _ *http.Request) (any, error) {
	td, err := c.adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("topic metadata: %w", err)
	}
	o, err := c.offsets(ctx, td)
	if err != nil {
		return nil, err
	}
	out := []topicSummary{}
	for _, name := range td.Names() {
		t := td[name]
		s := summarize(t)
		o.partitions(t, &s)
		out = append(out, s)
	}
	return out, nil
}

func (c *Console) getTopic(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	t, err := c.topicDetail(ctx, name)
	if err != nil {
		return nil, err
	}
	td := kadm.TopicDetails{name: t}
	o, err := c.offsets(ctx, td)
	if err != nil {
		return nil, err
	}
	v := topicView{topicSummary: summarize(t)}
	v.PartitionList = o.partitions(t, &v.topicSummary)
	if v.PartitionList == nil {
		v.PartitionList = []partitionView{}
	}
	v.Configs, err = c.topicConfigs(ctx, name)
	if err != nil {
		v.ConfigsError = err.Error()
		v.Configs = []configView{}
	}
	return v, nil
}

// topicDetail is one topic's metadata, or UNKNOWN_TOPIC_OR_PARTITION.
func (c *Console) topicDetail(ctx context.Context, name string) (kadm.TopicDetail, error) {
	td, err := c.adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("topic metadata: %w", err)
	}
	t, ok := td[name]
	if !ok {
		return kadm.TopicDetail{}, fmt.Errorf("topic %s: %w", name, kerr.UnknownTopicOrPartition)
	}
	if t.Err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("topic %s: %w", name, t.Err)
	}
	return t, nil
}

// topicConfigs asks DescribeConfigs directly rather than through kadm, for the types,
// read-only flags and documentation kadm leaves out.
func (c *Console) topicConfigs(ctx context.Context, name string) ([]configView, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeTopic
	res.ResourceName = name
	req.Resources = append(req.Resources, res)
	req.IncludeDocumentation = true
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, err
	}
	out := []configView{}
	for _, rr := range resp.Resources {
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			return nil, fmt.Errorf("%s", errWithMessage(err, rr.ErrorMessage))
		}
		for _, cfg := range rr.Configs {
			cv := configView{Name: cfg.Name, Value: cfg.Value, Sensitive: cfg.IsSensitive, ReadOnly: cfg.ReadOnly,
				Source: strings.TrimSuffix(cfg.Source.String(), "_CONFIG")}
			if cfg.IsSensitive {
				cv.Value = nil
			}
			cv.Default = cfg.Source != kmsg.ConfigSourceDynamicTopicConfig
			if cfg.ConfigType != kmsg.ConfigTypeUnknown {
				cv.Type = strings.ToLower(cfg.ConfigType.String())
			}
			if cfg.Documentation != nil {
				cv.Doc = *cfg.Documentation
			}
			out = append(out, cv)
		}
	}
	slices.SortFunc(out, func(a, b configView) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

type createTopicRequest struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`        // -1: the broker's num.partitions
	ReplicationFactor int16             `json:"replicationFactor"` // -1: the broker's default
	Configs           map[string]string `json:"configs"`
}

func (c *Console) createTopic(ctx context.Context, r *http.Request) (any, error) {
	var req createTopicRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if err := validTopicName(req.Name); err != nil {
		return nil, badRequest("%v", err)
	}
	if req.Partitions == 0 || req.Partitions < -1 {
		return nil, badRequest("partitions %d: want 1 or more (or -1 for the broker's default)", req.Partitions)
	}
	if req.ReplicationFactor == 0 || req.ReplicationFactor < -1 {
		return nil, badRequest("replication factor %d: want 1 or more (or -1 for the broker's default)", req.ReplicationFactor)
	}
	configs := map[string]*string{}
	for k, v := range req.Configs {
		if strings.TrimSpace(k) == "" {
			return nil, badRequest("a config with an empty name")
		}
		configs[k] = &v
	}
	resp, err := c.adm.CreateTopic(ctx, req.Partitions, req.ReplicationFactor, configs, req.Name)
	// The client caches topic metadata for a few seconds; the next page must see the change.
	c.cl.PurgeTopicsFromClient(req.Name)
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("create topic %s: %w", req.Name, kafkaErr(resp.Err, resp.ErrMessage))
	}
	c.opts.Logger.Info("console created a topic", "topic", req.Name, "partitions", resp.NumPartitions, "replication_factor", resp.ReplicationFactor)
	return map[string]any{"name": req.Name, "partitions": resp.NumPartitions, "replicationFactor": resp.ReplicationFactor}, nil
}

// deleteTopicRequest repeats the topic's name: the UI's confirmation, checked here too so
// no stray request deletes a topic.
type deleteTopicRequest struct {
	Confirm string `json:"confirm"`
}

func (c *Console) deleteTopic(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	var req deleteTopicRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Confirm != name {
		return nil, badRequest("to delete topic %s, confirm with its name", name)
	}
	resp, err := c.adm.DeleteTopic(ctx, name)
	c.cl.PurgeTopicsFromClient(name)
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", name, kafkaErr(resp.Err, resp.ErrMessage))
	}
	c.opts.Logger.Info("console deleted a topic", "topic", name)
	return map[string]any{"name": name, "deleted": true}, nil
}

// alterConfigsRequest sets and removes topic configs (IncrementalAlterConfigs SET and
// DELETE; a removed config falls back to the broker's default).
type alterConfigsRequest struct {
	Set    map[string]string `json:"set"`
	Delete []string          `json:"delete"`
}

func (c *Console) alterTopicConfigs(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	var req alterConfigsRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Set)+len(req.Delete) == 0 {
		return nil, badRequest("nothing to change: give set or delete")
	}
	var alters []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(req.Set)) {
		v := req.Set[k]
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range req.Delete {
		if _, both := req.Set[k]; both {
			return nil, badRequest("config %s both set and deleted", k)
		}
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := c.adm.AlterTopicConfigs(ctx, alters, name)
	if err != nil {
		return nil, err
	}
	for _, resp := range resps {
		if resp.Err != nil {
			return nil, fmt.Errorf("alter configs of %s: %w", name, kafkaErr(resp.Err, resp.ErrMessage))
		}
	}
	c.opts.Logger.Info("console altered topic configs", "topic", name, "set", req.Set, "delete", req.Delete)
	return map[string]any{"name": name, "altered": true}, nil
}

// validTopicName applies Kafka's rules for topic names (its Topic.validate), so the UI
// can say what a name may be; the broker answers only INVALID_TOPIC_EXCEPTION.
func validTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is invalid: \".\" and \"..\" are not topic names", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is invalid: at most 249 characters, it has %d", len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q is invalid: it contains %q; Kafka topic names use only ASCII letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}
