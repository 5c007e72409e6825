package broker

// This node's broker registration. A single node is its own controller: once its
// listeners are bound it writes its RegisterBroker record itself, as KRaft's controller
// would on its BrokerRegistration request, with a new incarnation ID and a broker epoch
// that is the record's offset in the metadata log (as in KRaft), unfenced at once (there
// is no other controller to catch up with). The image is then the cluster's image, and
// Metadata and DescribeCluster answer from it.

import (
	"fmt"
	"net"
	"strconv"

	"github.com/vltava/vltava/internal/metadata"
)

// register writes this node's registration with the advertised host:port of each
// listener.
func (b *Broker) register(addrs []string) error {
	ls := make([]metadata.Listener, 0, len(addrs))
	for i, a := range addrs {
		host, ps, err := net.SplitHostPort(a)
		port, perr := strconv.ParseUint(ps, 10, 16)
		if err != nil || perr != nil || port == 0 || host == "" {
			return fmt.Errorf("register broker %d: advertised listener %q is not host:port", b.cfg.NodeID, a)
		}
		name := "PLAINTEXT"
		if i < len(b.cfg.ListenerNames) {
			name = b.cfg.ListenerNames[i]
		}
		ls = append(ls, metadata.Listener{Name: name, Host: host, Port: uint16(port), SecurityProtocol: metadata.ProtocolPlaintext})
	}
	_, err := b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
		return []metadata.Record{&metadata.RegisterBrokerRecord{BrokerID: b.cfg.NodeID, IncarnationID: b.incarnation,
			BrokerEpoch: int64(im.Offset().Index + 1), Listeners: ls, Rack: b.cfg.Values["broker.rack"]}}, nil
	})
	if err != nil {
		return fmt.Errorf("register broker %d: %w", b.cfg.NodeID, err)
	}
	b.logger.Info("registered broker", "node.id", b.cfg.NodeID, "epoch", b.epoch(b.meta.Image()), "listeners", addrs)
	return nil
}

// epoch returns this node's broker epoch in im, or -1 before it registered.
func (b *Broker) epoch(im *metadata.Image) int64 {
	if r := im.Broker(b.cfg.NodeID); r != nil && r.IncarnationID == b.incarnation {
		return r.Epoch
	}
	return -1
}
