// The clean-shutdown marker (clean-shutdown in the partition directory): Close writes it
// after everything is synced, Open removes it (durably) before the log accepts a write.
// With it Open trusts the segments without reading them; so it says exactly which files
// it vouches for, and a file that differs at open (written by another process after the
// close, restored from a copy, damaged) is scanned instead of trusted (issue 8 item 17).
//
// Layout, text, written whole and atomically (vfs.WriteFileAtomic):
//
//	line 1: version, "1"
//	line 2: the log end offset at close
//	line 3: segment count n
//	n lines: "<base offset> <size> <mtime>" of each segment's .log file, bases increasing;
//	         mtime is the file's modification time in Unix nanoseconds (0 where the
//	         filesystem keeps none)
//
// Recovery: a marker that is missing means an unclean stop. An empty one (the marker of
// earlier versions), one that does not parse, or one that cannot be read is not trusted:
// Open recovers as after an unclean stop. A parsed marker vouches for each segment whose
// size and mtime match its line; the others (and segments it does not list) are scanned,
// and its log end offset is what Open must not cut the log below (it was synced).
//
// Close writes the marker only if every segment's file still has the size this process
// published: bytes written by another process mean this one does not know the files
// it would vouch for.
package log

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// markerSegment is one segment's line of the marker.
type markerSegment struct {
	base, size, mtime int64
}

type shutdownMarker struct {
	logEnd   int64
	segments []markerSegment
}

func (m shutdownMarker) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "1\n%d\n%d\n", m.logEnd, len(m.segments))
	for _, s := range m.segments {
		fmt.Fprintf(&b, "%d %d %d\n", s.base, s.size, s.mtime)
	}
	return b.Bytes()
}

func parseShutdownMarker(data []byte) (shutdownMarker, error) {
	var m shutdownMarker
	if len(data) == 0 {
		return m, fmt.Errorf("%w: empty (written by an earlier version)", errBadCheckpoint)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 3 || lines[0] != "1" {
		return m, fmt.Errorf("%w: want version 1", errBadCheckpoint)
	}
	end, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || end < 0 {
		return m, fmt.Errorf("%w: log end offset %q", errBadCheckpoint, lines[1])
	}
	n, err := strconv.Atoi(lines[2])
	if err != nil || n != len(lines)-3 {
		return m, fmt.Errorf("%w: segment count %q for %d lines", errBadCheckpoint, lines[2], len(lines)-3)
	}
	m.logEnd = end
	m.segments = make([]markerSegment, 0, n)
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			return m, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
		}
		var v [3]int64
		for i := range f {
			if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil || (i < 2 && v[i] < 0) {
				return m, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
			}
		}
		if k := len(m.segments); k > 0 && v[0] <= m.segments[k-1].base {
			return m, fmt.Errorf("%w: line %q does not follow segment %d", errBadCheckpoint, l, m.segments[k-1].base)
		}
		m.segments = append(m.segments, markerSegment{v[0], v[1], v[2]})
	}
	return m, nil
}

// segmentFile is what the directory listing says of one segment's .log file.
type segmentFile struct {
	base, size, mtime int64
}

func fileStamp(info fs.FileInfo) (size, mtime int64) {
	if t := info.ModTime(); !t.IsZero() {
		mtime = t.UnixNano()
	}
	return info.Size(), mtime
}

// markerOfEarlierVersion is what the report says of an empty marker: the clean
// shutdown of a version that wrote no content, which Open does not trust.
const markerOfEarlierVersion = "empty (written by an earlier version): not trusted"

// readShutdownMarker returns the marker and nil, or nil and why there is none to trust
// ("none" if the file does not exist).
func (l *Log) readShutdownMarker() (*shutdownMarker, string) {
	data, err := readCheckpoint(l.fsys, l.dir, cleanShutdownFile)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("unreadable: %v", err)
	case data == nil:
		return nil, "none"
	case len(data) == 0:
		return nil, markerOfEarlierVersion
	}
	m, err := parseShutdownMarker(data)
	if err != nil {
		return nil, err.Error()
	}
	return &m, ""
}

// vouched returns which of the files the marker vouches for (same size and mtime), and
// a description of the differences ("" if every file matches and none is missing).
func (m *shutdownMarker) vouched(files []segmentFile) (map[int64]bool, string) {
	ok := make(map[int64]bool, len(files))
	listed := make(map[int64]markerSegment, len(m.segments))
	for _, s := range m.segments {
		listed[s.base] = s
	}
	var diffs []string
	for _, f := range files {
		s, found := listed[f.base]
		switch {
		case !found:
			diffs = append(diffs, fmt.Sprintf("segment %d is not in the marker", f.base))
		case s.size != f.size:
			diffs = append(diffs, fmt.Sprintf("segment %d has %d bytes, the marker says %d", f.base, f.size, s.size))
		case s.mtime != f.mtime:
			diffs = append(diffs, fmt.Sprintf("segment %d was modified after the clean shutdown", f.base))
		default:
			ok[f.base] = true
		}
		delete(listed, f.base)
	}
	for _, s := range m.segments {
		if _, missing := listed[s.base]; missing {
			diffs = append(diffs, fmt.Sprintf("segment %d is missing", s.base))
		}
	}
	return ok, strings.Join(diffs, "; ")
}

// shutdownMarkerLocked builds the marker from the segments' files, or returns why this
// process cannot vouch for them. Close calls it with everything synced; writeMu is held.
func (l *Log) shutdownMarkerLocked() (shutdownMarker, error) {
	m := shutdownMarker{logEnd: l.logEndOffset.Load(), segments: make([]markerSegment, 0, len(l.segs))}
	for _, s := range l.segs {
		info, err := s.log.Stat()
		if err != nil {
			return m, fmt.Errorf("stat segment %d: %w", s.base, err)
		}
		size, mtime := fileStamp(info)
		if size != s.size {
			return m, fmt.Errorf("segment %d has %d bytes on disk, %d written by this process: another process may be writing to %s", s.base, size, s.size, l.dir)
		}
		m.segments = append(m.segments, markerSegment{s.base, size, mtime})
	}
	return m, nil
}

// writeShutdownMarkerLocked writes the marker for the files as they are, or, if this
// process cannot vouch for them, leaves it out (the next Open scans) and says why.
func (l *Log) writeShutdownMarkerLocked() error {
	m, err := l.shutdownMarkerLocked()
	if err != nil {
		l.logger.Warn("not writing the clean-shutdown marker: the next open scans the log", "dir", l.dir, "err", err)
		return nil
	}
	return writeCheckpoint(l.fsys, l.dir, cleanShutdownFile, m.format())
}
