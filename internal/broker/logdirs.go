package broker

// Log directories and their failure, as Kafka handles them (LogDirFailureChannel): the
// first failed write, fsync or directory sync of any log in a log dir takes the whole dir
// offline. Its logs answer KAFKA_STORAGE_ERROR from then on (they share a log.DirState,
// so no log in the dir takes another write), DescribeLogDirs reports the dir's error, no
// partition is opened in it, and an ERROR line says which dir and why. A dir stays
// offline until the broker restarts; the logs in it are then recovered by a scan from
// their recovery points (a poisoned log writes no clean-shutdown marker). When every log
// dir is offline the broker has nothing left to serve: it halts (Halted is closed) and
// its owner shuts the server down.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/quorum"
)

// logDirs is the broker's view of its log directories.
type logDirs struct {
	states []*log.DirState // one per configured log dir, in configuration order

	mu      sync.Mutex
	offline int
	halt    chan struct{} // closed when every log dir is offline
	haltErr error
}

func (b *Broker) initLogDirs() {
	b.dirs.halt = make(chan struct{})
	for _, d := range b.cfg.LogDirs {
		b.dirs.states = append(b.dirs.states, log.NewDirState(filepath.Clean(d), b.logDirFailed))
	}
}

// logDirFailed is told, once per log dir, by the log whose failure took it offline. It
// may run with that log's locks held: it only logs and counts.
func (b *Broker) logDirFailed(dir string, err error) {
	b.logger.Error("log dir offline: its partitions answer KAFKA_STORAGE_ERROR until the broker is restarted",
		"dir", dir, "err", err)
	b.dirs.mu.Lock()
	defer b.dirs.mu.Unlock()
	b.dirs.offline++
	if b.dirs.offline < len(b.dirs.states) || b.dirs.haltErr != nil {
		return
	}
	b.dirs.haltErr = fmt.Errorf("%w: all log dirs in %s have failed", kerr.KafkaStorageError, strings.Join(b.cfg.LogDirs, ", "))
	b.logger.Error("shutdown broker because all log dirs have failed", "log.dirs", strings.Join(b.cfg.LogDirs, ", "))
	close(b.dirs.halt)
}

// watchMetadataLog halts the node when its metadata log stops for good (its storage
// failed): as in Kafka, a node whose metadata log dir failed shuts down, since it can
// neither follow nor change the metadata any more.
func (b *Broker) watchMetadataLog() {
	defer b.wg.Done()
	select {
	case <-b.stop:
		return
	case <-b.quorum.Failed():
	}
	err := b.quorum.Err()
	b.dirs.mu.Lock()
	defer b.dirs.mu.Unlock()
	if b.dirs.haltErr != nil {
		return
	}
	if errors.Is(err, quorum.ErrInconsistentClusterID) { // not a disk's failure: say what it is
		b.dirs.haltErr = err
		b.logger.Error("shutdown broker because its data dir belongs to another cluster", "metadata.log.dir", b.cfg.MetadataLogDir, "err", err)
		close(b.dirs.halt)
		return
	}
	b.dirs.haltErr = fmt.Errorf("%w: the metadata log in %s failed: %w", kerr.KafkaStorageError, b.cfg.MetadataLogDir, err)
	b.logger.Error("shutdown broker because the metadata log failed", "metadata.log.dir", b.cfg.MetadataLogDir, "err", err)
	close(b.dirs.halt)
}

// dirState returns the state of the configured log dir holding the partition directory
// dir, nil if none does.
func (b *Broker) dirState(dir string) *log.DirState {
	parent := filepath.Dir(filepath.Clean(dir))
	for _, s := range b.dirs.states {
		if s.Path() == parent {
			return s
		}
	}
	return nil
}

// openLog opens the log of a partition directory as part of its log dir, refusing a log
// dir that is offline.
func (b *Broker) openLog(dir string, tc config.Topic) (*log.Log, error) {
	ds := b.dirState(dir)
	if ds != nil {
		if err := ds.Err(); err != nil {
			return nil, fmt.Errorf("%w: open log %s: %v", kerr.KafkaStorageError, dir, err)
		}
	}
	l, err := log.OpenWith(b.fsys, dir, LogConfig(tc), b.logOptions(dir))
	if err != nil {
		return nil, err
	}
	if ds != nil {
		l.SetDirState(ds)
	}
	return l, nil
}

// LogDirErr returns why the configured log dir d (as configured, or its absolute path)
// is offline, nil while it is online or not a log dir of this broker.
func (b *Broker) LogDirErr(d string) error {
	abs, _ := filepath.Abs(d)
	for _, s := range b.dirs.states {
		if a, _ := filepath.Abs(s.Path()); s.Path() == filepath.Clean(d) || a == abs {
			return s.Err()
		}
	}
	return nil
}

// Halted is closed when every log dir has failed, or the metadata log has: the broker
// can serve nothing, and its owner should shut it down (Close writes no clean-shutdown
// marker for a failed log).
func (b *Broker) Halted() <-chan struct{} { return b.dirs.halt }

// HaltErr says why the broker halted, nil if it has not.
func (b *Broker) HaltErr() error {
	b.dirs.mu.Lock()
	defer b.dirs.mu.Unlock()
	return b.dirs.haltErr
}
