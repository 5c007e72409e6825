package broker

// The metadata writer: where a metadata change asked of this node (a topic created, a
// config altered, a block of producer IDs) goes to the active controller
// (internal/controller), the only writer of the metadata log. The broker builds the
// controller API's request, sends it through the controller channel (channel.go: to
// this node's own controller when it is active, else over TCP to the active one) and
// turns the response back into results. This is Kafka's forwarding, done by the broker
// itself rather than in an Envelope (KIP-590): whichever node a client asks, it sees no
// NOT_CONTROLLER unless the cluster has no controller for the whole request timeout.
//
// Every method returns once the change is committed and this node's image has reached
// it: the local controller answers after its own apply on this node; an answer from a
// controller elsewhere is followed by a barrier (DescribeQuorum's high watermark, which
// is at or past the change's entry, waited for in the local image).

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// MetadataWriter commits metadata changes.
type MetadataWriter interface {
	CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult
	CreatePartitions(ctx context.Context, specs []PartitionsSpec, validateOnly bool) []error
	DeleteTopic(ctx context.Context, name string) (uuid.UUID, error)
	AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error
	AlterBrokerConfigs(ctx context.Context, name string, changes []ConfigChange, validateOnly bool) error
	// AllocateProducerIDs reserves the next block of producer IDs for a broker.
	AllocateProducerIDs(ctx context.Context, brokerID int32, brokerEpoch int64) (first int64, size int32, err error)
}

// Registration is what a broker registers: KRaft's BrokerRegistration.
type Registration struct {
	ID            int32
	IncarnationID uuid.UUID
	Listeners     []metadata.Listener
	Rack          string
	ClusterID     string
}

// channelWriter is the MetadataWriter over the controller channel.
type channelWriter struct {
	b  *Broker
	ch *ControllerChannel
}

// timeoutMs is what a request's timeout field says for ctx: the time left.
func timeoutMs(ctx context.Context) int32 {
	if dl, ok := ctx.Deadline(); ok {
		return int32(max(time.Until(dl).Milliseconds(), 1))
	}
	return 30000
}

// send sends req and, once answered, waits for this node's image to reach the change.
func (w *channelWriter) send(ctx context.Context, req kmsg.Request, barrier bool) (kmsg.Response, error) {
	resp, err := w.ch.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	if barrier {
		if err := w.sync(ctx); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// sync waits until this node's image holds every entry committed when it is called.
func (w *channelWriter) sync(ctx context.Context) error {
	if l := w.ch.local; l != nil && l.Active() {
		return nil // the local controller answers after its apply here
	}
	return w.b.awaitCommitted(ctx, w.ch)
}

// metadataTopic is the metadata log's name in DescribeQuorum.
const metadataTopic = "__cluster_metadata"

// codeErr is the error of a response's error code and message (nil for 0).
func codeErr(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	e := kerr.ErrorForCode(code)
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", e, *msg)
	}
	return e
}

// CreateTopics implements MetadataWriter.
func (w *channelWriter) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult {
	b := w.b
	res := make([]TopicResult, len(specs))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis, req.ValidateOnly = timeoutMs(ctx), validateOnly
	var at []int // spec index of each request topic
	im := b.Image()
	var adding int64
	// A change past Kafka's bound on records is the controller's to refuse whole.
	records := 0
	for _, s := range specs {
		records += 1 + max(int(s.Partitions), len(s.Assignment)) + len(s.Configs)
	}
	budget := records <= maxRecordsPerChange
	for i, s := range specs {
		// vltava.max.broker.partitions is this broker's bound; the controller places
		// over every broker, so it is checked here against the image (a bound, not
		// exact under concurrent changes).
		n := int64(s.Partitions)
		if n < 0 {
			n = int64(b.cfg.NumPartitions)
		}
		if len(s.Assignment) > 0 {
			n = int64(len(s.Assignment))
		}
		if err := b.checkPartitionBudget(im, adding, n); budget && err != nil {
			res[i].Err = err
			continue
		}
		adding += n
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = s.Name, s.Partitions, s.ReplicationFactor
		for p, replicas := range s.Assignment {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(p), replicas
			t.ReplicaAssignment = append(t.ReplicaAssignment, a)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			v := s.Configs[k]
			c.Name, c.Value = k, &v
			t.Configs = append(t.Configs, c)
		}
		req.Topics = append(req.Topics, t)
		at = append(at, i)
	}
	if len(req.Topics) == 0 {
		return res
	}
	r, err := w.send(ctx, req, !validateOnly)
	if err != nil {
		b.logger.Error("create topics: the change was not committed", "err", err)
		for _, i := range at {
			res[i].Err = err
		}
		return res
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	byName := map[string]*kmsg.CreateTopicsResponseTopic{}
	for k := range resp.Topics {
		byName[resp.Topics[k].Topic] = &resp.Topics[k]
	}
	for _, i := range at {
		s := specs[i]
		t := byName[s.Name]
		if t == nil {
			res[i].Err = fmt.Errorf("%w: the controller did not answer for topic %s", kerr.UnknownServerError, s.Name)
			continue
		}
		if err := codeErr(t.ErrorCode, t.ErrorMessage); err != nil {
			res[i].Err = err
			continue
		}
		cfgs := maps.Clone(s.Configs)
		if cfgs == nil {
			cfgs = map[string]string{}
		}
		res[i].Topic = &TopicDesc{Name: s.Name, ID: t.TopicID, Partitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor, Configs: cfgs}
		if !validateOnly {
			b.logger.Info("created topic", "topic", s.Name, "topic_id", base64URL(t.TopicID[:]), "partitions", t.NumPartitions,
				"replication_factor", t.ReplicationFactor)
		}
	}
	return res
}

// CreatePartitions implements MetadataWriter.
func (w *channelWriter) CreatePartitions(ctx context.Context, specs []PartitionsSpec, validateOnly bool) []error {
	b := w.b
	errs := make([]error, len(specs))
	im := b.Image()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = 3
	req.TimeoutMillis, req.ValidateOnly = timeoutMs(ctx), validateOnly
	var at []int
	var adding int64
	was := make([]int32, len(specs))
	for i, s := range specs {
		if t := im.Topic(s.Topic); t != nil && s.Count > t.NumPartitions() {
			was[i] = t.NumPartitions()
			more := int64(s.Count - t.NumPartitions())
			if err := b.checkPartitionBudget(im, adding, more); err != nil {
				errs[i] = err
				continue
			}
			adding += more
		}
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = s.Topic, s.Count
		for _, replicas := range s.Assignment {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = replicas
			t.Assignment = append(t.Assignment, a)
		}
		req.Topics = append(req.Topics, t)
		at = append(at, i)
	}
	if len(req.Topics) == 0 {
		return errs
	}
	r, err := w.send(ctx, req, !validateOnly)
	if err != nil {
		b.logger.Error("create partitions: the change was not committed", "err", err)
		for _, i := range at {
			errs[i] = err
		}
		return errs
	}
	resp := r.(*kmsg.CreatePartitionsResponse)
	byName := map[string]*kmsg.CreatePartitionsResponseTopic{}
	for k := range resp.Topics {
		byName[resp.Topics[k].Topic] = &resp.Topics[k]
	}
	for _, i := range at {
		s := specs[i]
		t := byName[s.Topic]
		if t == nil {
			errs[i] = fmt.Errorf("%w: the controller did not answer for topic %s", kerr.UnknownServerError, s.Topic)
			continue
		}
		errs[i] = codeErr(t.ErrorCode, t.ErrorMessage)
		if errs[i] == nil && !validateOnly {
			id := uuid.Nil
			if t := b.Image().Topic(s.Topic); t != nil {
				id = t.ID
			}
			b.logger.Info("created partitions", "topic", s.Topic, "topic_id", base64URL(id[:]), "partitions", s.Count, "was", was[i])
		}
	}
	return errs
}

// DeleteTopic implements MetadataWriter.
func (w *channelWriter) DeleteTopic(ctx context.Context, name string) (uuid.UUID, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.TimeoutMillis = timeoutMs(ctx)
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = &name
	req.Topics = append(req.Topics, t)
	r, err := w.send(ctx, req, true)
	if err != nil {
		return uuid.Nil, err
	}
	resp := r.(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 1 {
		return uuid.Nil, fmt.Errorf("%w: the controller answered %d topics for one", kerr.UnknownServerError, len(resp.Topics))
	}
	rt := resp.Topics[0]
	if err := codeErr(rt.ErrorCode, rt.ErrorMessage); err != nil {
		return uuid.Nil, err
	}
	w.b.logger.Info("deleted topic", "topic", name, "topic_id", base64URL(rt.TopicID[:]))
	return rt.TopicID, nil
}

// AlterTopicConfigs implements MetadataWriter: IncrementalAlterConfigs, or with replace
// the legacy AlterConfigs (every override not named is removed).
func (w *channelWriter) AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error {
	if replace {
		return w.alterConfigs(ctx, metadata.ResourceTopic, name, changes, validateOnly)
	}
	return w.incrementalAlterConfigs(ctx, metadata.ResourceTopic, name, changes, validateOnly)
}

// AlterBrokerConfigs implements MetadataWriter: the BROKER resource name, "" for the
// cluster-wide dynamic defaults or a broker ID for that broker's own.
func (w *channelWriter) AlterBrokerConfigs(ctx context.Context, name string, changes []ConfigChange, validateOnly bool) error {
	return w.incrementalAlterConfigs(ctx, metadata.ResourceBroker, name, changes, validateOnly)
}

func (w *channelWriter) incrementalAlterConfigs(ctx context.Context, rtype int8, name string, changes []ConfigChange, validateOnly bool) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = 1
	req.ValidateOnly = validateOnly
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceType(rtype), name
	for _, c := range changes {
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = c.Key, c.Value
		rc.Op = kmsg.IncrementalAlterConfigOpSet
		if c.Value == nil {
			rc.Op = kmsg.IncrementalAlterConfigOpDelete
		}
		res.Configs = append(res.Configs, rc)
	}
	req.Resources = append(req.Resources, res)
	r, err := w.send(ctx, req, !validateOnly)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.IncrementalAlterConfigsResponse)
	if len(resp.Resources) != 1 {
		return fmt.Errorf("%w: the controller answered %d resources for one", kerr.UnknownServerError, len(resp.Resources))
	}
	return codeErr(resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage)
}

func (w *channelWriter) alterConfigs(ctx context.Context, rtype int8, name string, changes []ConfigChange, validateOnly bool) error {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version = 2
	req.ValidateOnly = validateOnly
	res := kmsg.NewAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceType(rtype), name
	for _, c := range changes {
		if c.Value == nil {
			continue // replaced: not named is removed
		}
		rc := kmsg.NewAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = c.Key, c.Value
		res.Configs = append(res.Configs, rc)
	}
	req.Resources = append(req.Resources, res)
	r, err := w.send(ctx, req, !validateOnly)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.AlterConfigsResponse)
	if len(resp.Resources) != 1 {
		return fmt.Errorf("%w: the controller answered %d resources for one", kerr.UnknownServerError, len(resp.Resources))
	}
	return codeErr(resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage)
}

// AllocateProducerIDs implements MetadataWriter.
func (w *channelWriter) AllocateProducerIDs(ctx context.Context, brokerID int32, brokerEpoch int64) (int64, int32, error) {
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = brokerID, brokerEpoch
	r, err := w.ch.Send(ctx, req) // the block is this broker's alone: no barrier needed
	if err != nil {
		return -1, 0, err
	}
	resp := r.(*kmsg.AllocateProducerIDsResponse)
	if err := codeErr(resp.ErrorCode, nil); err != nil {
		return -1, 0, err
	}
	return resp.ProducerIDStart, resp.ProducerIDLen, nil
}

// errNotRegistered answers a change that needs this broker's epoch before it has one:
// retriable for the client.
var errNotRegistered = fmt.Errorf("%w: this broker is not registered with the controller yet", kerr.CoordinatorNotAvailable)
