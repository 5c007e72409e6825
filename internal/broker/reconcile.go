package broker

// Reconciliation: what this node hosts follows the metadata image. For each image the
// publisher hands over with its delta (publish.go), metadata.ForNode names the
// partitions whose placement on this node changed; for each, what the image wants (a
// replica of topic ID x, leading or following, at leader epoch e; or none) is compared
// with what is hosted, and the difference becomes work:
//
//   - a replica of a topic ID the image no longer places here (the topic deleted, or the
//     replica moved away) is closed and its data deleted, as Kafka's StopReplica with
//     delete does;
//   - a replica the image places here and that is not open is opened, creating its
//     directory;
//   - one open whose leader epoch the image raises becomes leader at that epoch;
//   - config changes (the topic's, or the cluster-wide defaults) reach the partitions.
//
// Opening and deleting, the disk work, run on a few workers
// (num.recovery.threads.per.data.dir per log dir, as Kafka opens logs: the work is mostly
// waiting for fsyncs, which overlap), never on the publisher: a slow disk under one
// topic holds up neither the metadata log nor other topics. At most one job runs per
// partition directory name (<topic>-<partition>): a job for a name already being worked
// on waits, and when a job ends the name is compared with the image again, so a topic
// deleted and created again under its name while its partitions were opening ends up
// with the new topic's partitions, empty.
//
// A partition that fails to open takes its log dir offline, as Kafka's LogManager does:
// the error is logged, the dir's partitions answer KAFKA_STORAGE_ERROR, and the broker
// halts when no log dir is left. At start, the first failure stops the start instead
// (Open returns it), as before the quorum.
//
// Group coordination follows the leadership of __consumer_offsets partitions: one
// goroutine compares the led partitions with what it last told the coordinator and
// tells it the difference, in order (coordinator.go's hooks).
//
// The hosted state is replaced whole (copy on write) so the produce and fetch paths read
// it without a lock; hostMu orders its changes.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// hostedState is what this node hosts.
type hostedState struct {
	topics map[string]*Topic
	// failed holds the partitions this node should host whose open failed, with why.
	failed map[partKey]error
}

type partKey struct {
	topic     string
	partition int32
}

func (h *hostedState) clone() *hostedState {
	return &hostedState{topics: maps.Clone(h.topics), failed: maps.Clone(h.failed)}
}

// hosted returns the partition hosted under key, and whether this node leads it.
func (h *hostedState) get(key partKey) (*partition.Partition, uuid.UUID, bool) {
	t := h.topics[key.topic]
	if t == nil || key.partition < 0 || int(key.partition) >= len(t.Partitions) {
		return nil, uuid.Nil, false
	}
	return t.Partitions[key.partition], t.ID, t.leading[key.partition]
}

// set hosts p (nil: nothing) under key for topic id with n partitions.
func (h *hostedState) set(key partKey, id uuid.UUID, n int32, p *partition.Partition, leading bool) {
	t := h.topics[key.topic]
	var c Topic
	if t != nil && t.ID == id {
		c = *t
		c.Partitions, c.leading = slices.Clone(t.Partitions), slices.Clone(t.leading)
	} else {
		c = Topic{Name: key.topic, ID: id, Internal: IsInternal(key.topic)}
	}
	if size := max(int(n), int(key.partition)+1); size > len(c.Partitions) {
		c.Partitions = append(c.Partitions, make([]*partition.Partition, size-len(c.Partitions))...)
		c.leading = append(c.leading, make([]bool, size-len(c.leading))...)
	}
	c.Partitions[key.partition], c.leading[key.partition] = p, leading && p != nil
	if !slices.ContainsFunc(c.Partitions, func(p *partition.Partition) bool { return p != nil }) {
		delete(h.topics, key.topic)
		return
	}
	h.topics[key.topic] = &c
}

// hoster is the reconciliation's state; its fields are guarded by mu.
type hoster struct {
	mu       sync.Mutex
	want     *metadata.Image // the latest image reconciled
	busy     map[partKey]bool
	queue    []hostJob
	wake     chan struct{}  // buffered 1: a job was queued
	changed  chan struct{}  // closed when the hosted state changes or a job ends
	stopped  bool           // Close began: jobs are no longer taken
	workers  sync.WaitGroup // the workers, until Close
	startErr error          // the first open that failed before the start completed
	coordSig chan struct{}  // buffered 1: the offsets leadership may have changed

	opened     int       // partitions opened before the start completed
	lastReport time.Time // when the start last reported its progress

	placerMu sync.Mutex
	placer   *placer // shared by every job once made (host.go)
}

// hostJob is one job on a partition directory: open a replica of topic t, or delete p.
type hostJob struct {
	key partKey
	t   *TopicDesc           // open
	p   *partition.Partition // delete; with t, close, then open again as a replica
}

func (b *Broker) initHoster() {
	b.host.want = metadata.Empty()
	b.host.lastReport = b.now()
	b.host.busy = map[partKey]bool{}
	b.host.wake = make(chan struct{}, 1)
	b.host.changed = make(chan struct{})
	b.host.coordSig = make(chan struct{}, 1)
	b.initReplicas()
	for range b.hostWorkers() {
		b.host.workers.Add(1)
		go b.hostWorker()
	}
	b.host.workers.Add(1)
	go b.coordinate()
}

// stopHoster stops the workers once their jobs under way end; queued jobs are dropped.
func (b *Broker) stopHoster() {
	b.host.mu.Lock()
	b.host.stopped = true
	b.host.queue = nil
	close(b.host.wake)
	b.host.mu.Unlock()
	b.host.workers.Wait()
	b.stopReplicas()
}

// hostWorkers is how many partitions are opened or deleted at once.
func (b *Broker) hostWorkers() int {
	n, err := strconv.Atoi(b.cfg.Values["num.recovery.threads.per.data.dir"])
	if err != nil || n < 1 {
		n = 2
	}
	return n * len(b.cfg.LogDirs)
}

// reconcile brings what this node hosts to im, which d led to. It only decides; the
// disk work is queued for the workers.
func (b *Broker) reconcile(im *metadata.Image, d *metadata.Delta) {
	if !b.cfg.IsBroker() {
		return // a controller-only node hosts no partitions
	}
	lc := metadata.ForNode(d, im, b.cfg.NodeID)
	b.followWithEpoch(im)
	b.host.mu.Lock()
	b.host.want = im
	for _, tp := range slices.Concat(lc.Delete, lc.Close) {
		b.syncLocked(partKey{tp.Topic, tp.Partition})
	}
	for _, lp := range slices.Concat(lc.Leaders, lc.Followers) {
		b.syncLocked(partKey{lp.Topic, lp.Partition})
	}
	b.changedLocked()
	b.host.mu.Unlock()

	// Config changes: a topic's own, or the broker configs every topic inherits (the
	// cluster-wide defaults, or this broker's own).
	if len(d.BrokerConfigs[""]) > 0 || len(d.BrokerConfigs[b.brokerResource()]) > 0 {
		for t := range im.Topics() {
			b.reconfigure(t)
		}
	} else {
		for id, td := range d.Topics {
			if t := im.TopicByID(id); t != nil && td.Old != nil && len(td.Configs) > 0 {
				b.reconfigure(t)
			}
		}
	}
}

// wanted returns what the image wants hosted under key: the topic and partition, or nil.
func (b *Broker) wantedLocked(key partKey) (*metadata.Topic, *metadata.Partition) {
	t := b.host.want.Topic(key.topic)
	if t == nil {
		return nil, nil
	}
	p := t.Partition(key.partition)
	if p == nil || !p.HasReplica(b.cfg.NodeID) {
		return nil, nil
	}
	return t, p
}

// syncLocked compares key's hosted state with the image's and acts: updates in memory
// at once, disk work queued. hostMu is held.
func (b *Broker) syncLocked(key partKey) {
	if b.host.busy[key] || b.host.stopped {
		return // the job under way ends with another sync
	}
	h := b.hosted.Load()
	p, id, _ := h.get(key)
	mt, mp := b.wantedLocked(key)
	switch {
	case p != nil && (mt == nil || mt.ID != id):
		// Hosted, but not (or no longer for this topic ID) wanted: unpublish, delete.
		next := h.clone()
		next.set(key, id, 0, nil, false)
		b.hosted.Store(next)
		b.unfollowLocked(key)
		b.enqueueLocked(hostJob{key: key, p: p})
	case p != nil && !p.Replicated() && replicated(mp):
		// Opened as a single replica, now placed on more brokers: closed and opened
		// again as a replica (replicas.go keeps its high watermark).
		next := h.clone()
		next.set(key, id, 0, nil, false)
		b.hosted.Store(next)
		b.enqueueLocked(hostJob{key: key, t: describeTopic(mt), p: p})
	case p != nil && p.Replicated():
		// A replica takes the role the image gives it (replicas.go).
		leading := b.driveReplicaLocked(key, id, p, mp)
		if _, _, was := h.get(key); was != leading {
			next := h.clone()
			next.set(key, id, mt.NumPartitions(), p, leading)
			b.hosted.Store(next)
		}
	case p != nil:
		leading := mp.Leader == b.cfg.NodeID
		if leading && mp.LeaderEpoch > p.LeaderEpoch() {
			if err := p.TakeLeaderEpoch(mp.LeaderEpoch); err != nil {
				b.logger.Error("become leader", "topic", key.topic, "partition", key.partition, "err", err)
			}
		}
		if _, _, was := h.get(key); was != leading {
			next := h.clone()
			next.set(key, id, mt.NumPartitions(), p, leading)
			b.hosted.Store(next)
		}
	case mt != nil:
		if _, failed := h.failed[key]; failed {
			return // its log dir is offline until the broker restarts
		}
		b.enqueueLocked(hostJob{key: key, t: describeTopic(mt)})
	default:
		if _, failed := h.failed[key]; failed {
			next := h.clone()
			delete(next.failed, key)
			b.hosted.Store(next)
		}
	}
}

func (b *Broker) enqueueLocked(j hostJob) {
	b.host.busy[j.key] = true
	b.host.queue = append(b.host.queue, j)
	select {
	case b.host.wake <- struct{}{}:
	default:
	}
}

// changedLocked wakes whoever waits for the hosted state.
func (b *Broker) changedLocked() {
	close(b.host.changed)
	b.host.changed = make(chan struct{})
	select {
	case b.host.coordSig <- struct{}{}:
	default:
	}
}

// hostWorker runs jobs until the hoster stops.
func (b *Broker) hostWorker() {
	defer b.host.workers.Done()
	for {
		b.host.mu.Lock()
		for len(b.host.queue) == 0 && !b.host.stopped {
			b.host.mu.Unlock()
			if _, ok := <-b.host.wake; !ok {
				return
			}
			b.host.mu.Lock()
		}
		if b.host.stopped {
			b.host.mu.Unlock()
			return
		}
		j := b.host.queue[0]
		b.host.queue = b.host.queue[1:]
		if len(b.host.queue) > 0 { // pass the wake on
			select {
			case b.host.wake <- struct{}{}:
			default:
			}
		}
		b.host.mu.Unlock()
		b.runJob(j)
	}
}

// runJob does one job's disk work, then records its outcome and syncs its key again.
func (b *Broker) runJob(j hostJob) {
	if j.p != nil && j.t != nil {
		b.closeToReopen(j.key, j.p)
	} else if j.p != nil {
		b.host.placerMu.Lock()
		if pl := b.host.placer; pl != nil {
			pl.removed(dirOf(j.p))
		}
		b.host.placerMu.Unlock()
		err := j.p.Delete()
		if err != nil {
			b.logger.Error("delete a partition this node no longer hosts", "topic", j.key.topic, "partition", j.key.partition, "err", err)
		} else {
			b.logger.Info("deleted partition", "topic", j.key.topic, "partition", j.key.partition)
		}
		b.jobDone(j.key, nil, nil, "", nil)
		return
	}
	pl, err := b.newPlacer()
	var (
		p   *partition.Partition
		dir string
	)
	if err == nil {
		// The leader epoch it opens at is the image's when it opens; a later election
		// reaches it through the sync after the job.
		epoch := int32(0)
		repl := false
		b.host.mu.Lock()
		if _, mp := b.wantedLocked(j.key); mp != nil {
			epoch, repl = mp.LeaderEpoch, replicated(mp)
		}
		b.host.mu.Unlock()
		if !repl {
			b.dropCarried(j.key) // the image went back to one replica meanwhile
		}
		p, dir, err = b.openPartition(j.t, j.key.partition, epoch, repl, pl)
	}
	b.jobDone(j.key, j.t, p, dir, storageError(err))
}

// jobDone records a job's outcome: an opened partition is hosted (the sync that follows
// deletes it again if the image moved on), a failure is kept (and takes its log dir
// offline); then key is synced with the image again.
func (b *Broker) jobDone(key partKey, t *TopicDesc, p *partition.Partition, dir string, err error) {
	b.host.mu.Lock()
	defer b.host.mu.Unlock()
	delete(b.host.busy, key)
	h := b.hosted.Load()
	switch {
	case err != nil:
		next := h.clone()
		next.failed[key] = err
		b.hosted.Store(next)
		b.openFailedLocked(key, dir, err)
	case p != nil:
		if !b.reconciled.Load() {
			// Many partitions take a while (a start): say how far it got.
			b.host.opened++
			if now := b.now(); now.Sub(b.host.lastReport) >= progressEvery {
				b.host.lastReport = now
				b.logger.Info("opening partitions", "opened", b.host.opened, "queued", len(b.host.queue))
			}
		}
		_, mp := b.wantedLocked(key)
		next := h.clone()
		delete(next.failed, key)
		// A replica leads once the sync below gives it the role.
		next.set(key, t.ID, t.Partitions, p, mp != nil && mp.Leader == b.cfg.NodeID && !p.Replicated())
		b.hosted.Store(next)
	}
	b.syncLocked(key)
	b.changedLocked()
}

// openFailedLocked handles a partition that could not be opened: at start the start
// fails; later its log dir goes offline.
func (b *Broker) openFailedLocked(key partKey, dir string, err error) {
	if !b.reconciled.Load() {
		if b.host.startErr == nil {
			b.host.startErr = fmt.Errorf("open partition %s-%d: %w", key.topic, key.partition, err)
		}
		return
	}
	b.logger.Error("partition could not be opened; its log dir goes offline", "topic", key.topic, "partition", key.partition, "dir", dir, "err", err)
	if ds := b.dirState(dir); ds != nil {
		ds.Fail(fmt.Errorf("open partition %s-%d: %w", key.topic, key.partition, err))
	}
}

// hostIdle reports whether no job is queued or under way, and a channel closed at the
// next change.
func (b *Broker) hostIdle() (bool, <-chan struct{}) {
	b.host.mu.Lock()
	defer b.host.mu.Unlock()
	return len(b.host.busy) == 0, b.host.changed
}

// awaitHosted waits, for at most the request timeout, until a change of the topics
// names, committed in the image at index, is carried out here: their partitions placed
// on this node open (or failed), or, for topics the image no longer has, deleted. A
// client of this node then finds them served. The change is committed either way; past
// the wait its partitions answer NOT_LEADER_OR_FOLLOWER (retriable) until they open.
func (b *Broker) awaitHosted(ctx context.Context, index uint64, names ...string) {
	ctx, cancel := context.WithTimeout(ctx, b.requestTimeout())
	defer cancel()
	err := b.waitReconciled(ctx, index)
	for err == nil && b.cfg.IsBroker() {
		b.host.mu.Lock()
		busy := false
		for k := range b.host.busy {
			busy = busy || slices.Contains(names, k.topic)
		}
		ch := b.host.changed
		b.host.mu.Unlock()
		if !busy && b.carriedOut(b.Image(), names) {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-b.stop:
			return
		}
	}
	if err != nil && !errors.Is(err, ErrShuttingDown) {
		b.logger.Warn("a metadata change is committed but not yet carried out on this node", "topics", names, "err", err)
	}
}

// carriedOut reports whether the hosted state matches im for the topics names.
func (b *Broker) carriedOut(im *metadata.Image, names []string) bool {
	h := b.hosted.Load()
	for _, n := range names {
		t := im.Topic(n)
		if t == nil {
			if h.topics[n] != nil {
				return false
			}
			continue
		}
		for i := range t.Partitions {
			if !t.Partitions[i].HasReplica(b.cfg.NodeID) {
				continue
			}
			k := partKey{n, int32(i)}
			p, id, _ := h.get(k)
			if _, failed := h.failed[k]; !failed && (p == nil || id != t.ID) {
				return false
			}
		}
	}
	return true
}

// OffsetsLeadership is told when this node starts or stops leading (and hosting) a
// partition of __consumer_offsets: the group coordinator loads or unloads its groups.
type OffsetsLeadership func(partition int32, leading bool) error

// SetOffsetsLeadership installs fn and tells it at once of every partition of
// __consumer_offsets this node leads now, returning the first error; from then on fn is
// told, in order, of every partition this node starts or stops leading (its errors are
// logged).
func (b *Broker) SetOffsetsLeadership(fn OffsetsLeadership) error {
	b.coordMu.Lock()
	defer b.coordMu.Unlock()
	b.coordHook = fn
	return b.tellLocked()
}

// coordinate tells the hook of leadership changes until the publisher stops.
func (b *Broker) coordinate() {
	defer b.host.workers.Done()
	for {
		select {
		case <-b.pubStop:
			return
		case <-b.host.coordSig:
		}
		b.coordMu.Lock()
		if err := b.tellLocked(); err != nil {
			b.logger.Error("group coordination did not follow the leadership of __consumer_offsets", "err", err)
		}
		b.coordMu.Unlock()
	}
}

// tellLocked tells the hook the difference between the __consumer_offsets partitions
// this node leads and those it told it of; coordMu is held.
func (b *Broker) tellLocked() error {
	if b.coordHook == nil {
		return nil
	}
	if b.coordTold == nil {
		b.coordTold = map[int32]*partition.Partition{}
	}
	var errs []error
	led := ledOffsets(b.hosted.Load())
	for _, p := range slices.Sorted(maps.Keys(b.coordTold)) {
		if led[p] != b.coordTold[p] {
			if err := b.coordHook(p, false); err != nil {
				errs = append(errs, err)
			}
			delete(b.coordTold, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(led)) {
		if b.coordTold[p] == nil {
			if err := b.coordHook(p, true); err != nil {
				errs = append(errs, err)
			}
			b.coordTold[p] = led[p]
		}
	}
	return errors.Join(errs...)
}

// ledOffsets returns the partitions of __consumer_offsets h leads.
func ledOffsets(h *hostedState) map[int32]*partition.Partition {
	out := map[int32]*partition.Partition{}
	if t := h.topics[ConsumerOffsetsTopic]; t != nil {
		for i, p := range t.Partitions {
			if p != nil && t.leading[i] {
				out[int32(i)] = p
			}
		}
	}
	return out
}

// setAsideStrays moves aside the partition directories of the log dirs that im does not
// place on this node (stray.go). It runs at start, once the image is hosted, and only
// where this node's image is the whole truth (a quorum of one): a node of a larger quorum
// may start behind the leader, and a directory of a topic it has not learnt of yet is not
// stray; it is left alone and used when its topic arrives (partition.metadata names it).
func (b *Broker) setAsideStrays(im *metadata.Image) error {
	for _, d := range b.cfg.LogDirs {
		entries, err := b.fsys.ReadDir(d)
		if err != nil {
			return fmt.Errorf("read log dir %s: %w", d, err)
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == metadataDirName {
				continue
			}
			topic, idx, ok := parsePartitionDir(e.Name())
			if !ok {
				continue
			}
			why := "the metadata has no topic " + topic
			if t := im.Topic(topic); t != nil {
				p := t.Partition(idx)
				if p != nil && p.HasReplica(b.cfg.NodeID) {
					continue
				}
				why = fmt.Sprintf("topic %s has %d partitions in the metadata", topic, t.NumPartitions())
				if p != nil {
					why = fmt.Sprintf("the metadata places partition %d of topic %s on %v, not on this node", idx, topic, p.Replicas())
				}
			}
			if err := b.setAside(d, e.Name(), why); err != nil {
				return err
			}
		}
	}
	return nil
}

func parsePartitionDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

// progressEvery is how often a long start reports how many partitions it opened.
const progressEvery = 10 * time.Second
