package partition

// The high watermark checkpoint: replication-offset-checkpoint in each log directory,
// Kafka's file name and format, one entry per replicated partition whose log lives in
// that directory. Text, each line ending in "\n":
//
//	line 1: version, "0"
//	line 2: entry count n, decimal
//	n lines: "<topic> <partition> <high watermark>", decimal, single spaces
//
// Topic names are Kafka's legal ones (1 to 249 of [a-zA-Z0-9._-]), so a line splits on
// spaces without ambiguity. Entries are written sorted by topic, then partition; a
// reader accepts any order but no duplicates.
//
// Why it exists: a replica's high watermark lives in memory and moves on followers'
// fetches. After a restart the partition must not show consumers anything the ISR had
// not committed, and it must not lose the committed part either (a consumer that read
// up to it would otherwise find offsets going back). The checkpoint holds a value that
// was committed when written (the high watermark never runs ahead of the ISR), so the
// replica reopens with min(checkpoint, log end) (OpenReplica): a lower value than before
// the stop, perhaps, but never an uncommitted one.
//
// Writing: whole and atomically (vfs.WriteFileAtomic: temp file, fsync, rename, directory
// fsync), so a crash leaves the old or the new file, never a mix; by the node every
// replica.high.watermark.checkpoint.interval.ms and at a clean shutdown
// (HighWatermarkCheckpoint.Write, which skips the write when nothing changed).
//
// Reading (ReadHighWatermarks): a missing file means no partition has one (each starts
// at its log start offset and learns the high watermark again: from the leader as a
// follower, from its followers' fetches as leader). A file that does not parse is moved
// aside (replication-offset-checkpoint.aside, .1, ...), never deleted, and read as
// empty, with a note saying so for the operator.

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vltava/vltava/internal/vfs"
)

// HighWatermarkCheckpointFile is the checkpoint's name in a log directory (Kafka's).
const HighWatermarkCheckpointFile = "replication-offset-checkpoint"

// maxHWCheckpointBytes bounds a checkpoint read: far above 100,000 partitions of
// 249-character topic names.
const maxHWCheckpointBytes = 64 << 20

// TopicPartition names a partition in the checkpoint.
type TopicPartition struct {
	Topic     string
	Partition int32
}

var errBadHWCheckpoint = errors.New("malformed high watermark checkpoint")

// FormatHighWatermarks encodes hws in the checkpoint format, sorted.
func FormatHighWatermarks(hws map[TopicPartition]int64) []byte {
	keys := make([]TopicPartition, 0, len(hws))
	for tp := range hws {
		keys = append(keys, tp)
	}
	slices.SortFunc(keys, func(a, b TopicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(keys))
	for _, tp := range keys {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, hws[tp])
	}
	return b.Bytes()
}

// ParseHighWatermarks decodes a checkpoint, refusing anything but the exact format.
func ParseHighWatermarks(data []byte) (map[TopicPartition]int64, error) {
	s := string(data)
	if !strings.HasSuffix(s, "\n") {
		return nil, fmt.Errorf("%w: no final newline", errBadHWCheckpoint)
	}
	lines := strings.Split(s[:len(s)-1], "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("%w: want version 0", errBadHWCheckpoint)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n != len(lines)-2 || lines[1] != strconv.Itoa(n) {
		return nil, fmt.Errorf("%w: entry count %q for %d lines", errBadHWCheckpoint, lines[1], len(lines)-2)
	}
	out := make(map[TopicPartition]int64, n)
	for _, l := range lines[2:] {
		f := strings.Split(l, " ")
		if len(f) != 3 || !legalTopic(f[0]) {
			return nil, fmt.Errorf("%w: line %q", errBadHWCheckpoint, l)
		}
		part, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || part < 0 || off < 0 || f[1] != strconv.FormatInt(part, 10) || f[2] != strconv.FormatInt(off, 10) {
			return nil, fmt.Errorf("%w: line %q", errBadHWCheckpoint, l)
		}
		tp := TopicPartition{Topic: f[0], Partition: int32(part)}
		if _, dup := out[tp]; dup {
			return nil, fmt.Errorf("%w: %s-%d twice", errBadHWCheckpoint, tp.Topic, tp.Partition)
		}
		out[tp] = off
	}
	return out, nil
}

// legalTopic reports whether t is a legal Kafka topic name.
func legalTopic(t string) bool {
	if len(t) == 0 || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ReadHighWatermarks reads dir's checkpoint. A missing file gives an empty map; one that
// does not parse is moved aside and gives an empty map, and note says what happened.
func ReadHighWatermarks(fsys vfs.FS, dir string) (hws map[TopicPartition]int64, note string, err error) {
	name := filepath.Join(dir, HighWatermarkCheckpointFile)
	data, err := vfs.ReadFile(fsys, name, maxHWCheckpointBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return map[TopicPartition]int64{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	hws, perr := ParseHighWatermarks(data)
	if perr == nil {
		return hws, "", nil
	}
	aside, err := asideName(fsys, name)
	if err == nil {
		err = fsys.Rename(name, aside)
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("move the malformed %s aside: %w", name, err)
	}
	return map[TopicPartition]int64{}, fmt.Sprintf("%v; moved to %s, every partition of %s starts at its log start offset until the high watermark is learned again",
		perr, filepath.Base(aside), dir), nil
}

// asideName returns name.aside, or name.aside.1, ... whichever does not exist.
func asideName(fsys vfs.FS, name string) (string, error) {
	for i := 0; i < 1000; i++ {
		n := name + ".aside"
		if i > 0 {
			n = fmt.Sprintf("%s.%d", n, i)
		}
		if _, err := fsys.Stat(n); errors.Is(err, fs.ErrNotExist) {
			return n, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no free name for %s.aside", name)
}

// WriteHighWatermarks writes dir's checkpoint atomically.
func WriteHighWatermarks(fsys vfs.FS, dir string, hws map[TopicPartition]int64) error {
	if err := vfs.WriteFileAtomic(fsys, filepath.Join(dir, HighWatermarkCheckpointFile), FormatHighWatermarks(hws)); err != nil {
		return fmt.Errorf("high watermark checkpoint in %s: %w", dir, err)
	}
	return nil
}

// HighWatermarkCheckpoint writes one log directory's checkpoint from its partitions,
// skipping the write when the content has not changed since the last one. One caller at
// a time (the node's checkpoint loop, then its shutdown).
type HighWatermarkCheckpoint struct {
	fsys vfs.FS
	dir  string
	last []byte
}

// NewHighWatermarkCheckpoint returns the checkpoint writer of dir.
func NewHighWatermarkCheckpoint(fsys vfs.FS, dir string) *HighWatermarkCheckpoint {
	return &HighWatermarkCheckpoint{fsys: fsys, dir: dir}
}

// Write checkpoints the high watermark of every replicated partition of ps (those of a
// single node are left out: their high watermark is their log end).
func (c *HighWatermarkCheckpoint) Write(ps []*Partition) error {
	hws := make(map[TopicPartition]int64, len(ps))
	for _, p := range ps {
		if p.Replicated() {
			hws[TopicPartition{p.Topic, p.Index}] = p.HighWatermark()
		}
	}
	data := FormatHighWatermarks(hws)
	if bytes.Equal(data, c.last) {
		return nil
	}
	if err := vfs.WriteFileAtomic(c.fsys, filepath.Join(c.dir, HighWatermarkCheckpointFile), data); err != nil {
		return fmt.Errorf("high watermark checkpoint in %s: %w", c.dir, err)
	}
	c.last = data
	return nil
}

// CheckpointedHighWatermark returns tp's entry of hws, or -1 (OpenReplica starts the
// partition at its log start offset).
func CheckpointedHighWatermark(hws map[TopicPartition]int64, topic string, partition int32) int64 {
	if hw, ok := hws[TopicPartition{topic, partition}]; ok {
		return hw
	}
	return -1
}
