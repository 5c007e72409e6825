// Package group is the group coordinator: classic consumer groups (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup), KIP-848 consumer groups
// (ConsumerGroupHeartbeat, ConsumerGroupDescribe), committed offsets and the
// group administration APIs.
//
// Its durable state lives in the compacted internal topic __consumer_offsets,
// reached through the Store interface; the coordinator never touches files or
// sockets. A node coordinates the groups of the partitions of that topic it
// leads: LoadPartition replays one and rebuilds its groups and offsets,
// UnloadPartition drops them (ownership.go); Load loads them all.
//
// Handlers call one method per Kafka API with the decoded kmsg request (its
// Version set) and send back the kmsg response the method returns.
//
// Concurrency: all group state is guarded by one mutex, Coordinator.mu. No
// I/O happens under it. Writes to a __consumer_offsets partition go through
// that partition's append lock (see write), taken before mu, so that the order
// records reach the log is the order their effects reach memory: a restart
// replays exactly what the live coordinator applied.
//
// Time: timestamps written to records and retention decisions use Config.Now.
// Timers (session timeouts, rebalance timeouts, the initial rebalance delay)
// run on the runtime clock through a scheduler the coordinator owns; tests run
// inside testing/synctest bubbles, which virtualise both.
package group

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
	"unicode/utf16"
)

// Store persists coordinator state in the compacted internal topic
// __consumer_offsets.
type Store interface {
	// Append appends records to partition p of __consumer_offsets and
	// returns once they are durable/acknowledged.
	Append(ctx context.Context, p int32, recs []Record) error
	// Replay calls fn for every record of partition p from the log start,
	// in offset order.
	Replay(p int32, fn func(r Record) error) error
}

// Record is one record of __consumer_offsets. Value nil is a tombstone. Keys
// and values are encoded as Kafka encodes them; see records.go.
type Record struct{ Key, Value []byte }

// TopicInfo is what the coordinator needs to know of a topic: its ID (for
// OffsetCommit/OffsetFetch v10+ and KIP-848 assignments, which name topics by
// ID) and its partition count (for KIP-848 assignment and commit validation).
type TopicInfo struct {
	ID         [16]byte
	Partitions int32
}

// Client identifies the connection a request came on; kmsg requests do not
// carry it. Kafka reports both in DescribeGroups and ConsumerGroupDescribe.
type Client struct {
	ID   string // client.id from the request header
	Host string // the peer's address, as Kafka shows it ("/127.0.0.1")
}

// Config configures a Coordinator. Zero fields take Kafka's defaults (see
// withDefaults), except where noted.
type Config struct {
	NumPartitions                 int32         // offsets.topic.num.partitions (50)
	InitialRebalanceDelay         time.Duration // group.initial.rebalance.delay.ms (3s); negative means 0
	MinSessionTimeout             time.Duration // group.min.session.timeout.ms (6s)
	MaxSessionTimeout             time.Duration // group.max.session.timeout.ms (30m)
	OffsetsRetention              time.Duration // offsets.retention.minutes (7 days)
	OffsetsRetentionCheckInterval time.Duration // offsets.retention.check.interval.ms (10m)
	MaxGroupSize                  int           // group.max.size and group.consumer.max.size; 0 = unlimited
	OffsetMetadataMaxBytes        int           // offset.metadata.max.bytes (4096)

	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms (45s)
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms (5s)
	// ConsumerAssignors is group.consumer.assignors: the server-side
	// assignors a KIP-848 member may name; the first is the default.
	// Supported: "uniform", "range" (the config package maps Kafka's class
	// names to these and refuses anything else at start). Default: uniform,
	// range. A member naming another gets UNSUPPORTED_ASSIGNOR.
	ConsumerAssignors []string

	// Now is the clock for record timestamps and offset retention.
	Now    func() time.Time
	Logger *slog.Logger
	// Topics returns the current topics by name, internal ones included.
	// The coordinator calls it without holding any lock
	// of its own, on every KIP-848 heartbeat, commit and fetch, so it should
	// return a cached snapshot; the coordinator never modifies the map, and
	// the caller must not either once returned. It is used to resolve topic
	// IDs (OffsetCommit v10+, OffsetFetch v10+, KIP-848 assignments), to
	// reject commits to partitions that do not exist
	// (UNKNOWN_TOPIC_OR_PARTITION, as Kafka does), to match subscription
	// regexes and to size KIP-848 assignments. Nil means no topic is known:
	// commits are not checked, and KIP-848 groups get empty assignments.
	Topics func() map[string]TopicInfo
}

func (cfg Config) withDefaults() Config {
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = 50
	}
	if cfg.InitialRebalanceDelay == 0 {
		cfg.InitialRebalanceDelay = 3 * time.Second
	} else if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MinSessionTimeout == 0 {
		cfg.MinSessionTimeout = 6 * time.Second
	}
	if cfg.MaxSessionTimeout == 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	if cfg.OffsetsRetention == 0 {
		cfg.OffsetsRetention = 7 * 24 * time.Hour
	}
	if cfg.OffsetsRetentionCheckInterval == 0 {
		cfg.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	if cfg.OffsetMetadataMaxBytes == 0 {
		cfg.OffsetMetadataMaxBytes = 4096
	}
	if cfg.ConsumerSessionTimeout == 0 {
		cfg.ConsumerSessionTimeout = 45 * time.Second
	}
	if cfg.ConsumerHeartbeatInterval == 0 {
		cfg.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if len(cfg.ConsumerAssignors) == 0 {
		cfg.ConsumerAssignors = []string{assignorUniform, assignorRange}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Coordinator coordinates every group of this broker. Create it with New,
// call Load before serving, Close when done.
type Coordinator struct {
	cfg   Config
	store Store
	sched *scheduler

	// appendMu[p] serializes writes to __consumer_offsets partition p; it is
	// always taken before mu.
	appendMu []sync.Mutex

	// closed is closed by Close; requests waiting for a join or sync phase
	// give up when it is.
	closed    chan struct{}
	closeOnce sync.Once
	// bgCtx is the context of writes no request waits on; Close cancels it.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	async    sync.WaitGroup // background writes, see goAsync

	mu          sync.Mutex
	owned       []partOwnership // by __consumer_offsets partition (ownership.go)
	ownershipCh chan struct{}   // closed when a partition's ownership changes
	closing     bool            // set by Close; goAsync starts nothing once set
	groups      map[string]*group
	seq         uint64 // source of timer tokens, see nextSeq
}

// New returns a coordinator over store. It serves no group (NOT_COORDINATOR) until
// Load, or LoadPartition for the group's partition, returns.
func New(cfg Config, store Store) *Coordinator {
	cfg = cfg.withDefaults()
	bgCtx, bgCancel := context.WithCancel(context.Background())
	return &Coordinator{
		bgCtx:       bgCtx,
		bgCancel:    bgCancel,
		cfg:         cfg,
		store:       store,
		sched:       newScheduler(),
		appendMu:    make([]sync.Mutex, cfg.NumPartitions),
		owned:       make([]partOwnership, cfg.NumPartitions),
		ownershipCh: make(chan struct{}),
		closed:      make(chan struct{}),
		groups:      make(map[string]*group),
	}
}

// Load loads every partition of __consumer_offsets (a single node coordinates all of
// them; a node of a cluster loads those it leads, LoadPartition) and starts the offset
// expiration timer.
func (c *Coordinator) Load(ctx context.Context) error {
	for p := int32(0); p < c.cfg.NumPartitions; p++ {
		if err := c.LoadPartition(ctx, p); err != nil {
			return err
		}
	}
	c.StartExpiration()
	return nil
}

// StartExpiration starts the offset expiration timer, which sweeps the partitions
// loaded here.
func (c *Coordinator) StartExpiration() { c.scheduleExpiration() }

// Close stops every timer and background write, answers waiting joins and
// syncs with COORDINATOR_NOT_AVAILABLE, and waits for all of it.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.closeOnce.Do(func() { close(c.closed) })
	c.bgCancel()
	c.sched.close()
	c.async.Wait()
}

// PartitionFor returns the __consumer_offsets partition of groupID, computed
// as Kafka does: abs(groupID.hashCode()) % partitions with Java's
// String.hashCode over UTF-16 code units and Utils.abs mapping MinInt32 to 0.
func (c *Coordinator) PartitionFor(groupID string) int32 {
	return partitionFor(groupID, c.cfg.NumPartitions)
}

func partitionFor(groupID string, n int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(groupID)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// nextSeq returns a fresh token. Timers capture the token current when they
// were armed and do nothing if it changed by the time they run, since a timer
// may fire while mu is held by the code re-arming it.
func (c *Coordinator) nextSeq() uint64 {
	c.seq++
	return c.seq
}

var errClosed = errors.New("group coordinator closed")

// write appends the records prepare returns to partition p, then calls done
// with the records and the append's error. prepare and done run under mu;
// the Append runs under neither mu nor anything but p's append lock, which
// is held from before prepare to after done so that no other write to p
// interleaves: the log and memory see changes in the same order. prepare
// returning no records skips the append (done is then called with nil).
func (c *Coordinator) write(ctx context.Context, p int32, prepare func() []Record, done func(recs []Record, err error)) {
	c.appendMu[p].Lock()
	defer c.appendMu[p].Unlock()

	c.mu.Lock()
	recs := prepare()
	c.mu.Unlock()

	var err error
	if len(recs) > 0 {
		select {
		case <-c.closed:
			err = errClosed
		default:
			err = c.store.Append(ctx, p, recs)
		}
		if err != nil {
			c.cfg.Logger.Warn("append to __consumer_offsets failed", "partition", p, "records", len(recs), "err", err)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	done(recs, err)
}

// goAsync runs fn on a goroutine Close waits for, unless closing. mu must be
// held, which orders the Add before Close's Wait.
func (c *Coordinator) goAsync(fn func()) {
	if c.closing {
		return
	}
	c.async.Add(1)
	go func() {
		defer c.async.Done()
		fn()
	}()
}
