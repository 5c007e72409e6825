package metadata

// The local metadata log of a single node, metadata.log, is a sequence of frames:
//
//	0 length  uint32 big endian, bytes of payload (1 to 64 MiB)
//	4 crc     uint32 big endian, CRC32C (Castagnoli) of payload
//	8 payload a snapshot (snapshot.go; only as the first frame) or an entry:
//	          magic (1 byte, 0xE1), index (uvarint), term (uvarint), a batch (codec.go)
//
// One frame is one change: its records are one batch, so a torn write loses the whole
// change or none of it. Entries are numbered from the snapshot's index (or 1) up, one by
// one, in term 1 (a single node leads its own log forever).
//
// Appending: a change is written at the end of the last whole frame and fsynced before
// its image is published. A failed or short write, or a failed fsync, is undone: the
// file is truncated back to the end of the last whole frame and fsynced, so the next
// change follows a whole frame instead of garbage that would hide it from replay. If the
// undo fails too, the store is poisoned: every later change answers the first error
// (ErrStorage) until the node restarts and Open sorts the tail out.
//
// Opening: frames are replayed in order. A bad frame (a header promising more bytes than
// the file holds, a length of 0 or above the limit, a CRC mismatch) with no valid frame
// anywhere after it is a torn tail, a write that was never acknowledged: it is cut off
// (truncate, fsync) and logged at WARN with its offset and size; but a damaged snapshot
// never is (it was synced before it replaced the log). A bad frame followed by
// a valid one is not a torn write but corruption: cutting there would drop acknowledged
// changes after it (and the node would then treat their partitions as unknown), so Open
// refuses, naming the file, the byte offset and what it found. So does a frame whose CRC
// matches but whose records do not decode or apply. A log much longer than its image is
// then rewritten as a snapshot (temp file, fsync, rename, fsync dir).
//
// Upgrading: a log whose first frame holds JSON (a '{', which no binary payload starts
// with) was written before the binary records (legacy.go). It is replayed once, with the
// same torn-tail and corruption rules, and rewritten at once as a binary snapshot; the
// upgrade is logged. The rewrite replaces the file atomically, so a crash during it
// leaves the JSON log, and the next start upgrades again.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/vltava/vltava/internal/vfs"
)

const (
	fileName   = "metadata.log"
	frameHead  = 8
	maxPayload = 64 << 20
	entryMagic = 0xE1
	// localTerm is the term of every entry of the local log.
	localTerm = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrStorage wraps every failure to make a change durable. The change was not applied.
var ErrStorage = errors.New("metadata storage failed")

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("metadata store closed")

// CorruptError is a metadata log that cannot be replayed without losing changes.
type CorruptError struct {
	Path   string
	Offset int64  // where the bad frame starts
	Found  string // what is wrong with it
	Next   int64  // a valid frame after it, or -1 (the frame's CRC matched)
}

func (e *CorruptError) Error() string {
	if e.Next < 0 {
		return fmt.Sprintf("metadata log %s is corrupt at byte %d: %s; refusing to start", e.Path, e.Offset, e.Found)
	}
	return fmt.Sprintf("metadata log %s is corrupt at byte %d: %s, and a valid frame follows at byte %d, "+
		"so this is not a torn write: cutting the log there would drop the changes after it; refusing to start "+
		"(restore the file, or truncate it to %d bytes to knowingly drop every change from there on)",
		e.Path, e.Offset, e.Found, e.Next, e.Offset)
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger // what recovery and the upgrade did; slog.Default() if nil
	// NodeID is this node's ID. A JSON log is upgraded with this node as the only
	// replica, the ISR and the leader of every partition, as it served them.
	NodeID int32
}

// Store is the metadata log and the image it builds.
type Store struct {
	fsys  vfs.FS
	dir   string
	image atomic.Pointer[Image]

	mu   sync.Mutex // serialises appends; guards the fields below
	f    vfs.File
	size int64 // end of the last whole, synced frame: where the next change goes
	err  error // set when an undo failed: every later change answers it
}

// Open replays the metadata log in dir (creating it if needed).
func Open(fsys vfs.FS, dir string, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("metadata dir: %w", err)
	}
	s := &Store{fsys: fsys, dir: dir}
	path := filepath.Join(dir, fileName)
	_, statErr := fsys.Stat(path)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if statErr != nil {
		// A new log: its name must survive a crash with the first change in it.
		if err := errors.Join(fsys.SyncDir(dir), fsys.SyncDir(filepath.Dir(dir))); err != nil {
			f.Close()
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	rp, cerr := replay(data, opts.NodeID)
	if cerr != nil {
		f.Close()
		cerr.Path = path
		return nil, cerr
	}
	if rp.good < len(data) {
		logger.Warn("metadata log: cut a torn tail (a change that was never acknowledged)",
			"file", path, "offset", rp.good, "bytes", len(data)-rp.good)
		if err := f.Truncate(int64(rp.good)); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
		}
	}
	s.f, s.size = f, int64(rp.good)
	s.image.Store(rp.im)
	if rp.legacy || rp.entries > 2*rp.im.recordCount()+64 {
		// A log of the old format, or a long history: rewrite it as the records that
		// build today's image.
		f.Close()
		s.f = nil
		size, err := s.rewrite(rp.im)
		if err != nil {
			return nil, err
		}
		if s.f, err = fsys.OpenFile(path, os.O_RDWR, 0o644); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		s.size = size
		if rp.legacy {
			logger.Info("metadata log upgraded from JSON to binary records", "file", path,
				"frames", rp.entries, "topics", rp.im.NumTopics(), "partitions", rp.im.NumPartitions(), "bytes", size)
		}
	}
	return s, nil
}

// replayed is what replay found.
type replayed struct {
	im      *Image
	good    int  // length of the valid prefix
	entries int  // frames after the snapshot, if any
	legacy  bool // the log holds JSON records
}

// replay applies every whole, valid frame. A bad frame with nothing valid after it ends
// the prefix (a torn tail); any other bad frame is a *CorruptError (Path unset).
func replay(data []byte, node int32) (replayed, *CorruptError) {
	rp := replayed{im: Empty()}
	if len(data) > frameHead && data[frameHead] == '{' {
		rp.legacy = true
	}
	lr := legacyReplayer{im: rp.im, node: node}
	pos := 0
	for pos < len(data) {
		payload, found := frameAt(data, pos)
		if found != "" {
			if next := nextFrame(data, pos+1, rp.legacy); next >= 0 {
				return replayed{}, &CorruptError{Offset: int64(pos), Found: found, Next: int64(next)}
			}
			if pos == 0 && !rp.legacy && len(data) > frameHead && data[frameHead] == snapshotMagic {
				// A snapshot is written whole and synced before it replaces the log: it
				// is never a torn write, and cutting it would leave no metadata at all.
				return replayed{}, &CorruptError{Offset: 0, Found: "a damaged snapshot: " + found, Next: -1}
			}
			break // a torn tail
		}
		var err error
		if rp.legacy {
			var r legacyRecord
			if r, err = decodeLegacy(payload); err == nil {
				err = lr.apply(r)
			}
			rp.im = lr.im
		} else {
			rp.im, err = replayFrame(rp.im, payload, pos == 0)
		}
		if err != nil {
			return replayed{}, &CorruptError{Offset: int64(pos), Found: "a frame with a valid checksum holds records that cannot be applied: " + err.Error(), Next: -1}
		}
		if pos > 0 || payload[0] != snapshotMagic {
			rp.entries++
		}
		pos += frameHead + len(payload)
	}
	rp.good = pos
	return rp, nil
}

// replayFrame applies one binary frame to im.
func replayFrame(im *Image, payload []byte, first bool) (*Image, error) {
	if payload[0] == snapshotMagic {
		if !first {
			return nil, errors.New("a snapshot after the first frame")
		}
		return DecodeSnapshot(payload)
	}
	off, rs, err := decodeEntry(payload)
	if err != nil {
		return nil, err
	}
	if want := im.offset.Index + 1; off.Index != want {
		return nil, fmt.Errorf("entry %d where %d was due", off.Index, want)
	}
	next, _, err := im.Apply(off, rs)
	return next, err
}

// decodeEntry decodes an entry frame's payload.
func decodeEntry(b []byte) (Offset, []Record, error) {
	if len(b) == 0 || b[0] != entryMagic {
		return Offset{}, nil, fmt.Errorf("%w: not a metadata log entry", ErrCorrupt)
	}
	r := reader{b: b[1:]}
	off := Offset{Index: r.uvarint("entry index"), Term: r.uvarint("entry term")}
	if r.err != nil {
		return Offset{}, nil, r.err
	}
	rs, err := DecodeBatch(r.b)
	return off, rs, err
}

// frameAt returns the payload of the frame at pos, or what is wrong with it.
func frameAt(data []byte, pos int) ([]byte, string) {
	rest := len(data) - pos
	if rest < frameHead {
		return nil, fmt.Sprintf("a partial frame header (%d bytes)", rest)
	}
	l := binary.BigEndian.Uint32(data[pos:])
	switch {
	case l == 0:
		return nil, "a frame of length 0"
	case l > maxPayload:
		return nil, fmt.Sprintf("a frame length of %d bytes (more than %d)", l, maxPayload)
	case int64(l) > int64(rest-frameHead):
		return nil, fmt.Sprintf("a frame of %d bytes with %d left in the file", l, rest-frameHead)
	}
	payload := data[pos+frameHead : pos+frameHead+int(l)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(data[pos+4:]) {
		return nil, fmt.Sprintf("a frame of %d bytes whose checksum does not match", l)
	}
	return payload, ""
}

// nextFrame returns the position of the first valid frame (checksum and records) at or
// after from, or -1. Only reached for a bad frame, so its cost does not matter.
func nextFrame(data []byte, from int, legacy bool) int {
	for p := from; p+frameHead < len(data); p++ {
		c := data[p+frameHead]
		if (legacy && c != '{') || (!legacy && c != entryMagic) {
			continue // only an entry can follow a frame
		}
		payload, found := frameAt(data, p)
		if found != "" {
			continue
		}
		var err error
		if legacy {
			_, err = decodeLegacy(payload)
		} else {
			_, _, err = decodeEntry(payload)
		}
		if err == nil {
			return p
		}
	}
	return -1
}

// appendFrame appends a frame holding payload to dst.
func appendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) > maxPayload {
		return nil, fmt.Errorf("%w: a metadata frame of %d bytes (at most %d)", ErrTooLarge, len(payload), maxPayload)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...), nil
}

// entryFrame returns the frame of the entry rs at off.
func entryFrame(off Offset, rs []Record) ([]byte, error) {
	p := []byte{entryMagic}
	p = binary.AppendUvarint(p, off.Index)
	p = binary.AppendUvarint(p, off.Term)
	p, err := AppendBatch(p, rs)
	if err != nil {
		return nil, err
	}
	return appendFrame(nil, p)
}

// rewrite replaces the log with a snapshot of im and returns its size.
func (s *Store) rewrite(im *Image) (int64, error) {
	snap, err := AppendSnapshot(nil, im)
	if err == nil {
		snap, err = appendFrame(nil, snap)
	}
	if err == nil {
		err = vfs.WriteFileAtomic(s.fsys, filepath.Join(s.dir, fileName), snap)
	}
	if err != nil {
		return 0, fmt.Errorf("metadata snapshot: %w", err)
	}
	return int64(len(snap)), nil
}

// Image returns the current image. It is immutable.
func (s *Store) Image() *Image { return s.image.Load() }

// Apply validates the records against the current image with check (called under the
// store's lock, so check-then-append is atomic), appends them durably as one change and
// publishes the new image. An error wrapping ErrStorage means the change is not applied;
// so does one wrapping ErrInvalid (the records do not apply to the image) or ErrTooLarge.
func (s *Store) Apply(check func(im *Image) ([]Record, error)) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, ErrClosed
	}
	if s.err != nil {
		return nil, s.err
	}
	im := s.image.Load()
	rs, err := check(im)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return im, nil
	}
	off := Offset{Index: im.offset.Index + 1, Term: localTerm}
	next, _, err := im.Apply(off, rs)
	if err != nil {
		return nil, err
	}
	frame, err := entryFrame(off, rs)
	if err != nil {
		return nil, err
	}
	if err := s.append(frame); err != nil {
		return nil, err
	}
	s.image.Store(next)
	return next, nil
}

// append writes frame after the last whole frame and syncs it, undoing a failure.
func (s *Store) append(frame []byte) error {
	n, err := s.f.WriteAt(frame, s.size)
	if err == nil && n < len(frame) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = s.f.Sync()
	}
	if err == nil {
		s.size += int64(len(frame))
		return nil
	}
	err = fmt.Errorf("%w: append to %s: %w", ErrStorage, s.f.Name(), err)
	// Cut whatever part of the frame reached the file, so the next change follows the
	// last whole frame. After a failed fsync the kernel may have dropped the dirty pages
	// already; the truncation and its own fsync make the file's size agree either way.
	uerr := s.f.Truncate(s.size)
	if uerr == nil {
		uerr = s.f.Sync()
	}
	if uerr != nil {
		s.err = fmt.Errorf("%w; undoing it failed too (%w), so the metadata log takes no more changes until restarted", err, uerr)
		return s.err
	}
	return err
}

// Close closes the log file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
