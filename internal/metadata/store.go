package metadata

// The metadata log file, metadata.log, is a sequence of frames:
//
//	0 length  uint32 big endian, bytes of payload
//	4 crc     uint32 big endian, CRC32C (Castagnoli) of payload
//	8 payload JSON-encoded Record
//
// Each append is fsynced before the change is applied, so an acknowledged change
// (a created topic, an allocated producer ID block) survives a crash. Recovery reads
// frames until the first short or corrupt one and truncates the file there: a torn
// tail can only be a change that was never acknowledged. On open, a log much longer
// than its image is rewritten as a snapshot (temp file, fsync, rename, fsync dir).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
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
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store is the metadata log and the image it builds.
type Store struct {
	fsys  vfs.FS
	dir   string
	image atomic.Pointer[Image]

	mu sync.Mutex // serialises appends; guards f
	f  vfs.File
}

// Open replays the metadata log in dir (creating it if needed).
func Open(fsys vfs.FS, dir string) (*Store, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata dir: %w", err)
	}
	s := &Store{fsys: fsys, dir: dir}
	path := filepath.Join(dir, fileName)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	im, good, n := replay(data)
	f.Close()
	s.image.Store(im)
	snap := im.snapshot()
	if good != len(data) || n > 2*len(snap)+64 {
		// A torn tail or a long history: rewrite as a snapshot.
		if err := s.rewrite(snap); err != nil {
			return nil, err
		}
	}
	if s.f, err = fsys.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// replay applies every whole, valid frame and returns the image, the length of the valid
// prefix and the number of records.
func replay(data []byte) (*Image, int, int) {
	im := emptyImage()
	pos, n := 0, 0
	for len(data)-pos >= frameHead {
		l := binary.BigEndian.Uint32(data[pos:])
		c := binary.BigEndian.Uint32(data[pos+4:])
		if l > maxPayload || int(l) > len(data)-pos-frameHead {
			break
		}
		payload := data[pos+frameHead : pos+frameHead+int(l)]
		if crc32.Checksum(payload, castagnoli) != c {
			break
		}
		r, err := decodeRecord(payload)
		if err != nil {
			break
		}
		next, err := im.apply(r)
		if err != nil {
			break
		}
		im = next
		pos += frameHead + int(l)
		n++
	}
	return im, pos, n
}

func appendFrame(dst []byte, r Record) ([]byte, error) {
	payload, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...), nil
}

func (s *Store) rewrite(rs []Record) error {
	var buf []byte
	for _, r := range rs {
		var err error
		if buf, err = appendFrame(buf, r); err != nil {
			return err
		}
	}
	tmp := filepath.Join(s.dir, fileName+".tmp")
	f, err := s.fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("metadata snapshot: %w", err)
	}
	if _, err = f.Write(buf); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fsys.Rename(tmp, filepath.Join(s.dir, fileName))
	}
	if err == nil {
		err = s.fsys.SyncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("metadata snapshot: %w", err)
	}
	return nil
}

// Image returns the current image. It is immutable.
func (s *Store) Image() *Image { return s.image.Load() }

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("metadata store closed")

// Apply validates the records against the current image with check (called under the
// store's lock, so check-then-append is atomic), appends them durably and publishes the
// new image.
func (s *Store) Apply(check func(im *Image) ([]Record, error)) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, ErrClosed
	}
	im := s.image.Load()
	rs, err := check(im)
	if err != nil {
		return nil, err
	}
	var buf []byte
	next := im
	for _, r := range rs {
		if next, err = next.apply(r); err != nil {
			return nil, err
		}
		if buf, err = appendFrame(buf, r); err != nil {
			return nil, err
		}
	}
	if len(buf) == 0 {
		return im, nil
	}
	if _, err := s.f.Write(buf); err != nil {
		return nil, fmt.Errorf("append metadata: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return nil, fmt.Errorf("sync metadata: %w", err)
	}
	s.image.Store(next)
	return next, nil
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
