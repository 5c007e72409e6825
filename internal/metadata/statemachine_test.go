package metadata

import (
	"errors"
	"reflect"
	"testing"
)

type published struct {
	images []*Image
	deltas []*Delta
}

func (p *published) add(im *Image, d *Delta) {
	p.images = append(p.images, im)
	p.deltas = append(p.deltas, d)
}

func encode(t *testing.T, rs ...Record) []byte {
	t.Helper()
	b, err := AppendBatch(nil, rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateMachineSkipsWhatDoesNotApply: corrupt and invalid entries move the offset and
// change nothing, on every node alike; entries of a newer version stop the member.
func TestStateMachineSkipsWhatDoesNotApply(t *testing.T) {
	var pub published
	sm := NewStateMachine(pub.add, discardLogger())
	steps := []struct {
		index, term uint64
		data        []byte
		err         bool
	}{
		{1, 1, encode(t, &NoOpRecord{}), false},
		{2, 1, encode(t, topicRecords("a", newID(), 2)...), false},
		{4, 2, []byte{batchMagic, 1, 0xff}, false},                // corrupt (index 3 was raft's own)
		{5, 2, encode(t, &RemoveTopicRecord{ID: newID()}), false}, // invalid
		{6, 2, batchOf(rec(TypeNoOp, 9)), true},                   // a newer version
		{6, 2, encode(t, &ClusterIDRecord{ID: "c"}), false},       // the member retries it
		{6, 2, encode(t, &NoOpRecord{}), true},                    // applied already
		{7, 1, encode(t, &NoOpRecord{}), true},                    // term going back
	}
	for i, s := range steps {
		before := sm.Image()
		err := sm.Apply(s.index, s.term, s.data)
		if (err != nil) != s.err {
			t.Fatalf("step %d: %v", i, err)
		}
		if err != nil {
			if sm.Image() != before {
				t.Fatalf("step %d: a failed Apply changed the image", i)
			}
			continue
		}
		if got := sm.Image().Offset(); got != (Offset{Index: s.index, Term: s.term}) {
			t.Fatalf("step %d: offset %+v", i, got)
		}
	}
	im := sm.Image()
	if im.Topic("a") == nil || im.ClusterID() != "c" || sm.Refused() != 2 || len(pub.images) != 5 {
		t.Fatalf("image %v %q, %d refused, %d published", im.TopicNames(), im.ClusterID(), sm.Refused(), len(pub.images))
	}
	if !pub.deltas[2].Empty() || !pub.deltas[3].Empty() || pub.deltas[2].To.Index != 4 || pub.images[3].Topic("a") != pub.images[1].Topic("a") {
		t.Fatal("a skipped entry changed more than the offset")
	}
	var unsupported *UnsupportedError
	if err := sm.Apply(8, 2, batchOf(rec(TypeNoOp, 9))); !errors.As(err, &unsupported) {
		t.Fatalf("newer version: %v", err)
	}
}

// TestStateMachineSnapshotRestore: a member restored from another's snapshot, then fed
// the same entries, holds the same image; the restore is published as the delta from
// what it had.
func TestStateMachineSnapshotRestore(t *testing.T) {
	g := newGen(3)
	a := NewStateMachine(nil, discardLogger())
	var entries [][]byte
	for i := uint64(1); i <= 60; i++ {
		data := encode(t, g.batch(a.Image())...)
		entries = append(entries, data)
		if err := a.Apply(i, 1+i/20, data); err != nil {
			t.Fatal(err)
		}
	}
	snap, index, err := a.Snapshot()
	if err != nil || index != 60 {
		t.Fatalf("snapshot at %d: %v", index, err)
	}
	var pub published
	b := NewStateMachine(pub.add, discardLogger())
	for i := uint64(1); i <= 10; i++ { // b was behind
		if err := b.Apply(i, 1+i/20, entries[i-1]); err != nil {
			t.Fatal(err)
		}
	}
	behind := b.Image()
	if err := b.Restore(snap, 59); err == nil {
		t.Fatal("restored a snapshot at another index than it holds")
	}
	if err := b.Restore(snap, index); err != nil {
		t.Fatal(err)
	}
	if err := imagesEqual(b.Image(), a.Image()); err != nil {
		t.Fatal(err)
	}
	last := pub.deltas[len(pub.deltas)-1]
	if !reflect.DeepEqual(ForNode(last, b.Image(), 2), ForNode(Diff(behind, a.Image()), a.Image(), 2)) {
		t.Fatal("the restore's delta is not the change from what the member had")
	}
	for i := uint64(61); i <= 80; i++ {
		data := encode(t, g.batch(a.Image())...)
		if err := a.Apply(i, 5, data); err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(i, 5, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := imagesEqual(b.Image(), a.Image()); err != nil {
		t.Fatalf("after more entries: %v", err)
	}
	if err := b.Restore(nil, 90); err != nil || b.Image().NumTopics() != 0 || b.Image().Offset().Index != 90 {
		t.Fatalf("restore of an empty log: %v", err)
	}
}
