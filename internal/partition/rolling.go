package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vltava/vltava/internal/vfs"
)

// Rolling producer state snapshots, producer-state-<offset>.snapshot (the layout of
// snapshot.go), are written after the log rolls a segment (SnapshotIfRolled, called by
// the broker's housekeeping), as Kafka snapshots producer state at each roll. After a
// crash, which leaves no clean-close snapshot, Open reads the batches after the newest
// usable one instead of every batch of the log, so restart time stops growing with the
// log. A snapshot is usable if whole and within [log start, log end]; Open removes those
// past the recovered log end (a recovery that truncated the log has made them lies, and
// later appends could make them look valid again) and those it cannot decode. The newest
// two are kept.

const (
	rollingPrefix = "producer-state-"
	rollingSuffix = ".snapshot"
	rollingKeep   = 2
)

func rollingName(offset int64) string {
	return fmt.Sprintf("%s%020d%s", rollingPrefix, offset, rollingSuffix)
}

// listRolling returns the offsets of the rolling snapshots in dir, ascending.
func listRolling(fsys vfs.FS, dir string) ([]int64, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), rollingPrefix)
		if !ok {
			continue
		}
		if s, ok = strings.CutSuffix(s, rollingSuffix); !ok || len(s) != 20 {
			continue
		}
		if off, err := strconv.ParseInt(s, 10, 64); err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// loadRolling returns the newest usable rolling snapshot, removing stale and broken ones;
// notes say which it removed as broken (one past the log end is expected after a
// recovery that truncated, and not noted).
func loadRolling(fsys vfs.FS, dir string, logStart, logEnd int64) (int64, map[int64]*producerEntry, bool, []string, error) {
	offs, err := listRolling(fsys, dir)
	if err != nil {
		return 0, nil, false, nil, err
	}
	var notes []string
	for i := len(offs) - 1; i >= 0; i-- {
		name := filepath.Join(dir, rollingName(offs[i]))
		if offs[i] < logStart {
			return 0, nil, false, notes, nil // this and every older one predate the log start
		}
		var producers map[int64]*producerEntry
		off := offs[i]
		if off <= logEnd {
			data, rerr := vfs.ReadFile(fsys, name, snapshotMax)
			if rerr == nil {
				var derr error
				off, producers, derr = decodeSnapshot(data)
				if derr == nil && off == offs[i] {
					return off, producers, true, notes, nil
				}
				rerr = derr
				if derr == nil {
					rerr = fmt.Errorf("it covers offset %d", off)
				}
			}
			notes = append(notes, fmt.Sprintf("rolling snapshot %s removed: %v", filepath.Base(name), rerr))
		}
		// Past the log end, unreadable or not what its name says: never use it.
		if err := fsys.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, nil, false, notes, fmt.Errorf("remove stale producer snapshot: %w", err)
		}
	}
	return 0, nil, false, notes, nil
}

// SnapshotIfRolled writes a rolling producer state snapshot if the log has rolled since
// the last one, expired producers left out. It is meant for one caller at a time (the
// broker's housekeeping). A snapshot that had to leave producers out to fit is written
// and reported with ErrSnapshotTrimmed.
func (p *Partition) SnapshotIfRolled() error {
	base := p.log.ActiveSegmentBase()
	if base == p.snapBase.Load() {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.expireLocked(p.now())
	// Under p.mu the producer state and the log end agree: appends update both under it.
	offset := p.log.LogEndOffset()
	snap, dropped := encodeSnapshot(offset, p.producers, p.snapshotMax)
	trimmed := p.trimmedError(dropped, len(p.producers))
	p.mu.Unlock()

	dir := p.log.Dir()
	fsys := p.log.FS()
	if err := vfs.WriteFileAtomic(fsys, filepath.Join(dir, rollingName(offset)), snap); err != nil {
		return fmt.Errorf("producer snapshot of %s-%d: %w", p.Topic, p.Index, err)
	}
	p.snapBase.Store(base)
	offs, err := listRolling(fsys, dir)
	if err != nil {
		return err
	}
	for _, off := range offs[:max(0, len(offs)-rollingKeep)] {
		if err := fsys.Remove(filepath.Join(dir, rollingName(off))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return trimmed
}
