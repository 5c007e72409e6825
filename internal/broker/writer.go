package broker

// The metadata writer: where a metadata change asked of this node (a topic created, a
// config altered, a block of producer IDs, this broker's registration) becomes records
// in the replicated metadata log. It is the one seam between the node and whoever
// decides metadata changes:
//
//   - today, localWriter: the broker computes the records itself against the image
//     (create.go, topics.go, register.go) and proposes them through the quorum, which
//     only its leader accepts; on any other node every change answers NOT_CONTROLLER
//     (quorum.NotLeaderError), and clients retry on the controller Metadata names;
//   - next, the active controller (internal/controller) implements MetadataWriter, and
//     a node that is not the active controller forwards to it.
//
// Every method returns once the change is committed and applied to this node's image (or
// has failed); hosting what it created is the publisher's work (publish.go).

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/metadata"
)

// MetadataWriter commits metadata changes.
type MetadataWriter interface {
	CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult
	CreatePartitions(ctx context.Context, specs []PartitionsSpec, validateOnly bool) []error
	DeleteTopic(ctx context.Context, name string) (uuid.UUID, error)
	AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error
	AlterBrokerConfigs(ctx context.Context, changes []ConfigChange, validateOnly bool) error
	// AllocateProducerIDs reserves the next block of producer IDs for a broker.
	AllocateProducerIDs(ctx context.Context, brokerID int32, brokerEpoch int64) (first int64, size int32, err error)
	// RegisterBroker records a broker's registration and returns its broker epoch.
	RegisterBroker(ctx context.Context, reg Registration) (int64, error)
}

// Registration is what a broker registers: KRaft's BrokerRegistration.
type Registration struct {
	ID            int32
	IncarnationID uuid.UUID
	Listeners     []metadata.Listener
	Rack          string
	ClusterID     string
}

// proposer is the part of quorum.Node the local writer uses.
type proposer interface {
	Propose(ctx context.Context, data []byte) (uint64, error)
}

// localWriter is the broker's own record computation, proposed through the quorum. mu
// serialises its changes: each is computed against the image that includes every change
// before it (Propose returns once the entry is applied here), as the single node's store
// did under its lock, so two changes never both pass a check only one may pass.
type localWriter struct {
	b     *Broker
	log   proposer
	image func() *metadata.Image

	mu sync.Mutex
}

// write computes records against the latest image with build, checks that they apply,
// proposes them as one entry and returns the image after it. No records: nothing is
// proposed and the current image is returned.
func (w *localWriter) write(ctx context.Context, build func(im *metadata.Image) ([]metadata.Record, error)) (*metadata.Image, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	im := w.image()
	rs, err := build(im)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return im, nil
	}
	// Refused here, the change answers its error; refused at apply, it would be skipped
	// on every node with an ERROR line (metadata.StateMachine).
	if _, _, err := im.Apply(metadata.Offset{Index: im.Offset().Index + 1, Term: im.Offset().Term}, rs); err != nil {
		return nil, err
	}
	data, err := metadata.AppendBatch(nil, rs)
	if err != nil {
		return nil, err
	}
	// A quorum.NotLeaderError (this node does not lead: NOT_CONTROLLER), a dropped
	// proposal, a timeout or a storage failure; the handler's error table maps them.
	if _, err := w.log.Propose(ctx, data); err != nil {
		return nil, err
	}
	return w.image(), nil
}
