// The log cleaner's loop: compaction of every partition whose topic's cleanup.policy
// includes compact (__consumer_offsets among them), as Kafka's LogCleaner threads do.
//
// One goroutine, owned by the broker (started by Open, stopped by Close before the
// partitions close), wakes every log.cleaner.backoff.ms and runs a pass: it computes each
// compacted partition's dirty section, keeps those worth cleaning (dirty ratio at least
// min.cleanable.dirty.ratio, oldest dirty record past max.compaction.lag.ms, or a
// tombstone past delete.retention.ms) and cleans them, those past their max lag first,
// then the dirtiest. The cleaning itself, its memory bound (log.cleaner.dedupe.buffer.size
// shared by log.cleaner.threads; we run one) and its crash safety live in internal/log.
// Close interrupts a clean between batches or in a throttle sleep.
//
// log.cleaner.io.max.bytes.per.second (dynamic) is read from the effective config (static
// and dynamic defaults) at each pass, so a change applies from the next clean on.
package broker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

// defaultCleanerBackoff is log.cleaner.backoff.ms's default, used when the key is unset.
const defaultCleanerBackoff = 15 * time.Second

// cleanerState is the cleaner's: the reusable offset map and buffers, and the lock that
// keeps the loop and CleanNow from cleaning at the same time.
type cleanerState struct {
	mu      sync.Mutex
	cleaner *log.Cleaner // guarded by mu
	// cleaned, if set (tests), is called after each Clean of a pass, on the goroutine
	// that ran it.
	cleaned func(p *partition.Partition, st log.CleanStats, err error)

	// statsMu guards stats, the progress metrics read: not mu, which a pass holds
	// throughout.
	statsMu sync.Mutex
	stats   CleanerStats
}

// CleanerStats are the log cleaner's progress.
type CleanerStats struct {
	Passes   int64
	LastPass time.Time // zero before the first pass
	// MaxDirtyRatio is the largest dirty ratio of a compacted partition at the last
	// pass; Dirty has each one's.
	MaxDirtyRatio float64
	Dirty         []CleanerDirty
	// BytesCleaned and BytesRemoved add up, over every clean, the bytes of the segments
	// cleaned (before) and what cleaning removed from them.
	BytesCleaned, BytesRemoved int64
}

// CleanerDirty is one compacted partition's dirty ratio at the cleaner's last pass.
type CleanerDirty struct {
	Topic     string
	Partition int32
	Ratio     float64
}

// CleanerStats returns the cleaner's progress (a copy).
func (b *Broker) CleanerStats() CleanerStats {
	b.cleaner.statsMu.Lock()
	defer b.cleaner.statsMu.Unlock()
	st := b.cleaner.stats
	st.Dirty = slices.Clone(st.Dirty)
	return st
}

// Started is when the broker opened (the cleaner's reference before its first pass).
func (b *Broker) Started() time.Time { return b.started }

// startCleaner sizes the cleaner from the broker config and starts its loop unless
// log.cleaner.enable is false (CleanNow works either way).
func (b *Broker) startCleaner() {
	dedupe := configInt(b.cfg.Values, "log.cleaner.dedupe.buffer.size", log.DefaultDedupeBufferBytes)
	threads := max(configInt(b.cfg.Values, "log.cleaner.threads", 1), 1)
	b.cleaner.cleaner = log.NewCleaner(dedupe / threads)
	if b.cfg.Values["log.cleaner.enable"] == "false" {
		return
	}
	backoff := time.Duration(configInt(b.cfg.Values, "log.cleaner.backoff.ms", defaultCleanerBackoff.Milliseconds())) * time.Millisecond
	if backoff <= 0 {
		backoff = time.Millisecond
	}
	b.wg.Add(1)
	go b.cleanerLoop(backoff)
}

func configInt(values map[string]string, key string, def int64) int64 {
	if v, err := strconv.ParseInt(values[key], 10, 64); err == nil {
		return v
	}
	return def
}

func (b *Broker) cleanerLoop(backoff time.Duration) {
	defer b.wg.Done()
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if _, err := b.CleanNow(); err != nil && !errors.Is(err, ErrShuttingDown) {
			b.logger.Error("log cleaner", "err", err)
		}
		t.Reset(backoff)
	}
}

// cleanCandidate is a partition worth cleaning, with its settings.
type cleanCandidate struct {
	p    *partition.Partition
	opts log.CleanOptions
	info log.Cleanable
}

// CleanNow runs one pass of the cleaner synchronously (the loop's pass; tests call it)
// and returns how many partitions it cleaned.
func (b *Broker) CleanNow() (int, error) {
	b.cleaner.mu.Lock()
	defer b.cleaner.mu.Unlock()
	var errs []error
	var dirty []CleanerDirty
	var bytesCleaned, bytesRemoved int64
	defer func() { b.recordPass(dirty, bytesCleaned, bytesRemoved) }()
	cands := b.cleanCandidates(b.cleanerIORate(), &errs, &dirty)
	slices.SortStableFunc(cands, func(x, y cleanCandidate) int {
		if x.info.MaxLagExceeded != y.info.MaxLagExceeded {
			if x.info.MaxLagExceeded {
				return -1
			}
			return 1
		}
		return cmp.Compare(y.info.DirtyRatio, x.info.DirtyRatio)
	})
	cleaned := 0
	for _, c := range cands {
		select {
		case <-b.stop:
			return cleaned, errors.Join(append(errs, ErrShuttingDown)...)
		default:
		}
		start := b.now()
		st, err := b.cleaner.cleaner.Clean(c.p.Log(), c.opts)
		if b.cleaner.cleaned != nil {
			b.cleaner.cleaned(c.p, st, err)
		}
		if err != nil {
			if b.isStopping() {
				return cleaned, errors.Join(append(errs, ErrShuttingDown)...)
			}
			if errors.Is(err, log.ErrCleanAborted) {
				continue // the partition is being deleted
			}
			errs = append(errs, fmt.Errorf("clean %s-%d: %w", c.p.Topic, c.p.Index, err))
			continue
		}
		if st.Segments == 0 && !st.Interrupted {
			continue
		}
		bytesCleaned += st.BytesBefore
		bytesRemoved += max(st.BytesBefore-st.BytesAfter, 0)
		cleaned++
		b.logger.Info("log cleaner cleaned", "topic", c.p.Topic, "partition", c.p.Index,
			"dirty_ratio", fmt.Sprintf("%.2f", c.info.DirtyRatio), "first_dirty", st.FirstDirty, "end", st.End,
			"segments", st.Segments, "segments_after", st.SegmentsAfter, "records_removed", st.RecordsRemoved,
			"tombstones_removed", st.TombstonesDelete, "bytes_before", st.BytesBefore, "bytes_after", st.BytesAfter,
			"interrupted", st.Interrupted, "io_bytes", st.IOBytes, "throttled", st.Throttled, "took", b.now().Sub(start))
	}
	return cleaned, errors.Join(errs...)
}

// recordPass adds a pass's figures to the cleaner's stats.
func (b *Broker) recordPass(dirty []CleanerDirty, cleaned, removed int64) {
	maxRatio := 0.0
	for _, d := range dirty {
		maxRatio = max(maxRatio, d.Ratio)
	}
	b.cleaner.statsMu.Lock()
	defer b.cleaner.statsMu.Unlock()
	st := &b.cleaner.stats
	st.Passes++
	st.LastPass = b.now()
	st.MaxDirtyRatio, st.Dirty = maxRatio, dirty
	st.BytesCleaned += cleaned
	st.BytesRemoved += removed
}

func (b *Broker) isStopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// cleanerIORate returns log.cleaner.io.max.bytes.per.second from the effective config
// (0, unlimited, if it does not parse: the config layer validates it).
func (b *Broker) cleanerIORate() float64 {
	v, err := strconv.ParseFloat(b.effective().Values["log.cleaner.io.max.bytes.per.second"], 64)
	if err != nil {
		return 0
	}
	return v
}

// cleanCandidates returns the compacted partitions whose dirty section is worth cleaning,
// with their clean options (ioRate is log.cleaner.io.max.bytes.per.second), and adds
// every compacted partition's dirty ratio to dirty.
func (b *Broker) cleanCandidates(ioRate float64, errs *[]error, dirty *[]CleanerDirty) []cleanCandidate {
	im := b.Image()
	var out []cleanCandidate
	for name, t := range b.hosted.Load().topics {
		mt := im.Topic(name)
		if mt == nil || mt.ID != t.ID {
			continue
		}
		tc := b.TopicConfig(mt.Configs)
		if !tc.Compact() {
			continue
		}
		for _, p := range t.Partitions {
			if p == nil || p.Log().Err() != nil {
				continue // not hosted here, or its log dir is offline
			}
			opts := cleanOptions(tc, min(p.HighWatermark(), p.LastStableOffset()), b.stop)
			opts.IOMaxBytesPerSecond = ioRate
			info, err := p.Log().Cleanable(opts)
			if err != nil {
				*errs = append(*errs, fmt.Errorf("cleanable %s-%d: %w", p.Topic, p.Index, err))
				continue
			}
			*dirty = append(*dirty, CleanerDirty{Topic: p.Topic, Partition: p.Index, Ratio: info.DirtyRatio})
			if info.Needed(opts.MinCleanableRatio) {
				out = append(out, cleanCandidate{p, opts, info})
			}
		}
	}
	return out
}

// cleanOptions converts a topic's resolved config to the log cleaner's.
func cleanOptions(tc config.Topic, highWatermark int64, abort <-chan struct{}) log.CleanOptions {
	return log.CleanOptions{
		HighWatermark:     highWatermark,
		DeleteRetention:   tc.DeleteRetention,
		MinCleanableRatio: tc.MinCleanableDirtyRatio,
		MinCompactionLag:  tc.MinCompactionLag,
		MaxCompactionLag:  tc.MaxCompactionLag,
		MaxDecompressed:   PartitionConfig(tc).MaxDecompressed,
		Abort:             abort,
	}
}
