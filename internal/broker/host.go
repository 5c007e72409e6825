package broker

// Hosting: turning the partitions the metadata image holds into open partitions on this
// node, separate from recording changes in the metadata (create.go, topics.go). Today it
// runs at start for the whole image (openAll) and in the request path for the partitions
// of a change, before the change is recorded; with a replicated metadata log it becomes
// the reconciliation of image deltas, without changing what a partition's directory is.
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// hostWorkers is how many partitions are opened or created at once.
func (b *Broker) hostWorkers() int {
	n, err := strconv.Atoi(b.cfg.Values["num.recovery.threads.per.data.dir"])
	if err != nil || n < 1 {
		n = 2
	}
	return n * len(b.cfg.LogDirs)
}

// openAll opens every partition of every topic in the image and sets aside directories
// that belong to no topic it knows (stray.go).
func (b *Broker) openAll(im *metadata.Image) error {
	empty := map[string]*Topic{}
	b.topics.Store(&empty)
	var jobs []hostJob
	for t := range im.Topics() {
		d := describeTopic(t)
		for i := range t.Partitions {
			if p := &t.Partitions[i]; p.HasReplica(b.cfg.NodeID) {
				jobs = append(jobs, hostJob{t: d, idx: int32(i), leaderEpoch: p.LeaderEpoch})
			}
		}
	}
	pl, err := b.newPlacer()
	if err != nil {
		return err
	}
	opened, err := b.host(jobs, pl, false)
	if err != nil {
		return err
	}
	hosted := map[string]*Topic{}
	for k, j := range jobs {
		ht := hosted[j.t.Name]
		if ht == nil {
			ht = &Topic{Name: j.t.Name, ID: j.t.ID, Internal: IsInternal(j.t.Name)}
			hosted[j.t.Name] = ht
		}
		ht.Partitions = append(ht.Partitions, opened[k])
	}
	b.topics.Store(&hosted)
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

// hostJob is one partition to open.
type hostJob struct {
	t           *TopicDesc
	idx         int32
	leaderEpoch int32
}

// host opens the partitions of jobs, in order, with a few workers. fresh says they are
// new: a directory in the way is set aside and a failure removes what was created. On
// failure nothing stays open: partitions already opened are closed (or, fresh, deleted).
func (b *Broker) host(jobs []hostJob, pl *placer, fresh bool) ([]*partition.Partition, error) {
	out := make([]*partition.Partition, len(jobs))
	if len(jobs) == 0 {
		return out, nil
	}
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		done     int
	)
	lastReport := b.now()
	work := func() {
		for {
			mu.Lock()
			if firstErr != nil || next == len(jobs) {
				mu.Unlock()
				return
			}
			k := next
			next++
			mu.Unlock()
			j := jobs[k]
			p, err := b.openPartition(j.t, j.idx, j.leaderEpoch, pl, fresh)
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[k] = p
			done++
			if now := b.now(); !fresh && now.Sub(lastReport) >= 10*time.Second {
				// A start with many partitions takes a while: say how far it got.
				lastReport = now
				b.logger.Info("opening partitions", "opened", done, "of", len(jobs))
			}
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for range min(b.hostWorkers(), len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	wg.Wait()
	if firstErr == nil {
		return out, nil
	}
	b.unhost(out, fresh)
	return nil, firstErr
}

// unhost closes partitions (deletes them with fresh) after a failure; nil ones are
// skipped.
func (b *Broker) unhost(ps []*partition.Partition, fresh bool) {
	for _, p := range ps {
		if p == nil {
			continue
		}
		var err error
		if fresh {
			err = p.Delete()
		} else {
			err = p.Close()
		}
		if err != nil {
			b.logger.Error("undo opening a partition", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	}
}

// placer chooses the log dir of a new partition: the one with the fewest partition
// directories, as Kafka does; counted once per change, not per partition.
type placer struct {
	b      *Broker
	mu     sync.Mutex
	counts []int // per log dir
}

func (b *Broker) newPlacer() (*placer, error) {
	pl := &placer{b: b, counts: make([]int, len(b.cfg.LogDirs))}
	if len(b.cfg.LogDirs) == 1 {
		return pl, nil
	}
	for i, d := range b.cfg.LogDirs {
		entries, err := b.fsys.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("read log dir %s: %w", d, err)
		}
		pl.counts[i] = len(entries)
	}
	return pl, nil
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

// openPartition opens partition idx of t, creating its directory if needed. fresh says
// the partition is new: a directory already in the way is set aside, and on failure the
// new directory is removed again.
func (b *Broker) openPartition(t *TopicDesc, idx, leaderEpoch int32, pl *placer, fresh bool) (*partition.Partition, error) {
	name := fmt.Sprintf("%s-%d", t.Name, idx)
	dir, exists := pl.existing(name)
	if exists && fresh {
		if err := b.setAside(filepath.Dir(dir), name, "a directory of that name was in the way of a new partition"); err != nil {
			return nil, storageError(err)
		}
		exists = false
	}
	if !exists {
		dir = pl.place(name)
	}
	p, err := b.openPartitionIn(t, idx, leaderEpoch, dir)
	if err != nil && fresh {
		if rerr := b.fsys.RemoveAll(dir); rerr != nil {
			b.logger.Error("remove the directory of a partition that failed to open", "dir", dir, "err", rerr)
		}
	}
	if err != nil {
		return nil, storageError(err)
	}
	return p, nil
}

func (b *Broker) openPartitionIn(t *TopicDesc, idx, leaderEpoch int32, dir string) (*partition.Partition, error) {
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
	p, err := partition.Open(t.Name, idx, l, PartitionConfig(tc), leaderEpoch, b.now)
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
