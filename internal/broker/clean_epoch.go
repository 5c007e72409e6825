package broker

// Clean shutdown detection (KIP-966): a broker whose every log closed cleanly writes its
// broker epoch into each log dir as its last act; the next process reads it before it
// registers and names it as BrokerRegistration's PreviousBrokerEpoch. The controller
// keeps a broker that restarted cleanly in the eligible leader replicas of its
// partitions, and takes one that did not (no file, files that disagree, a dir without
// one) out of every ISR and ELR: its unsynced records may be gone. The files are removed
// (durably) as they are read, so a crash of this process is never taken for a clean
// shutdown of the next.

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/vltava/vltava/internal/vfs"
)

// cleanShutdownEpochFile is the file in each log dir (Kafka's is .kafka_cleanshutdown).
const cleanShutdownEpochFile = ".vltava_cleanshutdown"

type cleanShutdownEpoch struct {
	Version     int   `json:"version"`
	BrokerEpoch int64 `json:"broker_epoch"`
}

// takeCleanShutdownEpoch returns the epoch the last process wrote into every log dir at
// its clean shutdown, or -1, and removes the files.
func (b *Broker) takeCleanShutdownEpoch() int64 {
	epoch, clean := int64(-1), true
	for i, d := range b.cfg.LogDirs {
		name := filepath.Join(d, cleanShutdownEpochFile)
		data, err := vfs.ReadFile(b.fsys, name, 4096)
		if errors.Is(err, fs.ErrNotExist) {
			clean = false
			continue
		}
		var e cleanShutdownEpoch
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if rerr := b.fsys.Remove(name); rerr != nil {
			err = errors.Join(err, rerr)
		} else if serr := b.fsys.SyncDir(d); serr != nil {
			err = errors.Join(err, serr)
		}
		switch {
		case err != nil || e.Version != 0 || e.BrokerEpoch < 0:
			b.logger.Warn("clean shutdown marker unusable: registering as after an unclean shutdown", "file", name, "err", err)
			clean = false
		case i == 0:
			epoch = e.BrokerEpoch
		case e.BrokerEpoch != epoch:
			clean = false
		}
	}
	if !clean {
		return -1
	}
	return epoch
}

// writeCleanShutdownEpoch writes epoch into every log dir, once every log closed cleanly.
func (b *Broker) writeCleanShutdownEpoch(epoch int64) error {
	data, err := json.Marshal(cleanShutdownEpoch{BrokerEpoch: epoch})
	if err != nil {
		return err
	}
	for _, d := range b.cfg.LogDirs {
		if err := vfs.WriteFileAtomic(b.fsys, filepath.Join(d, cleanShutdownEpochFile), data); err != nil {
			// Dirs already written keep theirs: the next start reads the missing one as
			// an unclean shutdown, which is the safe reading.
			return err
		}
	}
	return nil
}

// anyDirOffline reports whether a log dir failed: its logs did not close cleanly.
func (b *Broker) anyDirOffline() bool {
	b.dirs.mu.Lock()
	defer b.dirs.mu.Unlock()
	return b.dirs.offline > 0
}
