package metadata

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/vfs"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens the store in dir and closes it when the test ends.
func openTest(t *testing.T, fsys vfs.FS, dir string) *Store {
	t.Helper()
	s, err := Open(fsys, dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newID() uuid.UUID { return uuid.New() }

func itoa(n int) string { return strconv.Itoa(n) }

// frameOf is a whole, valid frame creating topic name.
func frameOf(t *testing.T, name string) []byte {
	t.Helper()
	b, err := appendFrame(nil, Record{Topic: &TopicRecord{Name: name, ID: newID(), Partitions: 1, ReplicationFactor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Keep the helper honest about the layout the tests corrupt.
	if l := binary.BigEndian.Uint32(b); int(l) != len(b)-frameHead || crc32.Checksum(b[frameHead:], castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		t.Fatal("frame layout changed")
	}
	return b
}
