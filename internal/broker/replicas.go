package broker

// Replicated partitions on this node: a partition the image places on more than one
// broker is opened as a replica (partition.OpenReplica, its high watermark from the
// log dir's replication-offset-checkpoint) and driven by the image, as Kafka's
// ReplicaManager applies LeaderAndIsr from metadata deltas:
//
//   - the image names this node leader: BecomeLeader with the image's leader epoch,
//     partition epoch, replicas and ISR, and stop fetching it;
//   - another node leads it: BecomeFollower, and the replication manager fetches it
//     from the leader (its endpoint is the leader's registration's listener named
//     inter.broker.listener.name);
//   - no leader: BecomeFollower of nobody, fetching nothing.
//
// A partition with one replica keeps the single node's path (partition.Open, its high
// watermark the log end). Replicas are ticked (acks=all deadlines, ISR lag) every
// replica.lag.time.max.ms / 2 and their high watermarks checkpointed every
// replica.high.watermark.checkpoint.interval.ms and at close. ISR changes go to the
// controller as AlterPartition through isrSender (replica_isr.go).

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/replication"
)

// replicaHost is the node's replication state.
type replicaHost struct {
	mgr       *replication.Manager
	transport *brokerTransport
	isr       *isrQueue
	stop      chan struct{}
	done      chan struct{}

	hwMu   sync.Mutex
	hwRead map[string]map[partition.TopicPartition]int64 // checkpoint read per log dir, at first use
	hwOut  map[string]*partition.HighWatermarkCheckpoint // writer per log dir
	// carried are the high watermarks of single replicas closed to reopen as replicas.
	carried map[partKey]int64
	// throttles are the replication quotas (replication/throttle.go).
	throttles *replication.Throttles
}

func (b *Broker) initReplicas() {
	r := &b.replicas
	r.transport = &brokerTransport{b: b, clients: map[int32]*transportClient{}}
	r.throttles = b.newThrottles()
	r.mgr = replication.NewManager(b.replicationConfig(), r.transport, b.now)
	r.isr = newISRQueue(b)
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	r.hwRead = map[string]map[partition.TopicPartition]int64{}
	r.hwOut = map[string]*partition.HighWatermarkCheckpoint{}
	r.carried = map[partKey]int64{}
	go b.replicaLoop()
}

// stopReplicas stops fetching, the ISR sender and the loop, and writes the high
// watermark checkpoints a last time; the partitions are closed after it.
func (b *Broker) stopReplicas() {
	r := &b.replicas
	if r.mgr == nil {
		return
	}
	close(r.stop)
	<-r.done
	r.mgr.Close()
	r.isr.close()
	r.transport.close()
	b.checkpointHighWatermarks()
}

func (b *Broker) replicationConfig() replication.Config {
	v := func(k string, def int) int {
		n, err := strconv.Atoi(b.cfg.Values[k])
		if err != nil {
			return def
		}
		return n
	}
	return replication.Config{
		LocalID:           b.cfg.NodeID,
		BrokerEpoch:       -1,
		MaxWait:           time.Duration(v("replica.fetch.wait.max.ms", 500)) * time.Millisecond,
		MinBytes:          int32(v("replica.fetch.min.bytes", 1)),
		MaxBytes:          int32(v("replica.fetch.response.max.bytes", 10<<20)),
		PartitionMaxBytes: int32(v("replica.fetch.max.bytes", 1<<20)),
		Backoff:           time.Duration(v("replica.fetch.backoff.ms", 1000)) * time.Millisecond,
		Logger:            b.logger.With("component", "replica-fetcher"),
		Throttle:          b.replicas.throttles.FollowerSide(),
	}
}

// newThrottles makes the replication quotas from the static configuration; the image's
// dynamic configs reach them in reconcile (followWithEpoch).
func (b *Broker) newThrottles() *replication.Throttles {
	v := func(k string, def int64) int64 {
		n, err := strconv.ParseInt(b.cfg.Values[k], 10, 64)
		if err != nil || n < 0 {
			return def
		}
		return n
	}
	return replication.NewThrottles(b.cfg.NodeID, int(v(replication.QuotaWindowNumKey, 11)),
		time.Duration(v(replication.QuotaWindowSizeKey, 1))*time.Second,
		v(replication.LeaderThrottledRateKey, replication.Unlimited), v(replication.FollowerThrottledRateKey, replication.Unlimited))
}

// ReplicationThrottles are this broker's replication quotas (nil before the replicas
// start).
func (b *Broker) ReplicationThrottles() *replication.Throttles { return b.replicas.throttles }

func (b *Broker) replicaLagTimeMax() time.Duration {
	if d := b.cfg.ReplicaLagTimeMax; d > 0 {
		return d
	}
	return 30 * time.Second
}

func (b *Broker) hwCheckpointInterval() time.Duration {
	n, err := strconv.ParseInt(b.cfg.Values["replica.high.watermark.checkpoint.interval.ms"], 10, 64)
	if err != nil || n <= 0 {
		n = 5000
	}
	return time.Duration(n) * time.Millisecond
}

// replicaLoop ticks the replicas and checkpoints their high watermarks until stopReplicas.
func (b *Broker) replicaLoop() {
	r := &b.replicas
	defer close(r.done)
	// Kafka checks the ISR every replica.lag.time.max.ms / 2; acks=all deadlines are
	// also enforced by the waiting request's own timer, so this bounds only the ISR.
	tick := time.NewTicker(max(b.replicaLagTimeMax()/2, 10*time.Millisecond))
	defer tick.Stop()
	cp := time.NewTicker(b.hwCheckpointInterval())
	defer cp.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			b.forEachPartition(func(p *partition.Partition) { p.Tick() })
		case <-cp.C:
			b.checkpointHighWatermarks()
		}
	}
}

// checkpointHighWatermarks writes every log dir's replication-offset-checkpoint.
func (b *Broker) checkpointHighWatermarks() {
	byDir := map[string][]*partition.Partition{}
	b.forEachPartition(func(p *partition.Partition) {
		if p.Replicated() {
			d := dirOf(p)
			byDir[d] = append(byDir[d], p)
		}
	})
	r := &b.replicas
	r.hwMu.Lock()
	defer r.hwMu.Unlock()
	// A dir whose last replicated partition went still gets its (now empty) file.
	for d := range r.hwOut {
		if _, ok := byDir[d]; !ok {
			byDir[d] = nil
		}
	}
	for d, ps := range byDir {
		if b.LogDirErr(d) != nil {
			continue
		}
		w := r.hwOut[d]
		if w == nil {
			w = partition.NewHighWatermarkCheckpoint(b.fsys, d)
			r.hwOut[d] = w
		}
		if err := w.Write(ps); err != nil {
			b.logger.Error("high watermark checkpoint", "dir", d, "err", err)
		}
	}
}

// dirOf is the log dir holding p's partition directory.
func dirOf(p *partition.Partition) string { return filepath.Dir(p.Log().Dir()) }

// closeToReopen closes a partition opened with one replica that the image now places
// on more brokers; it opens again as a replica with the high watermark it had: with one
// replica everything up to it was committed.
func (b *Broker) closeToReopen(key partKey, p *partition.Partition) {
	hw := p.HighWatermark()
	if err := p.Close(); err != nil {
		b.logger.Error("close a partition to reopen it as a replica", "topic", key.topic, "partition", key.partition, "err", err)
	}
	r := &b.replicas
	r.hwMu.Lock()
	r.carried[key] = hw
	r.hwMu.Unlock()
	b.logger.Info("reopening partition as a replica", "topic", key.topic, "partition", key.partition, "high_watermark", hw)
}

func (b *Broker) dropCarried(key partKey) {
	r := &b.replicas
	r.hwMu.Lock()
	delete(r.carried, key)
	r.hwMu.Unlock()
}

// checkpointedHW returns the high watermark the checkpoint of logDir has for the
// partition (or the one it had as a single replica, closeToReopen), or -1.
func (b *Broker) checkpointedHW(logDir, topic string, idx int32) int64 {
	r := &b.replicas
	r.hwMu.Lock()
	defer r.hwMu.Unlock()
	if hw, ok := r.carried[partKey{topic, idx}]; ok {
		delete(r.carried, partKey{topic, idx})
		return hw
	}
	hws, ok := r.hwRead[logDir]
	if !ok {
		var note string
		var err error
		hws, note, err = partition.ReadHighWatermarks(b.fsys, logDir)
		if err != nil {
			b.logger.Error("read the high watermark checkpoint; replicas of this dir start from their log start", "dir", logDir, "err", err)
		}
		if note != "" {
			b.logger.Warn("high watermark checkpoint", "dir", logDir, "note", note)
		}
		r.hwRead[logDir] = hws
	}
	return partition.CheckpointedHighWatermark(hws, topic, idx)
}

// replicaOptions are OpenReplica's for a partition of logDir.
func (b *Broker) replicaOptions(logDir, topic string, idx int32) partition.ReplicaOptions {
	n, err := strconv.Atoi(b.cfg.Values["vltava.replica.ack.waiters.max"])
	if err != nil {
		n = 0
	}
	key := partKey{topic, idx}
	return partition.ReplicaOptions{
		ReplicaConfig: partition.ReplicaConfig{
			LocalID:    b.cfg.NodeID,
			LagTimeMax: b.replicaLagTimeMax(),
			Brokers:    b.brokerState,
		},
		HighWatermark: b.checkpointedHW(logDir, topic, idx),
		MaxAckWaiters: n,
		SendISRChange: func(c partition.ISRChange) { b.replicas.isr.send(key, c) },
		ISRListener:   b.isrL,
	}
}

// brokerState is what the image says of a broker, for ISR eligibility.
func (b *Broker) brokerState(id int32) (partition.BrokerState, bool) {
	br := b.Image().Broker(id)
	if br == nil {
		return partition.BrokerState{}, false
	}
	return partition.BrokerState{Epoch: br.Epoch, Fenced: br.Fenced, InControlledShutdown: br.InControlledShutdown}, true
}

// replicated reports whether the image's partition has more than one replica: it is
// opened as a replica then.
func replicated(mp *metadata.Partition) bool { return mp != nil && len(mp.Replicas()) > 1 }

// driveReplicaLocked gives the replica p the role the image's mp says and starts or
// stops fetching it; it returns whether this node now leads it. hostMu is held.
func (b *Broker) driveReplicaLocked(key partKey, topicID [16]byte, p *partition.Partition, mp *metadata.Partition) bool {
	st := partition.LeaderAndISR{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch,
		Replicas: mp.Replicas(), ISR: mp.ISR()}
	rk := replication.Key{Topic: key.topic, Partition: key.partition}
	if mp.Leader == b.cfg.NodeID {
		b.replicas.mgr.Unfollow(rk)
		if _, err := p.BecomeLeader(st); err != nil {
			b.logger.Error("become leader", "topic", key.topic, "partition", key.partition, "leader_epoch", mp.LeaderEpoch, "err", err)
		}
		return p.Role() == partition.RoleLeader
	}
	accepted, _, err := p.BecomeFollower(st)
	if err != nil {
		b.logger.Error("become follower", "topic", key.topic, "partition", key.partition, "leader_epoch", mp.LeaderEpoch, "err", err)
	}
	if mp.Leader == metadata.NoLeader || !accepted && p.Role() != partition.RoleFollower {
		b.replicas.mgr.Unfollow(rk)
		return false
	}
	_, le, _, _ := p.ReplicaState()
	b.replicas.mgr.Follow(rk, topicID, p, mp.Leader, le)
	return false
}

// followWithEpoch gives the fetchers this broker's epoch from im's registration: a
// leader lets a follower into the ISR only if its fetches carry the epoch the metadata
// has for it (KIP-903).
func (b *Broker) followWithEpoch(im *metadata.Image) {
	if t := b.replicas.throttles; t != nil {
		t.Apply(im) // the throttle rates and lists follow the image too
	}
	if br := im.Broker(b.cfg.NodeID); br != nil && b.replicas.mgr != nil {
		b.replicas.mgr.SetBrokerEpoch(br.Epoch)
	}
}

// unfollowLocked stops fetching a partition this node stops hosting.
func (b *Broker) unfollowLocked(key partKey) {
	if b.replicas.mgr != nil {
		b.replicas.mgr.Unfollow(replication.Key{Topic: key.topic, Partition: key.partition})
	}
}

// brokerTransport sends a replica's requests to other brokers over the
// inter-broker listener, one client per broker (replication.Transport).
type brokerTransport struct {
	b *Broker

	mu      sync.Mutex
	clients map[int32]*transportClient
	fetches map[int32]*fetchConn // the followers' Fetch connections (fetchconn.go)
	closed  bool
}

type transportClient struct {
	addr string
	cl   *kgo.Client
}

// Request sends req to broker id at the endpoint its registration names.
func (t *brokerTransport) Request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := t.client(id)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("broker %d: no endpoint", id)
	}
	f, isFetch := req.(*kmsg.FetchRequest)
	if isFetch && f.ReplicaID < 0 {
		// The highest version both sides have is sent: before v15 the replica is
		// named by replica_id (from v15 it is not encoded), so a fetch to an older
		// broker is still a follower's, never a consumer's.
		f.ReplicaID = f.ReplicaState.ID
	}
	if isFetch {
		fc, err := t.fetchConn(id)
		if err != nil {
			return nil, err
		}
		return fc.request(ctx, f)
	}
	return seeds[0].Request(ctx, req)
}

// Release takes back the buffer a Fetch response from broker id holds
// (replication.Releaser): the Driver has applied it.
func (t *brokerTransport) Release(id int32, resp kmsg.Response) {
	t.mu.Lock()
	fc := t.fetches[id]
	t.mu.Unlock()
	if fc != nil {
		fc.release(resp)
	}
}

// fetchConn returns the Fetch connection to broker id, a new one if its endpoint
// changed.
func (t *brokerTransport) fetchConn(id int32) (*fetchConn, error) {
	addr, err := t.b.interBrokerAddr(id)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrShuttingDown
	}
	if fc := t.fetches[id]; fc != nil {
		if fc.addr == addr {
			return fc, nil
		}
		fc.close() // the broker registered again elsewhere
	}
	if t.fetches == nil {
		t.fetches = map[int32]*fetchConn{}
	}
	fc := newFetchConn(addr, fmt.Sprintf("vltava-replica-%d", t.b.cfg.NodeID), t.socketTimeout())
	t.fetches[id] = fc
	return fc, nil
}

// socketTimeout is replica.socket.timeout.ms: it bounds a request past its own wait (a
// fetch's max_wait_ms), so that a leader that stopped answering is given up on.
func (t *brokerTransport) socketTimeout() time.Duration {
	if n, err := strconv.Atoi(t.b.cfg.Values["replica.socket.timeout.ms"]); err == nil && n > 0 {
		return time.Duration(n) * time.Millisecond
	}
	return 30 * time.Second
}

func (t *brokerTransport) client(id int32) (*kgo.Client, error) {
	addr, err := t.b.interBrokerAddr(id)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrShuttingDown
	}
	if c := t.clients[id]; c != nil {
		if c.addr == addr {
			return c.cl, nil
		}
		c.cl.Close() // the broker registered again elsewhere
		delete(t.clients, id)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("vltava-replica-%d", t.b.cfg.NodeID)),
		kgo.RequestTimeoutOverhead(t.socketTimeout()))
	if err != nil {
		return nil, err
	}
	t.clients[id] = &transportClient{addr: addr, cl: cl}
	return cl, nil
}

func (t *brokerTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for id, c := range t.clients {
		c.cl.Close()
		delete(t.clients, id)
	}
	for id, fc := range t.fetches {
		fc.close()
		delete(t.fetches, id)
	}
}

// interBrokerAddr is broker id's host:port on inter.broker.listener.name.
func (b *Broker) interBrokerAddr(id int32) (string, error) {
	br := b.Image().Broker(id)
	if br == nil {
		return "", fmt.Errorf("broker %d is not registered", id)
	}
	name := b.cfg.InterBrokerListenerName
	l := br.Listener(name)
	if l == nil && name == "" && len(br.Listeners) > 0 {
		l = &br.Listeners[0]
	}
	if l == nil {
		return "", fmt.Errorf("broker %d has no listener %q (inter.broker.listener.name)", id, name)
	}
	return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), nil
}
