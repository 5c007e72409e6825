package quorum

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
)

// Config configures a quorum member. Fields named after a Kafka key take that key's value;
// the others are Vltava's own limits, named vltava.quorum.* for the config table. Zero
// values take the defaults in DefaultConfig.
type Config struct {
	// NodeID is node.id. Raft ids are the node ids.
	NodeID uint64
	// ClusterID is the cluster's id (meta.properties, cluster.id). Frames carry it, and a
	// member refuses frames from another cluster: raft trusts its peers' messages.
	ClusterID string
	// Voters is controller.quorum.voters: the static quorum's voters by node id, each
	// with its controller listener address (host:port). A voter listed here bootstraps
	// the log with exactly this voter set on its first start (every voter with the same
	// one), after which the log is authoritative: later edits of the list change no
	// membership (use AddObserver, PromoteToVoter and RemoveNode). Every node, observers
	// included, learns the voters' addresses from it.
	Voters map[uint64]string
	// Observer is true for a node that is not a controller (process.roles=broker): it
	// bootstraps nothing and waits to be added (AddObserver), as a raft learner that
	// replicates the log but never votes. A node not listed in Voters is one too.
	Observer bool
	// ObserverTimeout is broker.session.timeout.ms (9000 ms): the leader removes an
	// observer it has not heard from for this long (observe.go); 0 never does.
	ObserverTimeout time.Duration
	// BootstrapState is the state machine's bytes a voter's new log starts from: the
	// state of its bootstrap snapshot at index 1, term 1, which the state machine is
	// restored from (empty: the empty state). It is used only when the log is created,
	// by a voter; every voter of a static quorum must be given the same bytes, as they
	// bootstrap the same snapshot. Vltava uses it to start a single node's quorum from
	// the metadata it kept before it had one.
	BootstrapState []byte

	// ElectionTimeout is controller.quorum.election.timeout.ms (1000 ms); FetchTimeout is
	// controller.quorum.fetch.timeout.ms (2000 ms). A follower that hears nothing from a
	// leader for a random time in [E, 2E) campaigns, and a leader that hears from no
	// majority for E steps down, where E = min(ElectionTimeout, FetchTimeout/2): with
	// Kafka's defaults a leader's failure is noticed within 1 to 2 s, inside Kafka's
	// fetch timeout. Leaders heartbeat every E/10.
	ElectionTimeout time.Duration
	FetchTimeout    time.Duration
	// TickInterval is raft's logical clock period (vltava.quorum.tick.ms), default E/10.
	TickInterval time.Duration

	// SnapshotMaxBytes is metadata.log.max.record.bytes.between.snapshots (20 MiB): a
	// snapshot is taken once the entries applied since the last one hold this many bytes.
	SnapshotMaxBytes int64
	// SnapshotInterval is metadata.log.max.snapshot.interval.ms (1 hour): a snapshot is
	// taken this long after the last one if any entry was applied since.
	SnapshotInterval time.Duration
	// SnapshotCatchUpEntries (vltava.quorum.snapshot.catchup.entries, 1000) entries
	// before a new snapshot stay in memory so a follower that lags by fewer gets entries,
	// not the whole snapshot.
	SnapshotCatchUpEntries uint64

	// MaxEntryBytes (vltava.quorum.max.entry.bytes, 8 MiB, KRaft's largest batch) bounds
	// one proposal.
	MaxEntryBytes int
	// MaxFrameBytes (vltava.quorum.max.frame.bytes, 100 MiB, socket.request.max.bytes's
	// default) bounds one transport frame, which must hold a whole snapshot: a larger
	// snapshot cannot be sent.
	MaxFrameBytes int
	// MaxUncommittedBytes (vltava.quorum.max.uncommitted.bytes, 64 MiB) bounds the entry
	// bytes a leader holds uncommitted; proposals beyond it are refused (ErrBusy).
	MaxUncommittedBytes uint64
	// MaxPendingProposals (vltava.quorum.max.pending.proposals, 4096) bounds proposals
	// queued for the loop; Propose waits for room until its context ends.
	MaxPendingProposals int
	// SendQueueMessages (vltava.quorum.send.queue.messages, 1024) bounds each peer's
	// outbound queue; messages beyond it are dropped (raft resends).
	SendQueueMessages int
	// ReceiveBufferBytes (vltava.quorum.receive.buffer.bytes, 2 x MaxFrameBytes) bounds
	// the decoded inbound messages waiting for the loop; frames beyond it are dropped.
	ReceiveBufferBytes int
	// RetryBackoff is controller.quorum.retry.backoff.ms (20 ms): the first reconnect
	// delay, doubled per failure up to ReconnectBackoffMax (reconnect.backoff.max.ms,
	// 1000 ms). RequestTimeout is controller.quorum.request.timeout.ms (2000 ms): the
	// bound on dialling a peer and writing one frame to it.
	RetryBackoff        time.Duration
	ReconnectBackoffMax time.Duration
	RequestTimeout      time.Duration
}

// DefaultConfig returns the defaults: Kafka's for Kafka's keys.
func DefaultConfig() Config {
	return Config{
		ElectionTimeout:        1000 * time.Millisecond,
		FetchTimeout:           2000 * time.Millisecond,
		SnapshotMaxBytes:       20 << 20,
		SnapshotInterval:       time.Hour,
		SnapshotCatchUpEntries: 1000,
		MaxEntryBytes:          8 << 20,
		MaxFrameBytes:          100 << 20,
		MaxUncommittedBytes:    64 << 20,
		MaxPendingProposals:    4096,
		SendQueueMessages:      1024,
		RetryBackoff:           20 * time.Millisecond,
		ReconnectBackoffMax:    time.Second,
		RequestTimeout:         2000 * time.Millisecond,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the result.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.ElectionTimeout, d.ElectionTimeout)
	setDur(&c.FetchTimeout, d.FetchTimeout)
	setDur(&c.SnapshotInterval, d.SnapshotInterval)
	setDur(&c.RetryBackoff, d.RetryBackoff)
	setDur(&c.ReconnectBackoffMax, d.ReconnectBackoffMax)
	setDur(&c.RequestTimeout, d.RequestTimeout)
	if c.SnapshotMaxBytes == 0 {
		c.SnapshotMaxBytes = d.SnapshotMaxBytes
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = d.SnapshotCatchUpEntries
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = d.MaxEntryBytes
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxUncommittedBytes == 0 {
		c.MaxUncommittedBytes = d.MaxUncommittedBytes
	}
	if c.MaxPendingProposals == 0 {
		c.MaxPendingProposals = d.MaxPendingProposals
	}
	if c.SendQueueMessages == 0 {
		c.SendQueueMessages = d.SendQueueMessages
	}
	if c.ReceiveBufferBytes == 0 {
		c.ReceiveBufferBytes = 2 * c.MaxFrameBytes
	}
	if c.TickInterval == 0 {
		c.TickInterval = c.electionTimeout() / 10
	}
	return c, c.validate()
}

// electionTimeout is E in the ElectionTimeout comment.
func (c Config) electionTimeout() time.Duration { return min(c.ElectionTimeout, c.FetchTimeout/2) }

// ticks returns raft's election and heartbeat ticks.
func (c Config) ticks() (election, heartbeat int) {
	election = max(int(c.electionTimeout()/c.TickInterval), 2)
	return election, max(election/10, 1)
}

func (c Config) validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.NodeID == 0 || c.NodeID == raft.LocalAppendThread || c.NodeID == raft.LocalApplyThread {
		bad("node.id", "%d cannot be a quorum member's id", c.NodeID)
	}
	if len(c.ClusterID) > maxClusterIDLen {
		bad("cluster.id", "%d bytes, at most %d", len(c.ClusterID), maxClusterIDLen)
	}
	if len(c.Voters) == 0 {
		bad("controller.quorum.voters", "empty: a static voter set is needed (dynamic bootstrap through controller.quorum.bootstrap.servers is not supported yet)")
	}
	if err := checkPeers(c.Voters); err != nil {
		bad("controller.quorum.voters", "%v", err)
	}
	if c.ElectionTimeout < 0 || c.FetchTimeout < 0 || c.TickInterval < 0 {
		bad("controller.quorum.election.timeout.ms", "timeouts must be positive")
	}
	if c.TickInterval > 0 && c.electionTimeout() < 2*c.TickInterval {
		bad("controller.quorum.election.timeout.ms", "%v is less than two ticks of %v", c.electionTimeout(), c.TickInterval)
	}
	if c.SnapshotMaxBytes < 1 {
		bad("metadata.log.max.record.bytes.between.snapshots", "%d is below 1", c.SnapshotMaxBytes)
	}
	if c.SnapshotInterval < 0 {
		bad("metadata.log.max.snapshot.interval.ms", "negative")
	}
	if c.MaxEntryBytes < 1 || c.MaxEntryBytes > walMaxRecordBytes-entryBodyMin {
		bad("vltava.quorum.max.entry.bytes", "%d is not in [1, %d]", c.MaxEntryBytes, walMaxRecordBytes-entryBodyMin)
	}
	if c.MaxFrameBytes < c.MaxEntryBytes+4096 {
		bad("vltava.quorum.max.frame.bytes", "%d does not hold an entry of vltava.quorum.max.entry.bytes (%d) with its framing", c.MaxFrameBytes, c.MaxEntryBytes)
	}
	if c.MaxPendingProposals < 1 || c.SendQueueMessages < 1 || c.ReceiveBufferBytes < c.MaxFrameBytes {
		bad("vltava.quorum", "queue bounds must be positive and the receive buffer must hold one frame")
	}
	return errors.Join(errs...)
}

// isVoterAtBootstrap reports whether this node bootstraps the voter set.
func (c Config) isVoterAtBootstrap() bool {
	_, listed := c.Voters[c.NodeID]
	return listed && !c.Observer
}
