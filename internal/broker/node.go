package broker

// The node's identity and its metadata log, opened before anything is hosted:
//
//  1. meta.properties in every log dir and in metadata.log.dir (internal/metaprops) must
//     name this node and one cluster, and cluster.id if it is set; a dir of another node
//     or cluster stops the start.
//  2. The cluster ID: cluster.id if set, else the one the dirs hold, else, on the upgrade
//     of a data dir written before the quorum, the one in its metadata, else a new one
//     (metaprops.NewClusterID: random for a quorum of one, derived from the voters for a
//     static quorum, so nodes started from empty dirs agree). Dirs without the file get
//     it now, before the metadata log is created, so a crash cannot leave a log of one
//     cluster in a dir that a restart would give another.
//  3. The metadata log is the quorum (internal/quorum) in metadata.log.dir, with the
//     metadata image as its state machine. A data dir written before the quorum (the
//     single node's metadata.log in __cluster_metadata-0, binary or the older JSON) and
//     without a quorum log is upgraded: its whole image becomes the bootstrap snapshot of
//     a quorum of one (only a quorum of one: the voters of a larger one must all start
//     from the same snapshot), and once the quorum's log is durable the old file is moved
//     aside, never deleted (metadata.log.pre-quorum, beside __cluster_metadata-0).

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/controller"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metaprops"
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/vfs"
)

// legacyMetadataFile is the single node's metadata log before the quorum, in
// __cluster_metadata-0, and movedLegacyMetadata what it is renamed to once upgraded.
const (
	legacyMetadataFile  = "metadata.log"
	movedLegacyMetadata = "metadata.log.pre-quorum"
)

// legacyMetadata is a data dir's metadata from before the quorum.
type legacyMetadata struct {
	path  string
	image *metadata.Image
}

// findLegacyMetadata returns the pre-quorum metadata of the metadata log dir, or nil if
// there is none to upgrade (none, or the quorum's log exists already).
func findLegacyMetadata(fsys vfs.FS, cfg config.Broker, logger *slog.Logger) (*legacyMetadata, error) {
	dir := filepath.Join(cfg.MetadataLogDir, quorum.DirName)
	path := filepath.Join(dir, legacyMetadataFile)
	if _, err := fsys.Stat(path); err != nil {
		return nil, nil
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, n := range names {
		if filepath.Ext(n.Name()) == ".wal" {
			// The quorum's log exists: the upgrade happened and the old file was not moved
			// aside yet (a crash in between). The quorum's log is the truth.
			return &legacyMetadata{path: path}, nil
		}
	}
	store, err := metadata.Open(fsys, dir, metadata.Options{Logger: logger, NodeID: cfg.NodeID})
	if err != nil {
		return nil, fmt.Errorf("read the metadata to upgrade: %w", err)
	}
	im := store.Image()
	if err := store.Close(); err != nil {
		return nil, err
	}
	return &legacyMetadata{path: path, image: im}, nil
}

// moveAside renames the upgraded file out of the quorum's directory.
func (l *legacyMetadata) moveAside(fsys vfs.FS, logger *slog.Logger) error {
	to := filepath.Join(filepath.Dir(filepath.Dir(l.path)), movedLegacyMetadata)
	if err := fsys.Rename(l.path, to); err != nil {
		return fmt.Errorf("move the upgraded metadata log aside: %w", err)
	}
	if err := errors.Join(fsys.SyncDir(filepath.Dir(l.path)), fsys.SyncDir(filepath.Dir(to))); err != nil {
		return fmt.Errorf("move the upgraded metadata log aside: %w", err)
	}
	logger.Info("metadata log: the metadata kept before the quorum is now the quorum's first snapshot; the old file is kept, moved aside (delete it once you no longer want to downgrade)",
		"from", l.path, "to", to)
	return nil
}

// resolveIdentity checks the dirs' meta.properties and returns the cluster ID, writing
// meta.properties where it is missing.
func resolveIdentity(fsys vfs.FS, cfg config.Broker, legacy *legacyMetadata, logger *slog.Logger) (string, error) {
	dirs := metaprops.Load(fsys, metaprops.Dirs(cfg))
	found, err := metaprops.Check(dirs, cfg.NodeID, cfg.ClusterID)
	if err != nil {
		return "", err
	}
	id := cfg.ClusterID
	if id == "" {
		id = found
	}
	if legacy != nil && legacy.image != nil {
		if lid := legacy.image.ClusterID(); lid != "" {
			if id != "" && id != lid {
				return "", fmt.Errorf("the metadata in %s belongs to cluster %s, but cluster.id or meta.properties says %s: refusing to start", legacy.path, lid, id)
			}
			id = lid
		}
	}
	if id == "" {
		id = metaprops.NewClusterID(cfg)
		logger.Info("new cluster", "cluster.id", id, "voters", len(cfg.QuorumVoters()))
	}
	if err := metaprops.CheckClusterID(id); err != nil {
		return "", fmt.Errorf("cluster.id: %w", err)
	}
	written, err := metaprops.Complete(fsys, dirs, id, cfg.NodeID)
	if err != nil {
		return "", err
	}
	if len(written) > 0 {
		logger.Info("wrote meta.properties", "dirs", written, "cluster.id", id, "node.id", cfg.NodeID)
	}
	return id, nil
}

// QuorumConfig is the quorum member's configuration from the broker's: Kafka's
// controller.quorum.* and metadata.log.* keys and Vltava's vltava.quorum.* bounds.
func QuorumConfig(cfg config.Broker, clusterID string) quorum.Config {
	ms := func(key string) time.Duration {
		n, _ := strconv.ParseInt(cfg.Values[key], 10, 64)
		return time.Duration(n) * time.Millisecond
	}
	num := func(key string) int64 {
		n, _ := strconv.ParseInt(cfg.Values[key], 10, 64)
		return n
	}
	voters := map[uint64]string{}
	for id, addr := range cfg.QuorumVoters() {
		voters[uint64(id)] = addr
	}
	return quorum.Config{
		NodeID:                 uint64(cfg.NodeID),
		ClusterID:              clusterID,
		Voters:                 voters,
		Observer:               !cfg.IsController(),
		ObserverTimeout:        cfg.BrokerSessionTimeout,
		ElectionTimeout:        ms("controller.quorum.election.timeout.ms"),
		FetchTimeout:           ms("controller.quorum.fetch.timeout.ms"),
		TickInterval:           ms("vltava.quorum.tick.ms"),
		SnapshotMaxBytes:       num("metadata.log.max.record.bytes.between.snapshots"),
		SnapshotInterval:       ms("metadata.log.max.snapshot.interval.ms"),
		SnapshotCatchUpEntries: uint64(num("vltava.quorum.snapshot.catchup.entries")),
		MaxEntryBytes:          int(num("vltava.quorum.max.entry.bytes")),
		MaxFrameBytes:          int(num("vltava.quorum.max.frame.bytes")),
		MaxUncommittedBytes:    uint64(num("vltava.quorum.max.uncommitted.bytes")),
		MaxPendingProposals:    int(num("vltava.quorum.max.pending.proposals")),
		SendQueueMessages:      int(num("vltava.quorum.send.queue.messages")),
		ReceiveBufferBytes:     int(num("vltava.quorum.receive.buffer.bytes")),
		RetryBackoff:           ms("controller.quorum.retry.backoff.ms"),
		RequestTimeout:         ms("controller.quorum.request.timeout.ms"),
	}
}

// bootstrapState returns the snapshot bytes a quorum of one starts from on an upgrade:
// the old image at the quorum's bootstrap position (index 1, term 1).
func bootstrapState(cfg config.Broker, legacy *legacyMetadata) ([]byte, error) {
	if legacy == nil || legacy.image == nil {
		return nil, nil
	}
	if voters := cfg.QuorumVoters(); len(voters) != 1 {
		return nil, fmt.Errorf("%s holds the metadata of a single node from before the metadata quorum: it can only be upgraded as a quorum of one (start it without controller.quorum.voters, or with itself alone), which can then grow (add voters); refusing to start it as one of %d voters", legacy.path, len(voters))
	}
	return metadata.AppendSnapshot(nil, legacy.image.WithOffset(metadata.Offset{Index: 1, Term: 1}))
}

// openController starts this node's controller (process.roles with controller) over its
// quorum member, the controller channel and the metadata writer over it. The controller
// must be the only writer of the metadata log.
func (b *Broker) openController(opts Options) error {
	cfg := b.cfg
	if cfg.IsController() {
		ctl, err := controller.New(controller.ConfigFor(cfg, b.clusterID), b.quorum, b.sm.Image, opts.Clock, b.logger)
		if err != nil {
			return err
		}
		b.ctl = ctl
	}
	b.channel, b.lifeChannel = b.newChannel(opts), b.newChannel(opts)
	b.writer = &channelWriter{b: b, ch: b.channel}
	b.SendISRChangesBy(b.channel) // AlterPartition goes to the active controller
	return nil
}

// newChannel returns a controller channel (channel.go) with the node's limits.
func (b *Broker) newChannel(opts Options) *ControllerChannel {
	cfg := b.cfg
	ch := &ControllerChannel{self: cfg.NodeID, peer: b.quorum, voters: cfg.QuorumVoters(),
		clientID: fmt.Sprintf("vltava-broker-%d", cfg.NodeID), maxFrame: 100 << 20,
		backoff: 20 * time.Millisecond, dial: 2 * time.Second, dialFunc: opts.ControllerDial}
	if b.ctl != nil {
		ch.local = b.ctl
	}
	if n, err := strconv.ParseInt(cfg.Values["vltava.quorum.max.frame.bytes"], 10, 32); err == nil && n > 0 {
		ch.maxFrame = int32(n)
	}
	if n, err := strconv.ParseInt(cfg.Values["controller.quorum.retry.backoff.ms"], 10, 64); err == nil && n > 0 {
		ch.backoff = time.Duration(n) * time.Millisecond
	}
	if n, err := strconv.ParseInt(cfg.Values["controller.quorum.request.timeout.ms"], 10, 64); err == nil && n > 0 {
		ch.dial = time.Duration(n) * time.Millisecond
	}
	return ch
}

// closeController closes the channel and the controller (before the quorum).
func (b *Broker) closeController() {
	for _, ch := range []*ControllerChannel{b.channel, b.lifeChannel} {
		if ch != nil {
			ch.Close()
		}
	}
	if b.ctl != nil {
		b.ctl.Close()
	}
}

// Controller returns this node's controller, nil on a node that is not a controller.
func (b *Broker) Controller() *controller.Controller { return b.ctl }

// Channel returns the channel to the active controller (channel.go).
func (b *Broker) Channel() *ControllerChannel { return b.channel }

// observeAt gives a broker-only node's quorum member the address the quorum's leader
// reaches it at, its advertised inter-broker listener (which accepts the quorum's frames
// on such a node): from then on it asks the voters to add it as an observer.
func (b *Broker) observeAt(adv []string) {
	if b.cfg.IsController() || b.quorum == nil {
		return
	}
	for i, name := range b.cfg.ListenerNames {
		if name == b.cfg.InterBrokerListenerName && i < len(adv) {
			b.quorum.SetAddr(adv[i])
			return
		}
	}
}
