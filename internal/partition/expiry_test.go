package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// fakeClock is the partition's clock in these tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var t0 = time.UnixMilli(1_700_000_000_000)

// openAt opens the partition in /p of fsys with clock c.
func openAt(t *testing.T, fsys vfs.FS, c *fakeClock) *Partition {
	t.Helper()
	l, err := log.Open(fsys, "/p", log.Config{SegmentBytes: 1 << 20, RetentionBytes: -1, RetentionMs: -1, IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open("t", 0, l, Config{MaxMessageBytes: 1 << 20, MaxDecompressed: 1 << 20, TimestampBeforeMaxMs: -1, TimestampAfterMaxMs: -1}, 0, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// produced appends producer pid's batch at seq, its one record written at ts.
func produced(t *testing.T, p *Partition, pid int64, seq int32, ts time.Time) (AppendResult, error) {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq}, []batch.Record{{Timestamp: ts.UnixMilli(), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Append(b)
}

func known(p *Partition, pid int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.producers[pid] != nil
}

// A producer whose last batch is producer.id.expiration.ms old is forgotten, by the
// periodic check and by the snapshots written after it; one that comes back starts
// afresh at whatever sequence it is at, as in Kafka.
func TestProducersExpire(t *testing.T) {
	fsys := vfs.NewMem()
	clock := &fakeClock{t: t0}
	p := openAt(t, fsys, clock)
	for seq := int32(0); seq < 3; seq++ {
		if _, err := produced(t, p, 1, seq, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := produced(t, p, 2, seq, t0.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	clock.t = t0.Add(time.Hour)
	if n := p.ExpireProducers(clock.t, time.Hour); n != 1 || known(p, 1) || !known(p, 2) {
		t.Fatalf("an hour on: %d expired; producer 1 known %v, producer 2 known %v; want only 1 gone", n, known(p, 1), known(p, 2))
	}
	// Producer 2 is still checked: a gap is refused.
	if _, err := produced(t, p, 2, 9, clock.t); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap of a live producer: %v", err)
	}
	// Producer 1 comes back mid-sequence and is taken.
	if _, err := produced(t, p, 1, 3, clock.t); err != nil {
		t.Fatalf("an expired producer coming back: %v", err)
	}
	if !known(p, 1) {
		t.Fatal("producer 1 not tracked again")
	}

	// Two hours on, with nobody checking, the snapshot at close still leaves out the
	// expired producer 2; producer 1 wrote at t0+1h and is kept.
	clock.t = t0.Add(time.Hour + 50*time.Minute)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openAt(t, fsys, clock)
	defer p.Close()
	if known(p, 2) || !known(p, 1) {
		t.Fatalf("after a clean restart: producer 1 known %v, producer 2 known %v", known(p, 1), known(p, 2))
	}
	if p.rebuiltFrom != p.LogEndOffset() {
		t.Fatalf("rebuilt from %d, want the snapshot's %d", p.rebuiltFrom, p.LogEndOffset())
	}
}

// Rolling snapshots leave expired producers out too.
func TestRollingSnapshotExpires(t *testing.T) {
	fsys := vfs.NewMem()
	clock := &fakeClock{t: t0}
	p := openAt(t, fsys, clock)
	defer p.Close()
	if _, err := produced(t, p, 1, 0, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := produced(t, p, 2, 0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p.ExpireProducers(t0, time.Hour) // nothing is an hour old yet
	if !known(p, 1) || !known(p, 2) {
		t.Fatal("a producer expired early")
	}
	clock.t = t0.Add(90 * time.Minute)
	if err := p.log.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := p.SnapshotIfRolled(); err != nil {
		t.Fatal(err)
	}
	if known(p, 1) || !known(p, 2) {
		t.Fatalf("after the rolling snapshot: producer 1 known %v, producer 2 known %v", known(p, 1), known(p, 2))
	}
	offs, err := listRolling(fsys, "/p")
	if err != nil || len(offs) != 1 {
		t.Fatalf("rolling snapshots %v %v", offs, err)
	}
	data, err := vfs.ReadFile(fsys, "/p/"+rollingName(offs[0]), snapshotMax)
	if err != nil {
		t.Fatal(err)
	}
	_, snap, err := decodeSnapshot(data)
	if err != nil || snap[1] != nil || snap[2] == nil {
		t.Fatalf("rolling snapshot holds %v (%v), want producer 2 alone", snap, err)
	}
}

// A state larger than the snapshot bound is snapshotted trimmed to its most recently
// active producers, readable at the next open, and the trimming is reported; it used to
// be written whole, be refused at the next open for its size, and the state rebuilt from
// the whole log without a word.
func TestSnapshotPastItsBound(t *testing.T) {
	fsys := vfs.NewMem()
	clock := &fakeClock{t: t0}
	p := openAt(t, fsys, clock)
	const producers = 50
	for pid := int64(1); pid <= producers; pid++ {
		if _, err := produced(t, p, pid, 0, t0.Add(time.Duration(pid)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	p.snapshotMax = snapshotHeader + 20*snapshotEntry(1) // room for 20 of the 50
	err := p.Close()
	if !errors.Is(err, ErrSnapshotTrimmed) {
		t.Fatalf("close with a state past the bound: %v, want ErrSnapshotTrimmed", err)
	}
	t.Log(err)
	p = openAt(t, fsys, clock)
	defer p.Close()
	if p.rebuiltFrom != producers || p.TakeProducerStateNote() != "" {
		t.Fatalf("rebuilt from %d (%q), want the snapshot at %d used", p.rebuiltFrom, p.TakeProducerStateNote(), producers)
	}
	for pid := int64(1); pid <= producers; pid++ {
		if want := pid > producers-20; known(p, pid) != want {
			t.Fatalf("producer %d known %v, want %v (the 20 most recent kept)", pid, known(p, pid), want)
		}
	}
}

// A snapshot Open cannot use is reported, with where the state was rebuilt from.
func TestSnapshotNotUsedIsReported(t *testing.T) {
	fsys := vfs.NewMem()
	clock := &fakeClock{t: t0}
	p := openAt(t, fsys, clock)
	if _, err := produced(t, p, 1, 0, t0); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := vfs.ReadFile(fsys, "/p/"+snapshotFile, snapshotMax)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := vfs.WriteFileAtomic(fsys, "/p/"+snapshotFile, data); err != nil {
		t.Fatal(err)
	}
	p = openAt(t, fsys, clock)
	defer p.Close()
	if note := p.TakeProducerStateNote(); note == "" || p.rebuiltFrom != 0 || !known(p, 1) {
		t.Fatalf("note %q, rebuilt from %d, producer known %v", note, p.rebuiltFrom, known(p, 1))
	} else {
		t.Log(note)
	}
}
