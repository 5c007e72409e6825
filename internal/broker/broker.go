// Package broker is one node's state: the metadata image, the partitions it hosts and
// their logs on disk, and the background work on them (retention, flush). Handlers
// call its methods; it knows nothing of sockets or request encodings.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/controller"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metaprops"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/ratelog"
	"github.com/vltava/vltava/internal/vfs"
)

const metadataDirName = "__cluster_metadata-0"

// repeatWindow is how long lines like a logged warning or error are counted rather than
// written (ratelog).
const repeatWindow = time.Minute

// Broker is one node.
type Broker struct {
	cfg    config.Broker
	fsys   vfs.FS
	files  *vfs.LimitFS // fsys, by its own type: for its counters
	logger *slog.Logger
	// repeats is the logger's handler that counts repeated lines; flushed by
	// housekeeping and at Close.
	repeats *ratelog.Handler
	now     func() time.Time

	clusterID string
	// The metadata log: a quorum member over the metadata image (node.go), the writer
	// that turns changes into its records (writer.go), and the publisher that hosts
	// what the images place here (publish.go, reconcile.go).
	quorum     *quorum.Node
	sm         *metadata.StateMachine
	writer     MetadataWriter
	pub        *publisher
	pubStop    chan struct{}
	pubWG      sync.WaitGroup
	reconciled atomic.Bool // the reconciliation at start is done
	// The controller (on a node whose process.roles include controller; node.go), the
	// channel to the active controller (channel.go) and this broker's lifecycle with it
	// (register.go).
	ctl     *controller.Controller
	channel *ControllerChannel
	// lifeChannel carries registration and heartbeats on a connection of their own,
	// so that a slow change on channel never delays a heartbeat past the session
	// timeout (Kafka's broker has a heartbeat channel apart from its forwarding one).
	lifeChannel *ControllerChannel
	life        *lifecycle

	// hosted is replaced whole on every change (copy on write), so the produce and
	// fetch paths look partitions up without a lock; host orders its changes and runs
	// the disk work of hosting (reconcile.go).
	hosted atomic.Pointer[hostedState]
	host   hoster
	// coordMu guards coordHook and coordTold (the partitions it was told this node
	// leads) and orders the hook's calls.
	coordMu   sync.Mutex
	coordHook OffsetsLeadership
	coordTold map[int32]*partition.Partition

	closing atomic.Bool    // Close has begun: no new changes
	changes sync.WaitGroup // changes under way; Close waits for them

	advertised  atomic.Pointer[[]string] // host:port per listener, set once listening
	incarnation uuid.UUID                // this process's, in its broker registration
	groupTopics atomic.Pointer[topicsCache]

	expireMu sync.Mutex // serialises ExpireProducers

	pidMu      sync.Mutex
	pidNext    int64 // next producer ID to hand out
	pidBlockTo int64 // IDs below this are reserved in the metadata log

	cleaner cleanerState          // the log cleaner (cleaner.go)
	timings log.Timings           // given to every log
	isrL    partition.ISRListener // told of every committed ISR change of a leader here (metrics)
	started time.Time             // when Open began
	dirs    logDirs               // the log dirs' health (logdirs.go)

	dirLocks []io.Closer // one per log dir, held from Open to the end of Close

	// replicas is the replication of partitions with more than one replica: fetching
	// from leaders, ticks, high watermark checkpoints, ISR changes (replicas.go).
	replicas replicaHost

	stop   chan struct{}
	ctx    context.Context // ended by Close: changes in flight give up
	cancel context.CancelFunc
	// reqCtx, under ctx, is the context of the changes made for clients' requests;
	// AbandonRequests ends it once nobody waits for their answers.
	reqCtx    context.Context
	reqCancel context.CancelFunc
	wg        sync.WaitGroup
}

// Topic is a topic's hosted partitions.
type Topic struct {
	Name string
	ID   uuid.UUID
	// Partitions by index; nil where this node hosts no replica of the partition (or
	// has not opened it).
	Partitions []*partition.Partition
	Internal   bool
	leading    []bool // by index: this node leads the partition
}

// Options are what tests inject.
type Options struct {
	FS     vfs.FS
	Logger *slog.Logger
	Now    func() time.Time
	// Transport carries the metadata quorum's messages; nil is TCP to the voters'
	// controller listeners (quorum.NewTCPTransport).
	Transport quorum.Transport
	// Clock drives the quorum; nil is the system clock.
	Clock quorum.Clock
	// LogTimings receive every partition log's write and flush times (metrics).
	LogTimings log.Timings
	// ISRListener counts the committed ISR changes of the partitions this node leads
	// (metrics); nil counts nothing.
	ISRListener partition.ISRListener
	// ControllerDial dials the active controller's listener for the controller channel
	// (channel.go); nil is TCP.
	ControllerDial func(ctx context.Context, addr string) (net.Conn, error)
}

// Open opens a node's data: meta.properties, the metadata log (the quorum, node.go), and
// every partition the metadata places here.
func Open(cfg config.Broker, opts Options) (*Broker, error) {
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(cfg.LogDirs) == 0 {
		return nil, errors.New("no log.dirs")
	}
	if cfg.MetadataLogDir == "" {
		cfg.MetadataLogDir = cfg.LogDirs[0] // a configuration not from config.Load
	}
	if len(cfg.ProcessRoles) == 0 {
		cfg.ProcessRoles = []string{"broker", "controller"}
	}
	// Every file the node opens goes through the limit on open files, so that however
	// many partitions the metadata holds the node can open them (limits.go).
	maxFiles := openFilesLimit(cfg)
	files := vfs.LimitOpenFiles(opts.FS, maxFiles)
	// A failure that repeats (a full disk fails every partition's flush and snapshot
	// every second) is logged once a minute with a count, not on every try.
	repeats := ratelog.New(opts.Logger.Handler(), repeatWindow, slog.LevelWarn, opts.Now)
	b := &Broker{cfg: cfg, fsys: files, files: files, logger: slog.New(repeats), repeats: repeats, now: opts.Now,
		stop: make(chan struct{}), incarnation: uuid.New(), pub: newPublisher(), pubStop: make(chan struct{}),
		timings: opts.LogTimings, isrL: opts.ISRListener, started: opts.Now(), life: newLifecycle()}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.reqCtx, b.reqCancel = context.WithCancel(b.ctx)
	b.hosted.Store(&hostedState{topics: map[string]*Topic{}, failed: map[partKey]error{}})
	b.initLogDirs()
	b.logger.Info("open data files limited", "vltava.log.max.open.files", describeFileLimit(maxFiles))
	// Every dir is locked before anything in it is read or written, and stays locked
	// until Close has written the clean-shutdown markers: a second process on the same
	// directories would truncate and overwrite the first one's segments.
	for _, d := range metaprops.Dirs(cfg) {
		if err := vfs.MkdirAllDurable(b.fsys, d); err != nil {
			b.unlockDirs()
			b.cancel()
			return nil, fmt.Errorf("log dir %s: %w", d, err)
		}
		l, err := vfs.LockDir(b.fsys, d)
		if err != nil {
			b.unlockDirs()
			b.cancel()
			return nil, err // names the dir and, if another process holds it, that process
		}
		b.dirLocks = append(b.dirLocks, l)
	}
	b.life.previousEpoch = b.takeCleanShutdownEpoch()
	if err := b.openMetadata(opts); err != nil {
		b.unlockDirs()
		b.cancel()
		return nil, err
	}
	im := b.sm.Image()
	b.pidNext, b.pidBlockTo = im.NextProducerID(), im.NextProducerID()
	b.wg.Add(2)
	go b.housekeeping()
	go b.watchMetadataLog()
	b.startCleaner()
	return b, nil
}

// openMetadata resolves this node's identity and opens its metadata log, then hosts what
// the metadata places here. On error nothing stays open (the dir locks excepted).
func (b *Broker) openMetadata(opts Options) error {
	cfg := b.cfg
	legacy, err := findLegacyMetadata(b.fsys, cfg, b.logger)
	if err != nil {
		return err
	}
	state, err := bootstrapState(cfg, legacy)
	if err != nil {
		return err
	}
	b.clusterID, err = resolveIdentity(b.fsys, cfg, legacy, b.logger)
	if err != nil {
		return err
	}
	qcfg := QuorumConfig(cfg, b.clusterID)
	qcfg.BootstrapState = state
	b.sm = metadata.NewStateMachine(b.pub.publish, b.logger)
	b.initHoster()
	b.pubWG.Add(1)
	go b.runPublisher(b.pubStop)
	fail := func(err error) error {
		b.closeController()
		if b.quorum != nil {
			b.quorum.Close()
		}
		close(b.pubStop)
		b.pubWG.Wait()
		b.stopHoster()
		b.closePartitions()
		return err
	}
	b.quorum, err = quorum.Open(qcfg, b.fsys, cfg.MetadataLogDir, b.sm, opts.Transport, opts.Clock, b.logger)
	if err != nil {
		return fail(fmt.Errorf("metadata log: %w", err))
	}
	if err := b.openController(opts); err != nil {
		return fail(err)
	}
	// Status answers once the member's loop has applied what its log holds as committed,
	// and so published every image of it; their reconciliation is waited for.
	ctx := context.Background()
	if _, err := b.quorum.Status(ctx); err != nil {
		return fail(fmt.Errorf("metadata log: %w", err))
	}
	if err := b.waitIdle(ctx); err != nil {
		return fail(err)
	}
	for {
		idle, ch := b.hostIdle()
		if idle {
			break
		}
		<-ch
	}
	if err := b.host.startErr; err != nil {
		return fail(err)
	}
	if err := b.quorum.Err(); err != nil {
		return fail(fmt.Errorf("metadata log: %w", err))
	}
	im := b.sm.Image()
	if id := im.ClusterID(); id != "" && id != b.clusterID {
		return fail(fmt.Errorf("the metadata log in %s belongs to cluster %s, but meta.properties says %s: refusing to start", cfg.MetadataLogDir, id, b.clusterID))
	}
	if legacy != nil {
		if err := legacy.moveAside(b.fsys, b.logger); err != nil {
			return fail(err)
		}
	}
	if len(qcfg.Voters) == 1 && cfg.IsController() {
		// A quorum of one: its image is the whole truth, so directories it does not
		// know are strays.
		if err := b.setAsideStrays(im); err != nil {
			return fail(err)
		}
	}
	b.reconciled.Store(true)
	return nil
}

// Config returns the static broker configuration.
func (b *Broker) Config() config.Broker { return b.cfg }

// Logger returns the broker's logger.
func (b *Broker) Logger() *slog.Logger { return b.logger }

// Now returns the broker's clock reading.
func (b *Broker) Now() time.Time { return b.now() }

// Image returns the current metadata image: the latest this node applied.
func (b *Broker) Image() *metadata.Image { return b.sm.Image() }

// ClusterID returns the cluster ID (meta.properties').
func (b *Broker) ClusterID() string { return b.clusterID }

// Quorum returns this node's member of the metadata quorum (the server routes the
// quorum's frames from its controller listener to it).
func (b *Broker) Quorum() *quorum.Node { return b.quorum }

// Writer returns the metadata writer (writer.go).
func (b *Broker) Writer() MetadataWriter { return b.writer }

// SetWriter replaces the metadata writer: the seam where the active controller (or
// forwarding to it) takes over from the broker's own record computation.
func (b *Broker) SetWriter(w MetadataWriter) { b.writer = w }

// NodeID returns this node's ID.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

// Advertised returns the advertised host:port of each listener.
func (b *Broker) Advertised() []string {
	if p := b.advertised.Load(); p != nil {
		return *p
	}
	if len(b.cfg.AdvertisedListeners) > 0 {
		return b.cfg.AdvertisedListeners
	}
	return b.cfg.Listeners
}

// Topic returns a hosted topic, or nil. Its Partitions has a nil entry for each
// partition this node does not host.
func (b *Broker) Topic(name string) *Topic {
	return b.hosted.Load().topics[name]
}

// Partition returns a hosted partition (led or followed here), or nil.
func (b *Broker) Partition(topic string, index int32) *partition.Partition {
	t := b.Topic(topic)
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[index]
}

// TopicConfig resolves a topic's configuration: its overrides over the broker defaults
// (static, then dynamic).
func (b *Broker) TopicConfig(overrides map[string]string) config.Topic {
	return b.effective().ResolveTopic(overrides)
}

// effective is the static broker config with the dynamic broker configs applied: the
// cluster-wide defaults (BROKER resource ""), then this broker's own (its ID).
func (b *Broker) effective() config.Broker {
	im := b.Image()
	return b.cfg.WithDynamicDefaults(im.BrokerConfigs("")).WithDynamic(im.BrokerConfigs(b.brokerResource()))
}

// brokerResource is the name of this broker's BROKER config resource: its ID in decimal.
func (b *Broker) brokerResource() string { return strconv.Itoa(int(b.cfg.NodeID)) }

// Close stops background work and closes every partition and the metadata log.
func (b *Broker) Close() error {
	select {
	case <-b.stop:
		return nil
	default:
	}
	b.ControlledShutdown() // register.go
	close(b.stop)
	b.wg.Wait()
	b.closing.Store(true)
	b.cancel()
	b.changes.Wait()
	// The controller and the channel, then the quorum (no more images), then the
	// publisher (no more hosting), then the partitions.
	b.closeController()
	err := b.quorum.Close()
	close(b.pubStop)
	b.pubWG.Wait()
	b.stopHoster()
	cerr := b.closePartitions()
	if err == nil {
		err = cerr
	}
	if epoch := b.life.epoch.Load(); cerr == nil && epoch >= 0 && !b.anyDirOffline() {
		if werr := b.writeCleanShutdownEpoch(epoch); werr != nil {
			b.logger.Warn("could not record the clean shutdown; the next start counts as unclean", "err", werr)
		}
	}
	b.unlockDirs()
	b.repeats.Flush(true)
	return err
}

// unlockDirs releases the log dir locks, last of all.
func (b *Broker) unlockDirs() {
	for _, l := range b.dirLocks {
		l.Close()
	}
	b.dirLocks = nil
}

// closePartitions closes every hosted partition, a few at a time as they are opened
// (host.go): each close waits for fsyncs.
func (b *Broker) closePartitions() error {
	var ps []*partition.Partition
	b.forEachPartition(func(p *partition.Partition) { ps = append(ps, p) })
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan *partition.Partition)
	for range min(b.hostWorkers(), len(ps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := p.Close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range ps {
		next <- p
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// housekeeping runs retention, time-based flushes, rolling producer snapshots and
// producer expiry until Close.
func (b *Broker) housekeeping() {
	defer b.wg.Done()
	retention := b.cfg.LogRetentionCheckInterval
	if retention <= 0 {
		retention = 5 * time.Minute
	}
	rt := time.NewTicker(retention)
	defer rt.Stop()
	ft := time.NewTicker(time.Second)
	defer ft.Stop()
	b.ExpireProducers() // producers.go
	pt := time.NewTicker(b.producerExpirationCheck())
	defer pt.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-rt.C:
			b.EnforceRetention()
		case <-pt.C:
			b.ExpireProducers()
		case <-ft.C:
			b.repeats.Flush(false)
			b.forEachPartition(func(p *partition.Partition) {
				if p.Log().Err() != nil {
					return // offline: the failure was reported once, when it happened
				}
				if err := p.Log().FlushIfDue(); err != nil {
					b.logger.Error("flush", "topic", p.Topic, "partition", p.Index, "err", err)
				}
				if err := p.SnapshotIfRolled(); err != nil {
					b.logSnapshotError(p, err)
				}
			})
		}
	}
}

// EnforceRetention applies retention to every partition now.
func (b *Broker) EnforceRetention() {
	b.forEachPartition(func(p *partition.Partition) {
		if p.Log().Err() != nil {
			return
		}
		n, err := p.EnforceRetention() // below the high watermark
		if err != nil {
			b.logger.Error("retention", "topic", p.Topic, "partition", p.Index, "err", err)
		} else if n > 0 {
			b.logger.Info("retention deleted segments", "topic", p.Topic, "partition", p.Index, "segments", n)
		}
	})
}

// forEachPartition calls fn for every hosted partition.
func (b *Broker) forEachPartition(fn func(p *partition.Partition)) {
	for _, t := range b.hosted.Load().topics {
		for _, p := range t.Partitions {
			if p != nil {
				fn(p)
			}
		}
	}
}

// AllocateProducerID hands out a producer ID unique across restarts and brokers: IDs are
// reserved in blocks in the metadata log (the next free block of the cluster), so a
// crash skips the rest of a block, never reuses it.
func (b *Broker) AllocateProducerID() (int64, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.pidNext >= b.pidBlockTo {
		ctx, cancel := b.changeContext()
		defer cancel()
		epoch := b.life.epoch.Load()
		if epoch < 0 {
			return -1, errNotRegistered
		}
		first, size, err := b.writer.AllocateProducerIDs(ctx, b.cfg.NodeID, epoch)
		if err != nil {
			return -1, err
		}
		b.pidNext, b.pidBlockTo = first, first+int64(size)
	}
	id := b.pidNext
	b.pidNext++
	return id, nil
}

// requestTimeout is request.timeout.ms, the bound on a change made for a request.
func (b *Broker) requestTimeout() time.Duration {
	if t := b.cfg.RequestTimeout; t > 0 {
		return t
	}
	return 30 * time.Second
}

// changeContext is the context of a metadata change made for a request: bounded by
// request.timeout.ms, and ended by Close.
func (b *Broker) changeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.reqCtx, b.requestTimeout())
}

// AbandonRequests ends the metadata changes made for clients' requests that are still
// waiting (for the controller, for the change to apply): the server calls it once it has
// closed its connections, when nobody waits for their answers, so that its Close does
// not wait for them up to request.timeout.ms (a quorum that lost its leader during the
// shutdown never answers).
func (b *Broker) AbandonRequests() { b.reqCancel() }

// kafkaErr wraps a Kafka error with context.
func kafkaErr(e *kerr.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", e, fmt.Sprintf(format, args...))
}

// LogConfig converts a resolved topic config to the log's.
func LogConfig(t config.Topic) log.Config {
	retentionBytes, retention := t.RetentionBytes, t.Retention
	if !strings.Contains(t.CleanupPolicy, "delete") {
		// compact alone: records go only by compaction, never by age or size.
		retentionBytes, retention = -1, -1
	}
	return log.Config{
		SegmentBytes:          t.SegmentBytes,
		SegmentMs:             t.Segment,
		RetentionBytes:        retentionBytes,
		RetentionMs:           retention,
		FlushIntervalMessages: t.FlushMessages,
		FlushInterval:         t.Flush,
		IndexIntervalBytes:    t.IndexIntervalBytes,
		SegmentIndexBytes:     t.SegmentIndexBytes,
		FileDeleteDelay:       t.FileDeleteDelay,
	}
}

// logOptions are what the log of partition directory dir opens with: the broker's
// logger, so the recovery report names the partition (<topic>-<index>), and the
// operator's recovery override.
func (b *Broker) logOptions(dir string) log.Options {
	return log.Options{
		Now:                        b.now,
		Logger:                     b.logger.With("partition", filepath.Base(dir)),
		TruncateBelowRecoveryPoint: strings.EqualFold(b.cfg.Values[log.TruncateBelowRecoveryPointKey], "true"),
		Timings:                    b.timings,
	}
}

// PartitionConfig converts a resolved topic config to the partition's.
func PartitionConfig(t config.Topic) partition.Config {
	return partition.Config{
		MaxMessageBytes:   t.MaxMessageBytes,
		MinInsyncReplicas: t.MinInsyncReplicas,
		Compacted:         strings.Contains(t.CleanupPolicy, "compact"),
		// A batch may not decompress to more than 64 times max.message.bytes (at least
		// 64 MiB; MESSAGE_TOO_LARGE beyond). Its records are streamed, so this bounds the
		// work a small batch can cause (a decompression bomb), not memory.
		MaxDecompressed:      64 * int(max(t.MaxMessageBytes, 1<<20)),
		LogAppendTime:        t.MessageTimestampType == "LogAppendTime",
		TimestampBeforeMaxMs: t.MessageTimestampBeforeMaxMs,
		TimestampAfterMaxMs:  t.MessageTimestampAfterMaxMs,
	}
}

// ErrShuttingDown is returned for work started during Close.
var ErrShuttingDown = errors.New("broker shutting down")

// TopicConfigEntries describes a topic's configs as DescribeConfigs reports them.
func (b *Broker) TopicConfigEntries(overrides map[string]string, names []string, synonyms bool) []config.Entry {
	return b.effective().DescribeTopic(overrides, names, synonyms)
}

// BrokerConfigEntries describes this broker's configs; clusterDefault lists only the
// dynamic cluster-wide defaults (the BROKER resource named "").
func (b *Broker) BrokerConfigEntries(names []string, synonyms, clusterDefault bool) []config.Entry {
	if clusterDefault {
		return b.effective().DescribeBrokerDefaults(names, synonyms)
	}
	return b.effective().DescribeBroker(nil, names, synonyms)
}
