package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// A History is everything a battery run observed, in the order it happened:
// what each client asked and was answered, what the nemesis did, and what
// the final read found. The checker is a pure function of it, so a saved
// history can be checked again (`vltava-chaos check history.json`) and a
// test can plant an anomaly in one by hand.
//
// Times are durations since the run started (monotonic clock).
type History struct {
	Seed  uint64 `json:"seed"`
	Topic string `json:"topic"`
	Group string `json:"group"`
	Nodes int    `json:"nodes"`
	// Brokers is how many nodes of a cluster were registered brokers when
	// the workload's topic was created (its partitions are placed on
	// those).
	Brokers int `json:"brokers,omitempty"`
	// Replication and MinInsync are the workload topic's replication
	// factor and min.insync.replicas (0: the broker's default).
	Replication int      `json:"replication,omitempty"`
	MinInsync   int      `json:"min_insync,omitempty"`
	Writers     []Writer `json:"writers"`
	// FlushMessages is the topic's flush.messages: 1 means every
	// acknowledged batch was fsynced first, so a power loss (a torn tail)
	// may take only unacknowledged bytes.
	FlushMessages int64 `json:"flush_messages"`

	Writes  []Write  `json:"writes"`
	Polls   []Poll   `json:"polls"`
	Assigns []Assign `json:"assigns"`
	Commits []Commit `json:"commits"`
	Faults  []Fault  `json:"faults"`
	// Final is the read of every partition from every node after healing;
	// FinalEnds the end offset (high watermark) each read went up to.
	Final     []Read     `json:"final"`
	FinalEnds []FinalEnd `json:"final_ends"`
	// Replicas are each node's copies of the partitions, read from its data
	// dir after the nodes stopped (a cluster run), with their records in
	// ReplicaReads.
	Replicas     []ReplicaLog `json:"replicas,omitempty"`
	ReplicaReads []Read       `json:"replica_reads,omitempty"`
	// ReplicaBatches are the batches of those copies.
	ReplicaBatches []BatchSum  `json:"replica_batches,omitempty"`
	Committed      []Committed `json:"committed"` // the group's offsets fetched after healing
	End            Dur         `json:"end"`       // when the workload was told to stop

	// The metadata workload of a cluster run: its topic changes, each
	// node's view of its topics after the heal (MetaViewNodes: the nodes
	// whose views were read), and who each node said led the metadata
	// quorum in which epoch.
	MetaOps       []MetaOp      `json:"meta_ops,omitempty"`
	MetaViews     []TopicView   `json:"meta_views,omitempty"`
	MetaViewNodes []int         `json:"meta_view_nodes,omitempty"`
	Leaders       []LeaderClaim `json:"leaders,omitempty"`
}

// MetaOp is one topic creation or deletion of the metadata workload, sent
// through Node (whose client knew only it). TopicID and Partitions are what
// an acknowledged creation answered; an error leaves the outcome unknown.
type MetaOp struct {
	Op         string `json:"op"` // create or delete
	Topic      string `json:"topic"`
	Node       int    `json:"node"`
	Partitions int32  `json:"partitions,omitempty"`
	TopicID    string `json:"id,omitempty"`
	Invoke     Dur    `json:"invoke"`
	Complete   Dur    `json:"complete"`
	Err        string `json:"err,omitempty"`
}

// OK is true for an acknowledged operation.
func (o MetaOp) OK() bool { return o.Err == "" }

// TopicView is a topic as one node's Metadata answered after the heal.
type TopicView struct {
	Node       int    `json:"node"`
	Topic      string `json:"topic"`
	TopicID    string `json:"id"`
	Partitions int32  `json:"partitions"`
}

// LeaderClaim is an observation that Leader led the metadata quorum in
// Epoch (raft's term): from Node's own log when it won the election, or
// from Node's DescribeQuorum answer.
type LeaderClaim struct {
	Node   int    `json:"node"`
	Leader int    `json:"leader"`
	Epoch  int64  `json:"epoch"`
	Time   Dur    `json:"t"`
	Source string `json:"source"` // log or describe-quorum
}

// Dur is a time.Duration that reads as JSON nanoseconds.
type Dur = time.Duration

// Writer is one producer of the workload and the guarantees it asked for.
type Writer struct {
	ID         string `json:"id"`
	Acks       int16  `json:"acks"` // -1 (all) or 1
	Idempotent bool   `json:"idempotent"`
}

// Promised reports whether the configuration promises that this writer's
// acknowledged records are never lost, duplicated or reordered: acks=all
// with idempotence. acks=1 is the contrast: its anomalies are reported but
// allowed.
func (w Writer) Promised() bool { return w.Acks == -1 && w.Idempotent }

// Write is one record produced: Value is unique in the run ("<writer>-<seq>").
// Offset is the offset the broker acknowledged, or -1 when Err is set (the
// record's fate is then unknown: it may or may not be in the log).
type Write struct {
	Writer    string `json:"writer"`
	Seq       int64  `json:"seq"`
	Partition int32  `json:"p"`
	Value     string `json:"v"`
	Invoke    Dur    `json:"invoke"`
	Complete  Dur    `json:"complete"`
	Offset    int64  `json:"o"`
	Err       string `json:"err,omitempty"`
}

// OK is true for an acknowledged write.
func (w Write) OK() bool { return w.Err == "" }

// Record is one record as read.
type Record struct {
	Offset int64  `json:"o"`
	Value  string `json:"v"`
}

// Poll is the records one consumer received from one partition in one poll,
// in the order the client returned them.
type Poll struct {
	Consumer  string   `json:"consumer"`
	Time      Dur      `json:"t"`
	Partition int32    `json:"p"`
	Records   []Record `json:"records"`
}

// Assign is a consumer's partitions changing: Assigned true when it was
// given them, false when they were revoked or lost.
type Assign struct {
	Consumer   string  `json:"consumer"`
	Time       Dur     `json:"t"`
	Assigned   bool    `json:"assigned"`
	Partitions []int32 `json:"partitions"`
}

// Commit is one offset commit of one partition: Offset is the next offset
// to consume, as Kafka stores it.
type Commit struct {
	Consumer  string `json:"consumer"`
	Partition int32  `json:"p"`
	Offset    int64  `json:"o"`
	Invoke    Dur    `json:"invoke"`
	Complete  Dur    `json:"complete"`
	Err       string `json:"err,omitempty"`
}

// Read is one record of the final read, naming the node it came from (every
// replica is read once replication exists).
type Read struct {
	Node      int   `json:"node"`
	Partition int32 `json:"p"`
	Record
}

// FinalEnd is the end offset the final read of a partition on a node went up
// to, and the log start offset it began at.
type FinalEnd struct {
	Node      int   `json:"node"`
	Partition int32 `json:"p"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
}

// Committed is the group's committed offset of a partition fetched after
// healing (-1: none).
type Committed struct {
	Partition int32 `json:"p"`
	Offset    int64 `json:"o"`
}

// Fault is one nemesis action from start to heal.
type Fault struct {
	Kind   FaultKind `json:"kind"`
	Nodes  []int     `json:"nodes"`
	Start  Dur       `json:"start"`
	End    Dur       `json:"end"`
	Detail string    `json:"detail,omitempty"`
	Torn   *Torn     `json:"torn,omitempty"`
	Err    string    `json:"err,omitempty"` // the nemesis could not do it
}

// Torn says what a torn-tail fault destroyed. When Acked is set the tear
// reached acknowledged bytes on purpose: every record of Partition from
// FromOffset on that was acknowledged before the fault is expected lost.
type Torn struct {
	Node       int    `json:"node"`
	Partition  int32  `json:"p"`
	Segment    string `json:"segment"`
	Cut        int64  `json:"cut"`         // file position the damage starts at
	Bytes      int64  `json:"bytes"`       // bytes removed, overwritten or appended
	Mode       string `json:"mode"`        // truncate, corrupt or append
	FromOffset int64  `json:"from_offset"` // first offset of the first damaged batch (-1: none)
	Acked      bool   `json:"acked"`
}

// Recorder collects a history from concurrent clients.
type Recorder struct {
	start time.Time

	mu sync.Mutex
	h  History
}

// NewRecorder starts the clock of a history.
func NewRecorder(h History) *Recorder { return &Recorder{start: time.Now(), h: h} }

// Now is the time since the recorder started.
func (r *Recorder) Now() Dur { return time.Since(r.start) }

// Start is the wall-clock time the recorder's clock counts from.
func (r *Recorder) Start() time.Time { return r.start }

// Do runs f with the history locked.
func (r *Recorder) Do(f func(h *History)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.h)
}

// Snapshot returns a copy of the history with every list ordered by time.
func (r *Recorder) Snapshot() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.h
	h.Writes = append([]Write(nil), h.Writes...)
	h.Polls = append([]Poll(nil), h.Polls...)
	h.Assigns = append([]Assign(nil), h.Assigns...)
	h.Commits = append([]Commit(nil), h.Commits...)
	h.Faults = append([]Fault(nil), h.Faults...)
	h.Final = append([]Read(nil), h.Final...)
	h.FinalEnds = append([]FinalEnd(nil), h.FinalEnds...)
	h.Committed = append([]Committed(nil), h.Committed...)
	h.Replicas = append([]ReplicaLog(nil), h.Replicas...)
	h.ReplicaReads = append([]Read(nil), h.ReplicaReads...)
	h.ReplicaBatches = append([]BatchSum(nil), h.ReplicaBatches...)
	h.MetaOps = append([]MetaOp(nil), h.MetaOps...)
	h.MetaViews = append([]TopicView(nil), h.MetaViews...)
	h.MetaViewNodes = append([]int(nil), h.MetaViewNodes...)
	h.Leaders = append([]LeaderClaim(nil), h.Leaders...)
	h.sort()
	return h
}

// sort orders every list by time (stable, so ties keep their recording
// order).
func (h *History) sort() {
	sort.SliceStable(h.Writes, func(i, j int) bool { return h.Writes[i].Invoke < h.Writes[j].Invoke })
	sort.SliceStable(h.Polls, func(i, j int) bool { return h.Polls[i].Time < h.Polls[j].Time })
	sort.SliceStable(h.Assigns, func(i, j int) bool { return h.Assigns[i].Time < h.Assigns[j].Time })
	sort.SliceStable(h.Commits, func(i, j int) bool { return h.Commits[i].Complete < h.Commits[j].Complete })
	sort.SliceStable(h.Faults, func(i, j int) bool { return h.Faults[i].Start < h.Faults[j].Start })
	sort.SliceStable(h.MetaOps, func(i, j int) bool { return h.MetaOps[i].Invoke < h.MetaOps[j].Invoke })
	sort.SliceStable(h.Leaders, func(i, j int) bool { return h.Leaders[i].Time < h.Leaders[j].Time })
}

// Save writes the history as JSON.
func (h *History) Save(path string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LoadHistory reads a history saved by Save.
func LoadHistory(path string) (History, error) {
	var h History
	b, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	h.sort()
	return h, nil
}
