// Package partition is one replica of one partition: its log, leader epoch, high
// watermark, log start offset, producer state for idempotence, and the waiters of
// long-poll fetches. It validates and places batches; it knows nothing of the network
// or of other partitions. With one node the leader is the whole ISR, so the high
// watermark is the log end offset; replication will move it on follower fetches.
package partition

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// Errors returned by Append besides the producer-state errors and batch's.
var (
	ErrInvalidTimestamp = errors.New("record timestamp out of range")
	ErrInvalidRecord    = errors.New("invalid record")
	ErrClosed           = errors.New("partition closed")
)

// Config is the part of a topic's configuration that the partition applies on append.
type Config struct {
	MaxMessageBytes   int32
	MinInsyncReplicas int32
	// Compacted topics need a key on every record.
	Compacted bool
	// MaxDecompressed bounds what one compressed batch may decompress to: its records
	// are streamed and checked on append (MESSAGE_TOO_LARGE beyond).
	MaxDecompressed int
	LogAppendTime   bool // message.timestamp.type=LogAppendTime
	// message.timestamp.before.max.ms and after.max.ms; kept in milliseconds because
	// Kafka's default (Long.MAX_VALUE) does not fit a time.Duration.
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
}

// Partition is one partition replica.
type Partition struct {
	Topic string
	Index int32

	log *log.Log
	now func() time.Time
	cfg atomic.Pointer[Config]

	highWatermark atomic.Int64

	// mu serialises appends and guards the producer state and leader epoch.
	mu          sync.Mutex
	producers   map[int64]*producerEntry
	expiration  time.Duration // producer.id.expiration.ms as last given; 0: none yet
	snapshotMax int           // snapshotMax (tests lower it)
	pendingBuf  []*appendOp   // placeAll's scratch (combine.go)
	batchBuf    []batch.Batch // writePending's scratch
	leaderEpoch int32
	closed      bool

	// qmu guards the appends queued for combining (combine.go); placing is set while
	// one appender places the queue.
	qmu     sync.Mutex
	queue   []*appendOp
	placing bool

	snapBase    atomic.Int64 // active segment base at the last rolling snapshot (rolling.go)
	rebuiltFrom int64        // where Open began reading batches for producer state (tests)
	loadNote    string       // what Open could not use of the producer snapshots, and why (under mu)

	waitMu sync.Mutex
	waitCh chan struct{} // closed when the high watermark moves; nil if nobody waits

	// repl is the replica state of a partition opened with OpenReplica (replicated.go);
	// a partition opened with Open is a single node's, the leader and whole ISR.
	repl replState
}

// Open wraps an opened log, rebuilding the producer state from it.
func Open(topic string, index int32, l *log.Log, cfg Config, leaderEpoch int32, now func() time.Time) (*Partition, error) {
	p, err := open(topic, index, l, cfg, now)
	if err != nil {
		return nil, err
	}
	p.leaderEpoch = leaderEpoch
	if err := l.AssignEpoch(leaderEpoch, l.LogEndOffset()); err != nil {
		return nil, fmt.Errorf("leader epoch of %s-%d: %w", topic, index, err)
	}
	p.highWatermark.Store(l.LogEndOffset())
	return p, nil
}

// open wraps l, rebuilding the producer state from it; the caller sets the role.
func open(topic string, index int32, l *log.Log, cfg Config, now func() time.Time) (*Partition, error) {
	p := &Partition{Topic: topic, Index: index, log: l, now: now, producers: map[int64]*producerEntry{},
		snapshotMax: snapshotMax}
	p.cfg.Store(&cfg)
	from := l.LogStartOffset()
	// Rolling snapshots past the recovered log end are removed even when the clean-close
	// snapshot is used: they must never meet a later open.
	roff, rproducers, rok, notes, err := loadRolling(l.FS(), l.Dir(), l.LogStartOffset(), l.LogEndOffset())
	if err != nil {
		return nil, fmt.Errorf("producer snapshots of %s-%d: %w", topic, index, err)
	}
	off, producers, ok, note := loadSnapshot(l.FS(), l.Dir(), l.LogStartOffset(), l.LogEndOffset())
	if note != "" {
		notes = append(notes, note)
	}
	if ok {
		p.producers, from = producers, off
	} else if rok {
		p.producers, from = rproducers, roff
	}
	if len(notes) > 0 {
		p.loadNote = fmt.Sprintf("%s; producer state rebuilt from the log from offset %d", strings.Join(notes, "; "), from)
	}
	p.rebuiltFrom = from
	p.snapBase.Store(l.ActiveSegmentBase())
	err = l.Batches(from, func(b batch.Batch) bool {
		p.updateProducer(b, b.MaxTimestamp())
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild producer state of %s-%d: %w", topic, index, err)
	}
	return p, nil
}

// TakeProducerStateNote returns, once, what Open could not use of the producer state
// snapshots and where it rebuilt the state from instead; empty when it used what it
// found, or once taken. The broker logs it: a note means a restart that read more of the
// log than it should have.
func (p *Partition) TakeProducerStateNote() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	note := p.loadNote
	p.loadNote = ""
	return note
}

// Log returns the underlying log.
func (p *Partition) Log() *log.Log { return p.log }

// SetConfig applies a changed topic config.
func (p *Partition) SetConfig(cfg Config, lc log.Config) {
	p.cfg.Store(&cfg)
	p.log.SetConfig(lc)
	// A replica's state machine holds its own min.insync.replicas (the ISR rules).
	p.SetMinInsyncReplicas(cfg.MinInsyncReplicas)
}

// Config returns the partition's current configuration.
func (p *Partition) Config() Config { return *p.cfg.Load() }

// ISRSize is the number of in-sync replicas; with one node, the leader alone.
func (p *Partition) ISRSize() int32 {
	if p.repl.rep != nil {
		return int32(len(p.ISR()))
	}
	return 1
}

// LeaderEpoch returns the current leader epoch.
func (p *Partition) LeaderEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaderEpoch
}

func (p *Partition) HighWatermark() int64    { return p.highWatermark.Load() }
func (p *Partition) LastStableOffset() int64 { return p.highWatermark.Load() }
func (p *Partition) LogStartOffset() int64   { return p.log.LogStartOffset() }
func (p *Partition) LogEndOffset() int64     { return p.log.LogEndOffset() }

// AppendResult is what a produce response reports for one partition.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
}

// Append validates one client batch (the bytes are patched in place: base offset, leader
// epoch and, for LogAppendTime, the timestamp and CRC) and appends it. A retried
// idempotent batch is answered with its original offsets and not appended again.
func (p *Partition) Append(b batch.Batch) (AppendResult, error) {
	res, _, err := p.append(b)
	return res, err
}

// append is Append, also returning the offset after the batch (after its original, for
// a duplicate): what acks=all waits for the high watermark to reach.
func (p *Partition) append(b batch.Batch) (AppendResult, int64, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	cfg := p.cfg.Load()
	if len(b) > int(cfg.MaxMessageBytes) {
		return res, 0, fmt.Errorf("%w: batch of %d bytes > max.message.bytes %d", batch.ErrTooLarge, len(b), cfg.MaxMessageBytes)
	}
	// CRC and records are checked before taking the lock: they are the costly part and
	// need no partition state.
	sum, err := batch.ValidateFull(b, batch.ValidateOptions{MaxDecompressed: cfg.MaxDecompressed, RequireKeys: cfg.Compacted})
	if err != nil {
		return res, 0, err
	}
	if b.Control() {
		return res, 0, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
	}
	if b.ProducerID() >= 0 && b.BaseSequence() < 0 {
		return res, 0, fmt.Errorf("%w: producer id %d with base sequence %d", ErrInvalidRecord, b.ProducerID(), b.BaseSequence())
	}
	now := p.now().UnixMilli()
	if err := checkTimestamps(b, sum, now, cfg); err != nil {
		return res, 0, err
	}
	if !cfg.LogAppendTime && b.MaxTimestamp() != sum.MaxTimestamp {
		// The header's max timestamp feeds the time index, retention and ListOffsets:
		// make it the records', as Kafka's LogValidator does.
		b.SetMaxTimestamp(sum.MaxTimestamp)
	}

	op := &appendOp{b: b, cfg: cfg, now: now, res: res}
	p.appendQueued(op)
	if op.err != nil || op.ticket == 0 {
		return op.res, op.end, op.err
	}
	// The flush policy wants this append on disk before it is acknowledged or shown to
	// consumers. The fsync runs outside p.mu, shared with the appends queued meanwhile.
	if err := p.log.SyncThrough(op.ticket); err != nil {
		return op.res, op.end, fmt.Errorf("sync %s-%d: %w", p.Topic, p.Index, err)
	}
	p.appended(op.end)
	return op.res, op.end, nil
}

// advanceHighWatermark moves the high watermark up to hw (never down: group commits
// finish in any order) and wakes the fetches waiting for it.
func (p *Partition) advanceHighWatermark(hw int64) {
	for {
		cur := p.highWatermark.Load()
		if hw <= cur {
			return
		}
		if p.highWatermark.CompareAndSwap(cur, hw) {
			p.notify()
			return
		}
	}
}

// checkTimestamps applies Kafka's LogValidator.validateTimestamp to every record, whose
// range validation found: on a CreateTime topic each timestamp other than -1 must lie
// within message.timestamp.before.max.ms before and message.timestamp.after.max.ms after
// now (a negative bound here means none); a producer may not set LogAppendTime itself.
func checkTimestamps(b batch.Batch, sum batch.Summary, now int64, cfg *Config) error {
	if b.LogAppendTime() && (cfg.LogAppendTime || b.MaxTimestamp() == -1) {
		return fmt.Errorf("%w: the producer set the timestamp type to LogAppendTime", ErrInvalidTimestamp)
	}
	if cfg.LogAppendTime {
		return nil
	}
	// now >= 0 and a bound >= 0 keep now-bound from overflowing.
	if before := cfg.TimestampBeforeMaxMs; before >= 0 && sum.MinTimestamp < now-before {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.before.max.ms (%d) before now (%d)", ErrInvalidTimestamp, sum.MinTimestamp, before, now)
	}
	if after := cfg.TimestampAfterMaxMs; after >= 0 && sum.MaxTimestamp > now && sum.MaxTimestamp-now > after {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.after.max.ms (%d) after now (%d)", ErrInvalidTimestamp, sum.MaxTimestamp, after, now)
	}
	return nil
}

// Wait returns a channel closed the next time the high watermark moves. It allocates
// only when someone waits.
func (p *Partition) Wait() <-chan struct{} {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	if p.waitCh == nil {
		p.waitCh = make(chan struct{})
	}
	return p.waitCh
}

func (p *Partition) notify() {
	p.waitMu.Lock()
	if p.waitCh != nil {
		close(p.waitCh)
		p.waitCh = nil
	}
	p.waitMu.Unlock()
}

// Read returns file ranges of whole batches from offset, below the high watermark (or
// the last stable offset for read_committed).
//
// A replicated partition's offsets past the high watermark but within the log are not out
// of range, as in Kafka: a new leader's high watermark may lag what consumers read from
// the old one, and they must wait, not reset.
func (p *Partition) Read(offset, maxBytes int64, minOne, readCommitted bool) ([]log.Range, error) {
	limit := p.HighWatermark()
	if readCommitted {
		limit = p.LastStableOffset()
	}
	if offset > p.HighWatermark() && (p.repl.rep == nil || offset > p.log.LogEndOffset()) {
		return nil, log.ErrOffsetOutOfRange
	}
	if offset > limit {
		return nil, nil
	}
	return p.log.Read(offset, limit, maxBytes, minOne)
}

// DeleteRecords advances the log start offset to offset (-1: the high watermark) and
// returns the new low watermark.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hw := p.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, log.ErrOffsetOutOfRange
	}
	if offset > p.log.LogStartOffset() {
		if err := p.log.SetLogStartOffset(offset); err != nil {
			return -1, err
		}
	}
	return p.log.LogStartOffset(), nil
}

// EnforceRetention applies retention.ms and retention.bytes to the log below the high
// watermark (log.EnforceRetentionBelow): on a leader, what a follower in the ISR has not
// fetched yet stays; on a follower, what the leader has not committed. It returns how
// many segments it deleted.
func (p *Partition) EnforceRetention() (int, error) {
	return p.log.EnforceRetentionBelow(p.HighWatermark())
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if epoch == p.leaderEpoch {
		return epoch, p.log.LogEndOffset()
	}
	return p.log.EndOffsetForEpoch(epoch)
}

// Close snapshots the producer state and closes the log. Waiters are woken so they
// observe the close. A poisoned log (a failed write or fsync) gets no snapshot: the state
// may describe batches the failure lost, and the next Open rebuilds it from what
// recovery finds.
func (p *Partition) Close() error {
	p.mu.Lock()
	p.closed = true
	// Expired producers are left out; a snapshot that had to leave others out to fit is
	// written, the log closed, and ErrSnapshotTrimmed returned.
	p.expireLocked(p.now())
	snap, dropped := encodeSnapshot(p.log.LogEndOffset(), p.producers, p.snapshotMax)
	trimmed := p.trimmedError(dropped, len(p.producers))
	p.mu.Unlock()
	p.stopReplica(ErrClosed)
	p.notify()
	if p.log.Err() != nil {
		return p.log.Close()
	}
	err := vfs.WriteFileAtomic(p.log.FS(), filepath.Join(p.log.Dir(), snapshotFile), snap)
	if cerr := p.log.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = trimmed
	}
	return err
}

// Delete closes and removes the log.
func (p *Partition) Delete() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stopReplica(ErrClosed)
	p.notify()
	return p.log.Delete()
}
