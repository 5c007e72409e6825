package broker

// Partition directories the metadata image does not know are set aside, never deleted:
// a directory of a topic missing from the image, a partition past its topic's count, or
// a directory whose partition.metadata names another topic ID. They may hold the only
// copy of acknowledged records (a metadata log restored from an old backup, a data dir
// moved between clusters), so only an operator deletes them. As Kafka does with stray
// logs, the directory is renamed to <topic>-<partition>.<unique id>-stray, a name that
// parses as no partition, and a warning says so.

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

const strayDirSuffix = "-stray"

// strayName is the name dir is renamed to when set aside.
func strayName(dir string) string {
	return fmt.Sprintf("%s.%s%s", dir, strings.ReplaceAll(uuid.NewString(), "-", ""), strayDirSuffix)
}

// setAside renames the directory name in logDir aside and logs why.
func (b *Broker) setAside(logDir, name, why string) error {
	from := filepath.Join(logDir, name)
	to := filepath.Join(logDir, strayName(name))
	if err := b.fsys.Rename(from, to); err != nil {
		return fmt.Errorf("set aside %s: %w", from, err)
	}
	if err := b.fsys.SyncDir(logDir); err != nil {
		return fmt.Errorf("set aside %s: %w", from, err)
	}
	b.logger.Warn("partition directory set aside, not deleted: "+why+"; delete it once it is not needed",
		"dir", from, "moved_to", to)
	return nil
}
