// Package broker is one node's state: the metadata image, the partitions it hosts and
// their logs on disk, and the background work on them (retention, flush). Handlers
// call its methods; it knows nothing of sockets or request encodings.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
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
	meta    *metadata.Store

	// topics is replaced whole on every topic change (copy on write), so the produce and
	// fetch paths look partitions up without a lock.
	topics atomic.Pointer[map[string]*Topic]
	// changeMu serialises the decisions of topic changes (topics.go, create.go).
	changeMu sync.Mutex
	// Guarded by changeMu: topic names with a change under way outside the lock, the
	// partitions they add, and whether Close has begun (no new changes then).
	pending           map[string]*pendingChange
	pendingPartitions int64
	closing           bool
	changes           sync.WaitGroup // changes under way; Close waits for them

	advertised  atomic.Pointer[[]string] // host:port per listener, set once listening
	incarnation uuid.UUID                // this process's, in its broker registration
	groupTopics atomic.Pointer[topicsCache]

	pidMu      sync.Mutex
	pidNext    int64 // next producer ID to hand out
	pidBlockTo int64 // IDs below this are reserved in the metadata log

	cleaner cleanerState // the log cleaner (cleaner.go)
	timings log.Timings  // given to every log
	started time.Time    // when Open began
	dirs    logDirs      // the log dirs' health (logdirs.go)

	dirLocks []io.Closer // one per log dir, held from Open to the end of Close

	stop chan struct{}
	wg   sync.WaitGroup
}

// Topic is a topic's hosted partitions.
type Topic struct {
	Name       string
	ID         uuid.UUID
	Partitions []*partition.Partition
	Internal   bool
}

// Options are what tests inject.
type Options struct {
	FS     vfs.FS
	Logger *slog.Logger
	Now    func() time.Time
	// LogTimings receive every partition log's write and flush times (metrics).
	LogTimings log.Timings
}

// Open opens a node's data: the metadata log, meta.properties and every partition.
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
	// Every file the node opens goes through the limit on open files, so that however
	// many partitions the metadata holds the node can open them (limits.go).
	maxFiles := openFilesLimit(cfg)
	files := vfs.LimitOpenFiles(opts.FS, maxFiles)
	// A failure that repeats (a full disk fails every partition's flush and snapshot
	// every second) is logged once a minute with a count, not on every try.
	repeats := ratelog.New(opts.Logger.Handler(), repeatWindow, slog.LevelWarn, opts.Now)
	b := &Broker{cfg: cfg, fsys: files, files: files, logger: slog.New(repeats), repeats: repeats, now: opts.Now,
		stop: make(chan struct{}), pending: map[string]*pendingChange{}, incarnation: uuid.New(), timings: opts.LogTimings, started: opts.Now()}
	b.initLogDirs()
	b.logger.Info("open data files limited", "vltava.log.max.open.files", describeFileLimit(maxFiles))
	// Every log dir is locked before anything in it is read or written, and stays
	// locked until Close has written the clean-shutdown markers: a second process on
	// the same directories would truncate and overwrite the first one's segments.
	for _, d := range cfg.LogDirs {
		if err := vfs.MkdirAllDurable(b.fsys, d); err != nil {
			b.unlockDirs()
			return nil, fmt.Errorf("log dir %s: %w", d, err)
		}
		l, err := vfs.LockDir(b.fsys, d)
		if err != nil {
			b.unlockDirs()
			return nil, err // names the dir and, if another process holds it, that process
		}
		b.dirLocks = append(b.dirLocks, l)
	}
	meta, err := metadata.Open(b.fsys, filepath.Join(cfg.LogDirs[0], metadataDirName), metadata.Options{Logger: b.logger, NodeID: cfg.NodeID})
	if err != nil {
		b.unlockDirs()
		return nil, err
	}
	b.meta = meta
	fail := func(err error) (*Broker, error) {
		b.closePartitions()
		meta.Close()
		b.unlockDirs()
		return nil, err
	}
	if err := b.ensureClusterID(); err != nil {
		return fail(err)
	}
	if err := b.writeMetaProperties(); err != nil {
		return fail(err)
	}
	im := meta.Image()
	b.pidNext, b.pidBlockTo = im.NextProducerID(), im.NextProducerID()
	if err := b.openAll(im); err != nil {
		return fail(err)
	}
	b.wg.Add(1)
	go b.housekeeping()
	b.startCleaner()
	return b, nil
}

func (b *Broker) ensureClusterID() error {
	if id := b.meta.Image().ClusterID(); id != "" {
		if b.cfg.ClusterID != "" && b.cfg.ClusterID != id {
			return fmt.Errorf("cluster.id %q does not match the stored cluster id %q", b.cfg.ClusterID, id)
		}
		return nil
	}
	id := b.cfg.ClusterID
	if id == "" {
		u := uuid.New()
		id = base64URL(u[:])
	}
	_, err := b.meta.Apply(func(*metadata.Image) ([]metadata.Record, error) {
		return []metadata.Record{&metadata.ClusterIDRecord{ID: id}}, nil
	})
	return err
}

// writeMetaProperties writes Kafka's meta.properties in each log dir, so operators and
// tools recognise the directory, and refuses a directory that belongs to another node.
func (b *Broker) writeMetaProperties() error {
	want := fmt.Sprintf("version=1\ncluster.id=%s\nnode.id=%d\n", b.meta.Image().ClusterID(), b.cfg.NodeID)
	for _, d := range b.cfg.LogDirs {
		p := filepath.Join(d, "meta.properties")
		if old, err := readFile(b.fsys, p); err == nil {
			for _, line := range strings.Split(string(old), "\n") {
				if v, ok := strings.CutPrefix(line, "node.id="); ok && v != fmt.Sprint(b.cfg.NodeID) {
					return fmt.Errorf("%s belongs to node.id %s, not %d", p, v, b.cfg.NodeID)
				}
			}
			if string(old) == want {
				continue
			}
		}
		if err := writeFileAtomic(b.fsys, p, []byte(want)); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the static broker configuration.
func (b *Broker) Config() config.Broker { return b.cfg }

// Logger returns the broker's logger.
func (b *Broker) Logger() *slog.Logger { return b.logger }

// Now returns the broker's clock reading.
func (b *Broker) Now() time.Time { return b.now() }

// Image returns the current metadata image.
func (b *Broker) Image() *metadata.Image { return b.meta.Image() }

// ClusterID returns the cluster ID.
func (b *Broker) ClusterID() string { return b.meta.Image().ClusterID() }

// NodeID returns this node's ID.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

// SetAdvertised records the host:port clients should use, once the listeners are bound,
// and registers this node in the metadata with them (register.go).
func (b *Broker) SetAdvertised(addrs []string) error {
	b.advertised.Store(&addrs)
	return b.register(addrs)
}

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

// Topic returns a hosted topic, or nil.
func (b *Broker) Topic(name string) *Topic {
	return (*b.topics.Load())[name]
}

// Partition returns a hosted partition, or nil.
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

// effective is the static broker config with the dynamic broker configs applied.
func (b *Broker) effective() config.Broker {
	return b.cfg.WithDynamicDefaults(b.meta.Image().BrokerConfigs(""))
}

// Close stops background work and closes every partition and the metadata log.
func (b *Broker) Close() error {
	select {
	case <-b.stop:
		return nil
	default:
	}
	close(b.stop)
	b.wg.Wait()
	b.changeMu.Lock()
	b.closing = true
	b.changeMu.Unlock()
	b.changes.Wait()
	err := b.closePartitions()
	if cerr := b.meta.Close(); err == nil {
		err = cerr
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
	m := b.topics.Load()
	if m == nil {
		return nil
	}
	var ps []*partition.Partition
	for _, t := range *m {
		ps = append(ps, t.Partitions...)
	}
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
		n, err := p.Log().EnforceRetention()
		if err != nil {
			b.logger.Error("retention", "topic", p.Topic, "partition", p.Index, "err", err)
		} else if n > 0 {
			b.logger.Info("retention deleted segments", "topic", p.Topic, "partition", p.Index, "segments", n)
		}
	})
}

func (b *Broker) forEachPartition(fn func(p *partition.Partition)) {
	for _, t := range *b.topics.Load() {
		for _, p := range t.Partitions {
			fn(p)
		}
	}
}

// AllocateProducerID hands out a producer ID unique across restarts: IDs are reserved in
// blocks in the metadata log, so a crash skips the rest of a block, never reuses it.
func (b *Broker) AllocateProducerID() (int64, error) {
	const block = 1000
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.pidNext >= b.pidBlockTo {
		from := b.pidBlockTo
		if _, err := b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
			return []metadata.Record{&metadata.ProducerIDsRecord{BrokerID: b.cfg.NodeID, BrokerEpoch: b.epoch(im),
				FirstID: from, Size: block}}, nil
		}); err != nil {
			return -1, err
		}
		b.pidBlockTo = from + block
	}
	id := b.pidNext
	b.pidNext++
	return id, nil
}

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
