package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadReplica reads a partition directory's segments in offset order,
// and says where a segment has bytes after its last whole batch.
func TestReadReplica(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeSegment(t, dir)
	l, reads, sums, err := readReplica(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if l.Start != 0 || l.End != 30 || len(reads) != 30 {
		t.Fatalf("replica %+v with %d records, want offsets 0 to 30", l, len(reads))
	}
	// The batches tile the offsets, each with its CRC.
	next := int64(0)
	for _, b := range sums {
		if b.Base != next || b.Last < b.Base || b.CRC == 0 {
			t.Fatalf("batch %+v after offset %d", b, next-1)
		}
		next = b.Last + 1
	}
	if next != 30 {
		t.Fatalf("batches %+v end at %d, want 30", sums, next)
	}
	for i, r := range reads {
		if r.Offset != int64(i) || r.Value != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("torn")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, reads, _, err = readReplica(filepath.Dir(path))
	if err == nil || !strings.Contains(err.Error(), "4 bytes after the last whole batch") || len(reads) != 30 || l.End != 30 {
		t.Fatalf("with a torn tail: %+v, %d records, %v", l, len(reads), err)
	}
}
