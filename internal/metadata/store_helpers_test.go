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

// testOptions opens stores as node 1.
func testOptions() Options { return Options{Logger: discardLogger(), NodeID: 1} }

// openTest opens the store in dir and closes it when the test ends.
func openTest(t *testing.T, fsys vfs.FS, dir string) *Store {
	t.Helper()
	s, err := Open(fsys, dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newID() uuid.UUID { return uuid.New() }

func itoa(n int) string { return strconv.Itoa(n) }

// topicRecords are the records that create a topic as a single node does: its
// partitions on node 1, led by it.
func topicRecords(name string, id uuid.UUID, partitions int32) []Record {
	rs := []Record{&TopicRecord{Name: name, ID: id}}
	for i := range partitions {
		rs = append(rs, &PartitionRecord{TopicID: id, Partition: i, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	return rs
}

// frameOf is a whole, valid entry frame creating topic name, at index.
func frameOf(t *testing.T, name string, index uint64) []byte {
	t.Helper()
	b, err := entryFrame(Offset{Index: index, Term: localTerm}, topicRecords(name, newID(), 1))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the helper honest about the layout the tests corrupt.
	if l := binary.BigEndian.Uint32(b); int(l) != len(b)-frameHead || crc32.Checksum(b[frameHead:], castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		t.Fatal("frame layout changed")
	}
	return b
}
