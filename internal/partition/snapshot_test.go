package partition

import (
	"reflect"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

func TestSnapshotRoundTrip(t *testing.T) {
	producers := map[int64]*producerEntry{}
	for pid := int64(1); pid <= 3; pid++ {
		e := &producerEntry{epoch: int16(pid)}
		for i := int32(0); i < int32(pid)*3; i++ {
			e.add(batchMeta{firstSeq: i, lastSeq: i, firstOffset: int64(i), lastOffset: int64(i), timestamp: 1000 + int64(i)})
		}
		producers[pid] = e
	}
	b, dropped := encodeSnapshot(42, producers, snapshotMax)
	if dropped != 0 {
		t.Fatalf("%d producers dropped", dropped)
	}
	off, got, err := decodeSnapshot(b)
	if err != nil || off != 42 || !reflect.DeepEqual(got, producers) {
		t.Fatalf("round trip: %v %d %+v", err, off, got)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, _, err := decodeSnapshot(b[:len(b)-1]); err == nil {
		t.Fatal("short snapshot accepted")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	seed, _ := encodeSnapshot(7, map[int64]*producerEntry{9: {epoch: 1}}, snapshotMax)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSnapshot(b)
	})
}

// TestSnapshotUsedOnceAfterCleanClose: a clean close leaves a snapshot, the next open
// reads it (and the duplicate check still works), and removes it.
func TestSnapshotUsedOnceAfterCleanClose(t *testing.T) {
	fsys := vfs.NewMem()
	now := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	open := func() *Partition {
		l, err := log.Open(fsys, "/p", log.Config{SegmentBytes: 1 << 20, RetentionBytes: -1, RetentionMs: -1, IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20}, now)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Open("t", 0, l, Config{MaxMessageBytes: 1 << 20, TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1}, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	for seq := int32(0); seq < 6; seq += 2 {
		if _, err := p.Append(idemBatch(t, 0, seq, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/p/" + snapshotFile); err != nil {
		t.Fatalf("no snapshot after a clean close: %v", err)
	}
	p = open()
	if _, err := fsys.Stat("/p/" + snapshotFile); err == nil {
		t.Fatal("snapshot still there after it was loaded")
	}
	res, err := p.Append(idemBatch(t, 0, 4, 2)) // a retry of the last batch
	if err != nil || res.BaseOffset != 4 {
		t.Fatalf("duplicate after reopen: %+v %v", res, err)
	}
	if _, err := p.Append(idemBatch(t, 0, 9, 1)); err == nil {
		t.Fatal("gap accepted after reopen")
	}
	p.Close()
}
