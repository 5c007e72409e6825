// Checkpoint files: small text files in a partition's directory, each written whole
// and atomically (vfs.WriteFileAtomic: temp file, fsync, rename, fsync dir), so after a
// crash each holds either its previous or its new content, never a mix.
//
// log-start-offset.checkpoint and recovery-point.checkpoint, in Kafka's checkpoint style:
//
//	line 1: version, "0"
//	line 2: the offset, decimal
//
// leader-epoch-checkpoint, Kafka's own format:
//
//	line 1: version, "0"
//	line 2: entry count n
//	n lines: "<epoch> <startOffset>", epochs and start offsets increasing
//
// clean-shutdown is the clean-shutdown marker, written by Close after everything is
// synced and removed by Open before the log accepts writes; its format is in
// shutdown_marker.go.
//
// Recovery: a checkpoint that is missing means "never written" (offset 0, no epochs);
// one that does not parse, or whose values are not monotonic, is reported by the parser
// and Open falls back to the safe value (log start offset from the first segment,
// recovery point 0 so every segment is scanned, epochs empty) rather than trusting it.
package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/vltava/vltava/internal/vfs"
)

const (
	logStartOffsetFile = "log-start-offset.checkpoint"
	recoveryPointFile  = "recovery-point.checkpoint"
	leaderEpochFile    = "leader-epoch-checkpoint"
	cleanShutdownFile  = "clean-shutdown"

	// maxCheckpointBytes bounds what a checkpoint read may allocate.
	maxCheckpointBytes = 1 << 20
)

var errBadCheckpoint = errors.New("malformed checkpoint")

func formatOffsetCheckpoint(offset int64) []byte {
	return fmt.Appendf(nil, "0\n%d\n", offset)
}

func parseOffsetCheckpoint(data []byte) (int64, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "0" {
		return 0, fmt.Errorf("%w: want version 0 and one offset", errBadCheckpoint)
	}
	off, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("%w: offset %q", errBadCheckpoint, lines[1])
	}
	return off, nil
}

// epochEntry is the first offset written in a leader epoch.
type epochEntry struct {
	Epoch       int32
	StartOffset int64
}

func formatEpochCheckpoint(entries []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

func parseEpochCheckpoint(data []byte) ([]epochEntry, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("%w: want version 0", errBadCheckpoint)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: entry count %q for %d lines", errBadCheckpoint, lines[1], len(lines)-2)
	}
	out := make([]epochEntry, 0, n)
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
		}
		if len(out) > 0 {
			last := out[len(out)-1]
			if int32(e) <= last.Epoch || o < last.StartOffset {
				return nil, fmt.Errorf("%w: entry %q does not follow epoch %d at %d", errBadCheckpoint, l, last.Epoch, last.StartOffset)
			}
		}
		out = append(out, epochEntry{Epoch: int32(e), StartOffset: o})
	}
	return out, nil
}

// readCheckpoint returns the file's content, or nil and no error if it does not exist.
func readCheckpoint(fsys vfs.FS, dir, name string) ([]byte, error) {
	data, err := vfs.ReadFile(fsys, path.Join(dir, name), maxCheckpointBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func writeCheckpoint(fsys vfs.FS, dir, name string, data []byte) error {
	if err := vfs.WriteFileAtomic(fsys, path.Join(dir, name), data); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return nil
}
