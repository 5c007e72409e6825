package broker

// Opening partitions: a partition's directory, its partition.metadata and its log. What
// to open, close and delete is decided by the reconciliation (reconcile.go).
//
// A partition's directory is <topic>-<partition> as in Kafka, in one of log.dirs, and
// holds partition.metadata with the topic ID, so a directory of another topic of the same
// name is recognised (and set aside, stray.go). Partitions are opened and created by a
// few workers at once (num.recovery.threads.per.data.dir per log dir, as Kafka opens
// logs): the work is mostly waiting for fsyncs, which overlap.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// placer chooses the log dir of a new partition: the one with the fewest partition
// directories, as Kafka does. One placer serves every job: its counts are read from the
// log dirs once and then kept as partitions are placed and deleted, so partitions opened
// at the same time by different workers spread over the dirs (each job counting the
// dirs for itself saw the same counts, and they all went to the same dir).
type placer struct {
	b      *Broker
	mu     sync.Mutex
	counts []int // per log dir
}

func (b *Broker) newPlacer() (*placer, error) {
	b.host.placerMu.Lock()
	defer b.host.placerMu.Unlock()
	if b.host.placer != nil {
		return b.host.placer, nil
	}
	pl := &placer{b: b, counts: make([]int, len(b.cfg.LogDirs))}
	if len(b.cfg.LogDirs) > 1 {
		for i, d := range b.cfg.LogDirs {
			entries, err := b.fsys.ReadDir(d)
			if err != nil {
				return nil, fmt.Errorf("read log dir %s: %w", d, err)
			}
			pl.counts[i] = len(entries)
		}
	}
	b.host.placer = pl
	return pl, nil
}

// removed records that a partition directory in logDir is gone.
func (pl *placer) removed(logDir string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for i, d := range pl.b.cfg.LogDirs {
		if filepath.Clean(d) == filepath.Clean(logDir) && pl.counts[i] > 0 {
			pl.counts[i]--
		}
	}
}

// existing returns the directory of a partition that has one in some log dir.
func (pl *placer) existing(name string) (string, bool) {
	for _, d := range pl.b.cfg.LogDirs {
		if _, err := pl.b.fsys.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name), true
		}
	}
	return "", false
}

// place returns the directory for a new partition.
func (pl *placer) place(name string) string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	// The online log dir with the fewest partitions; with every dir offline, the first
	// (opening the log there answers KAFKA_STORAGE_ERROR).
	best := -1
	for i, n := range pl.counts {
		if pl.b.LogDirErr(pl.b.cfg.LogDirs[i]) == nil && (best < 0 || n < pl.counts[best]) {
			best = i
		}
	}
	best = max(best, 0)
	pl.counts[best]++
	return filepath.Join(pl.b.cfg.LogDirs[best], name)
}

// openPartition opens partition idx of t, creating its directory if needed, and returns
// the directory it used (also on failure, when one was chosen).
func (b *Broker) openPartition(t *TopicDesc, idx, leaderEpoch int32, replica bool, pl *placer) (*partition.Partition, string, error) {
	name := fmt.Sprintf("%s-%d", t.Name, idx)
	dir, exists := pl.existing(name)
	if !exists {
		dir = pl.place(name)
	}
	p, err := b.openPartitionIn(t, idx, leaderEpoch, replica, dir)
	if err != nil {
		return nil, dir, storageError(err)
	}
	return p, dir, nil
}

// A replica (a partition placed on more than one broker) opens with no role and its
// checkpointed high watermark: the image gives it its role (replicas.go).
func (b *Broker) openPartitionIn(t *TopicDesc, idx, leaderEpoch int32, replica bool, dir string) (*partition.Partition, error) {
	metaPath := filepath.Join(dir, "partition.metadata")
	want := fmt.Sprintf("version: 0\ntopic_id: %s\n", base64URL(t.ID[:]))
	if old, err := readFile(b.fsys, metaPath); err == nil && string(old) != want {
		// The directory belongs to another topic of the same name (an earlier one).
		if err := b.setAside(filepath.Dir(dir), filepath.Base(dir), "it belongs to another topic ID than "+t.ID.String()); err != nil {
			return nil, err
		}
	}
	if err := vfs.MkdirAllDurable(b.fsys, dir); err != nil {
		return nil, fmt.Errorf("partition dir %s: %w", dir, err)
	}
	if old, err := readFile(b.fsys, metaPath); err != nil || string(old) != want {
		if err := writeFileAtomic(b.fsys, metaPath, []byte(want)); err != nil {
			return nil, err
		}
	}
	tc := b.TopicConfig(t.Configs)
	l, err := b.openLog(dir, tc)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	var p *partition.Partition
	if replica {
		p, err = partition.OpenReplica(t.Name, idx, l, PartitionConfig(tc), b.now, b.replicaOptions(filepath.Dir(dir), t.Name, idx))
	} else {
		p, err = partition.Open(t.Name, idx, l, PartitionConfig(tc), leaderEpoch, b.now)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// writeFileAtomic writes a small file so that a crash leaves either the old or the new
// content: temp file, fsync, rename, fsync the directory.
func writeFileAtomic(fsys vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// storageError marks err as a failure of this node's storage, answered
// KAFKA_STORAGE_ERROR whatever the error below was.
func storageError(err error) error {
	if err == nil || errors.Is(err, kerr.KafkaStorageError) {
		return err
	}
	return fmt.Errorf("%w: %w", kerr.KafkaStorageError, err)
}
