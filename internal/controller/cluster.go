package controller

// Brokers: BrokerRegistration v0-4, BrokerHeartbeat v0-2 and AllocateProducerIds v0, as
// Kafka's ClusterControlManager, ReplicationControlManager and ProducerIdControlManager
// decide them, and the fencing of brokers whose session expired.
//
// Registration: the cluster ID must be the metadata's (INCONSISTENT_CLUSTER_ID); the
// broker's features must accept the finalized levels (UNSUPPORTED_VERSION; a broker that
// names no metadata.version is taken to support level 1 only, as Kafka takes it to
// support the first KRaft version); its listeners and log directories must make sense
// (INVALID_REGISTRATION). A registration with the incarnation ID already registered is
// the same process asking again and gets the same epoch, with nothing written. A new
// incarnation is refused while the old one's session is live (DUPLICATE_BROKER_
// REGISTRATION), else it is registered fenced with a new epoch, the index of its entry;
// if the old one was still unfenced (its session expired but the fencing had not been
// written yet) the same entry moves the old incarnation's leaderships and ISR places
// away first, so no partition is ever led by a fenced broker.

import (
	"math"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// decide decides one request of a loop API on the speculative image.
func (c *core) decide(req kmsg.Request) decision {
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		return c.registerBroker(r)
	case *kmsg.BrokerHeartbeatRequest:
		return c.heartbeat(r)
	case *kmsg.UnregisterBrokerRequest:
		return c.unregisterBroker(r)
	case *kmsg.AllocateProducerIDsRequest:
		return c.allocateProducerIDs(r)
	case *kmsg.CreateTopicsRequest:
		return c.createTopics(r)
	case *kmsg.DeleteTopicsRequest:
		return c.deleteTopics(r)
	case *kmsg.CreatePartitionsRequest:
		return c.createPartitions(r)
	case *kmsg.AlterConfigsRequest:
		return c.alterConfigs(r)
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.incrementalAlterConfigs(r)
	case *kmsg.AlterPartitionRequest:
		return c.alterPartition(r)
	case *kmsg.AlterPartitionAssignmentsRequest, *kmsg.ListPartitionReassignmentsRequest:
		return c.decideReassignment(r)
	case *kmsg.ElectLeadersRequest:
		return c.electLeaders(r)
	}
	return failed(req, errorf(kerr.UnsupportedVersion, "API %d is not a controller API", req.Key()))
}

// failed is a decision that changes nothing and answers err.
func failed(req kmsg.Request, err error) decision {
	return decision{finish: func(uint64) kmsg.Response { return errorResponse(req, err) }}
}

// electionSettings returns the settings elections are decided with.
func (c *core) electionSettings() electionSettings {
	return electionSettings{broker: c.cfg.Broker.WithDynamicDefaults(c.spec.BrokerConfigs("")), elr: c.spec.FeatureLevel(ELRFeature) >= 1}
}

func (c *core) registerBroker(r *kmsg.BrokerRegistrationRequest) decision {
	im := c.spec
	if err := c.checkRegistration(r); err != nil {
		return failed(r, err)
	}
	id, inc := r.BrokerID, uuid.UUID(r.IncarnationID)
	existing := im.Broker(id)
	if existing != nil && existing.IncarnationID == inc {
		epoch := existing.Epoch
		c.logger.Info("controller: broker registered again by the same incarnation", "broker", id, "epoch", epoch)
		return decision{finish: func(uint64) kmsg.Response {
			resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
			resp.BrokerEpoch = epoch
			return resp
		}}
	}
	if existing != nil && c.sessions.validSession(existing, c.now) {
		return failed(r, errorf(kerr.DuplicateBrokerRegistration, "Another broker is registered with that broker id."))
	}
	if existing != nil && !existing.Fenced {
		// The old incarnation's leaderships and ISR places move first, in writes of
		// their own (there may be more than one entry holds).
		c.submitSplit(generateUpdates(im, brokerEvent{remove: id, add: metadata.NoLeader}, c.electionSettings()), func(uint64, error) {})
	}
	if existing != nil && (r.Version < 3 || r.PreviousBrokerEpoch != existing.Epoch) {
		// KIP-966: an incarnation that does not name the epoch it shut down cleanly at
		// may have lost unsynced records: it leaves every ISR and ELR, so only a replica
		// known to hold every committed record leads without an unclean election.
		c.logger.Info("controller: broker restarted after an unclean shutdown", "broker", id,
			"previous_epoch", r.PreviousBrokerEpoch, "registered_epoch", existing.Epoch)
		c.submitSplit(generateUpdates(c.spec, brokerUncleanShutdown(id), c.electionSettings()), func(uint64, error) {})
	}
	epoch := int64(c.nextIndex())
	rec := &metadata.RegisterBrokerRecord{BrokerID: id, IncarnationID: inc, BrokerEpoch: epoch, Fenced: true}
	if r.Rack != nil {
		rec.Rack = *r.Rack
	}
	for _, l := range r.Listeners {
		rec.Listeners = append(rec.Listeners, metadata.Listener{Name: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol})
	}
	for _, d := range r.LogDirs {
		rec.LogDirs = append(rec.LogDirs, uuid.UUID(d))
	}
	rs := []metadata.Record{rec}
	c.sessions.register(id, c.now)
	ss := c.sessions.m[id]
	c.logger.Info("controller: registering broker", "broker", id, "incarnation", inc, "epoch", epoch, "replaces", existing != nil)
	return decision{records: rs, finish: func(index uint64) kmsg.Response {
		if c.sessions != nil && c.sessions.m[id] == ss {
			c.sessions.registered[id] = index
		}
		resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
		resp.BrokerEpoch = epoch
		return resp
	}}
}

// checkRegistration checks what a registration asks against the image.
func (c *core) checkRegistration(r *kmsg.BrokerRegistrationRequest) error {
	im := c.spec
	if r.ClusterID != im.ClusterID() {
		return errorf(kerr.InconsistentClusterID, "Expected cluster ID %s, but got cluster ID %s", im.ClusterID(), r.ClusterID)
	}
	if r.BrokerID < 0 {
		return errorf(kerr.InvalidRegistration, "Invalid broker ID %d", r.BrokerID)
	}
	if r.IsMigratingZkBroker {
		return errorf(kerr.BrokerIDNotRegistered, "Controller does not support registering ZK brokers.")
	}
	if r.Rack != nil && len(*r.Rack) > 255 {
		return errorf(kerr.InvalidRegistration, "The rack name is longer than 255 bytes")
	}
	if len(r.Listeners) > 64 {
		return errorf(kerr.InvalidRegistration, "%d listeners (at most 64)", len(r.Listeners))
	}
	names := map[string]bool{}
	for _, l := range r.Listeners {
		switch {
		case l.Name == "" || l.Host == "" || l.Port == 0 || len(l.Name) > 255 || len(l.Host) > 255:
			return errorf(kerr.InvalidRegistration, "Invalid listener %q at %q port %d", l.Name, l.Host, l.Port)
		case l.SecurityProtocol < metadata.ProtocolPlaintext || l.SecurityProtocol > metadata.ProtocolSASLSSL:
			return errorf(kerr.InvalidRegistration, "Listener %s has unknown security protocol %d", l.Name, l.SecurityProtocol)
		case names[l.Name]:
			return errorf(kerr.InvalidRegistration, "Listener %s appears more than once", l.Name)
		}
		names[l.Name] = true
	}
	if err := checkFeatures(im, r); err != nil {
		return err
	}
	if len(r.LogDirs) > 256 {
		return errorf(kerr.InvalidRegistration, "%d log directories (at most 256)", len(r.LogDirs))
	}
	dirs := map[uuid.UUID]bool{}
	for _, d := range r.LogDirs {
		dir := uuid.UUID(d)
		if dirs[dir] {
			return errorf(kerr.InvalidRegistration, "Duplicate directory ID in request")
		}
		dirs[dir] = true
		if dir == uuid.Nil {
			return errorf(kerr.InvalidRegistration, "Reserved directory ID in request")
		}
	}
	if len(dirs) > 0 {
		for b := range im.Brokers() {
			if b.ID == r.BrokerID {
				continue
			}
			for _, d := range b.LogDirs {
				if dirs[d] {
					return errorf(kerr.InvalidRegistration, "Broker %d is already registered with directory %s", b.ID, d)
				}
			}
		}
	}
	return nil
}

// checkFeatures checks a broker's supported feature ranges against the finalized
// levels (ClusterControlManager.processRegistrationFeature).
func checkFeatures(im *metadata.Image, r *kmsg.BrokerRegistrationRequest) error {
	check := func(name string, lo, hi int16) error {
		level := im.FeatureLevel(name)
		if name == MetadataVersionFeature && level == 0 {
			level = DefaultMetadataVersion
		}
		if level < lo || level > hi {
			return errorf(kerr.UnsupportedVersion, "Unable to register because the broker does not support finalized version %d of %s. The broker wants a version between %d and %d, inclusive.",
				level, name, lo, hi)
		}
		return nil
	}
	named := map[string]bool{}
	for _, f := range r.Features {
		if err := check(f.Name, f.MinSupportedVersion, f.MaxSupportedVersion); err != nil {
			return err
		}
		named[f.Name] = true
	}
	if !named[MetadataVersionFeature] {
		if err := check(MetadataVersionFeature, DefaultMetadataVersion, DefaultMetadataVersion); err != nil {
			return err
		}
	}
	for name, level := range im.Features() {
		if !named[name] && name != MetadataVersionFeature && level != 0 {
			return check(name, 0, 0)
		}
	}
	return nil
}

// fenceRecords fences b: its leaderships and ISR places go first, the fencing last
// (Kafka's handleBrokerFenced), so that should they take several entries no entry leaves
// a partition led by a fenced broker.
func (c *core) fenceRecords(b *metadata.Broker) []metadata.Record {
	rs := generateUpdates(c.spec, brokerEvent{remove: b.ID, add: metadata.NoLeader}, c.electionSettings())
	return append(rs, &metadata.BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, Fenced: metadata.FenceFence})
}

// unfenceRecords unfences b, then gives it the partitions that have no leader and may
// have it (handleBrokerUnfenced).
func (c *core) unfenceRecords(b *metadata.Broker) []metadata.Record {
	rs := []metadata.Record{&metadata.BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, Fenced: metadata.FenceUnfence}}
	return append(rs, generateUpdates(c.spec, brokerEvent{remove: metadata.NoLeader, add: b.ID}, c.electionSettings())...)
}

// controlledShutdownRecords moves b's leaderships and ISR places to other brokers and
// marks it in controlled shutdown (handleBrokerInControlledShutdown). The mark comes
// last, as the fencing's does, so that should the records take several entries no entry
// leaves a partition led by a broker that is not active.
func (c *core) controlledShutdownRecords(b *metadata.Broker) []metadata.Record {
	rs := generateUpdates(c.spec, brokerEvent{remove: b.ID, add: metadata.NoLeader}, c.electionSettings())
	if !b.InControlledShutdown {
		rs = append(rs, &metadata.BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, InControlledShutdown: true})
	}
	return rs
}

// unregisterBroker removes a broker's registration (kafka-cluster.sh unregister, for a
// broker gone for good): its leaderships and ISR places go first, as at a fencing, then
// the registration (Kafka's handleBrokerUnregistered). As in Kafka, the broker need not be
// stopped: a running one finds its registration gone at its next heartbeat and registers
// again. Its partitions keep it as a replica (offline) until they are reassigned.
func (c *core) unregisterBroker(r *kmsg.UnregisterBrokerRequest) decision {
	b := c.spec.Broker(r.BrokerID)
	if b == nil {
		return failed(r, errorf(kerr.BrokerIDNotRegistered, "Broker ID %d is not currently registered", r.BrokerID))
	}
	c.logger.Info("controller: unregistering broker", "broker", b.ID, "epoch", b.Epoch, "fenced", b.Fenced)
	rs := generateUpdates(c.spec, brokerEvent{remove: b.ID, add: metadata.NoLeader}, c.electionSettings())
	rs = append(rs, &metadata.UnregisterBrokerRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch})
	return decision{records: rs, split: true, finish: func(uint64) kmsg.Response {
		c.sessions.unregister(b.ID)
		return r.ResponseKind()
	}}
}

// staleEpoch checks that broker id is registered with epoch (STALE_BROKER_EPOCH).
func staleEpoch(im *metadata.Image, id int32, epoch int64) (*metadata.Broker, error) {
	b := im.Broker(id)
	switch {
	case b == nil:
		return nil, errorf(kerr.StaleBrokerEpoch, "No broker registration found for broker id %d", id)
	case b.Epoch != epoch:
		return nil, errorf(kerr.StaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d", b.Epoch, epoch)
	}
	return b, nil
}

func (c *core) heartbeat(r *kmsg.BrokerHeartbeatRequest) decision {
	b, err := staleEpoch(c.spec, r.BrokerID, r.BrokerEpoch)
	if err != nil {
		return failed(r, err)
	}
	ss := c.sessions.get(b.ID, c.now)
	in := heartbeatInput{current: currentState(b, ss), metadataOffset: r.CurrentMetadataOffset,
		wantFence: r.WantFence, wantShutDown: r.WantShutdown, registrationOffset: c.sessions.registrationOffset(b),
		shutdownOffset: ss.shutdownOffset}
	if in.current == stateControlledShutdown || (in.current == stateUnfenced && r.WantShutdown) {
		in.leads = leadsAny(c.spec, b.ID)
		in.lowestActiveOffset = c.sessions.lowestActiveOffset(c.spec, c.now)
	}
	next := nextBrokerState(in)
	var rs []metadata.Record
	if next != in.current {
		c.logger.Info("controller: broker changes state", "broker", b.ID, "from", in.current, "to", next,
			"metadata_offset", r.CurrentMetadataOffset, "registration_offset", in.registrationOffset)
		switch next {
		case stateFenced, stateShutdownNow:
			if !b.Fenced {
				rs = c.fenceRecords(b)
			}
		case stateUnfenced:
			rs = c.unfenceRecords(b)
		case stateControlledShutdown:
			rs = c.controlledShutdownRecords(b)
			ss.shutdownOffset = 0
		}
	}
	ss.lastContact, ss.metadataOffset, ss.heard = c.now, r.CurrentMetadataOffset, true
	if next.fenced() {
		ss.shutdownOffset = -1
	}
	caughtUp := r.CurrentMetadataOffset >= in.registrationOffset
	return decision{records: rs, split: true, finish: func(index uint64) kmsg.Response {
		if next == stateControlledShutdown && ss.shutdownOffset == 0 {
			ss.shutdownOffset = int64(max(index, 1))
		}
		resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = caughtUp, next.fenced(), next == stateShutdownNow
		return resp
	}}
}

func (c *core) allocateProducerIDs(r *kmsg.AllocateProducerIDsRequest) decision {
	if _, err := staleEpoch(c.spec, r.BrokerID, r.BrokerEpoch); err != nil {
		return failed(r, err)
	}
	first := c.spec.NextProducerID()
	if first > math.MaxInt64-ProducerIDBlockSize {
		return failed(r, errorf(kerr.UnknownServerError, "Exhausted all producerIds as the next block's end producerId "+
			"has exceeded the int64 type limit"))
	}
	rec := &metadata.ProducerIDsRecord{BrokerID: r.BrokerID, BrokerEpoch: r.BrokerEpoch, FirstID: first, Size: ProducerIDBlockSize}
	return decision{records: []metadata.Record{rec}, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
		resp.ProducerIDStart, resp.ProducerIDLen = first, ProducerIDBlockSize
		return resp
	}}
}
