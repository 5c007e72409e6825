package broker

// This node's broker registration. Once its listeners are bound the node registers
// through the metadata writer, with its advertised listeners, broker.rack and a new
// incarnation ID, as KRaft's broker does with its BrokerRegistration request. The broker
// epoch is at or after the registration's offset in the metadata log (KRaft: exactly
// it), so it grows with every registration. Until the controller decides fencing,
// brokers register unfenced.
//
// Only the quorum's leader can commit it today (writer.go): a node that does not lead
// retries whenever the leadership changes, and is registered once it leads or once
// forwarding to the active controller exists. The image's cluster ID is committed with
// the first registration.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

// SetAdvertised records the host:port clients should use, once the listeners are bound,
// and registers this node with them. A failure that retrying may cure (this node does
// not lead the quorum, the change timed out) leaves a retry running until it succeeds;
// others are returned.
func (b *Broker) SetAdvertised(addrs []string) error {
	b.advertised.Store(&addrs)
	b.observeAt(addrs)
	if !b.cfg.IsBroker() {
		return nil
	}
	reg, err := b.registration(addrs)
	if err != nil {
		return err
	}
	err = b.registerOnce(reg)
	if err == nil || !retriable(err) {
		return err
	}
	b.logger.Info("broker registration waits for the quorum's leader", "node.id", b.cfg.NodeID, "reason", err)
	b.wg.Add(1)
	go b.registerUntilDone(reg)
	return nil
}

// retriable reports whether a change that failed with err may succeed later unchanged.
func retriable(err error) bool {
	return errors.Is(err, quorum.ErrNotLeader) || errors.Is(err, quorum.ErrProposalDropped) ||
		errors.Is(err, context.DeadlineExceeded)
}

// registration builds this node's registration from its advertised host:port per
// listener.
func (b *Broker) registration(addrs []string) (Registration, error) {
	ls := make([]metadata.Listener, 0, len(addrs))
	for i, a := range addrs {
		host, ps, err := net.SplitHostPort(a)
		port, perr := strconv.ParseUint(ps, 10, 16)
		if err != nil || perr != nil || port == 0 || host == "" {
			return Registration{}, fmt.Errorf("register broker %d: advertised listener %q is not host:port", b.cfg.NodeID, a)
		}
		name := "PLAINTEXT"
		if i < len(b.cfg.ListenerNames) {
			name = b.cfg.ListenerNames[i]
		}
		ls = append(ls, metadata.Listener{Name: name, Host: host, Port: uint16(port), SecurityProtocol: metadata.ProtocolPlaintext})
	}
	rack := b.cfg.BrokerRack
	if rack == "" {
		rack = b.cfg.Values["broker.rack"]
	}
	return Registration{ID: b.cfg.NodeID, IncarnationID: b.incarnation, Listeners: ls, Rack: rack, ClusterID: b.clusterID}, nil
}

func (b *Broker) registerOnce(reg Registration) error {
	ctx, cancel := b.changeContext()
	defer cancel()
	epoch, err := b.writer.RegisterBroker(ctx, reg)
	if err != nil {
		return fmt.Errorf("register broker %d: %w", reg.ID, err)
	}
	addrs := b.Advertised()
	b.logger.Info("registered broker", "node.id", reg.ID, "epoch", epoch, "listeners", addrs)
	return nil
}

// registerUntilDone retries the registration as the quorum's leadership changes (and
// every broker.heartbeat.interval.ms) until it succeeds, fails for good or Close.
func (b *Broker) registerUntilDone(reg Registration) {
	defer b.wg.Done()
	interval := b.cfg.BrokerHeartbeatInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	for {
		_, changed := b.quorum.Leader()
		t := time.NewTimer(interval)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-changed:
			t.Stop()
		case <-t.C:
		}
		err := b.registerOnce(reg)
		if err == nil {
			return
		}
		if !retriable(err) {
			b.logger.Error("broker registration failed", "node.id", reg.ID, "err", err)
			return
		}
	}
}

// RegisterBroker implements MetadataWriter.
func (w *localWriter) RegisterBroker(ctx context.Context, reg Registration) (int64, error) {
	var epoch int64
	_, err := w.write(ctx, func(im *metadata.Image) ([]metadata.Record, error) {
		var rs []metadata.Record
		if im.ClusterID() == "" {
			rs = append(rs, &metadata.ClusterIDRecord{ID: reg.ClusterID})
		} else if im.ClusterID() != reg.ClusterID {
			return nil, fmt.Errorf("broker %d is of cluster %s, this is cluster %s", reg.ID, reg.ClusterID, im.ClusterID())
		}
		epoch = int64(im.Offset().Index + 1)
		return append(rs, &metadata.RegisterBrokerRecord{BrokerID: reg.ID, IncarnationID: reg.IncarnationID,
			BrokerEpoch: epoch, Listeners: reg.Listeners, Rack: reg.Rack}), nil
	})
	return epoch, recordError(err)
}

// AllocateProducerIDs implements MetadataWriter: the cluster's next free block of 1000
// (Kafka's block size).
func (w *localWriter) AllocateProducerIDs(ctx context.Context, brokerID int32, brokerEpoch int64) (int64, int32, error) {
	const block = 1000
	var first int64
	_, err := w.write(ctx, func(im *metadata.Image) ([]metadata.Record, error) {
		first = im.NextProducerID()
		return []metadata.Record{&metadata.ProducerIDsRecord{BrokerID: brokerID, BrokerEpoch: brokerEpoch, FirstID: first, Size: block}}, nil
	})
	if err != nil {
		return -1, 0, recordError(err)
	}
	return first, block, nil
}

// epoch returns this node's broker epoch in im, or -1 before it registered.
func (b *Broker) epoch(im *metadata.Image) int64 {
	if r := im.Broker(b.cfg.NodeID); r != nil && r.IncarnationID == b.incarnation {
		return r.Epoch
	}
	return -1
}
