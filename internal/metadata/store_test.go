package metadata

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/vfs"
)

func createTopic(t *testing.T, s *Store, name string, partitions int32) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := s.Apply(func(*Image) ([]Record, error) {
		return topicRecords(name, id, partitions), nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReplayAndTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(vfs.OS(), dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	a := createTopic(t, s, "a", 3)
	createTopic(t, s, "b", 1)
	v := "1000"
	if _, err := s.Apply(func(*Image) ([]Record, error) {
		return []Record{
			&PartitionRecord{TopicID: a, Partition: 3, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
			&PartitionRecord{TopicID: a, Partition: 4, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
			&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "retention.ms", Value: &v},
			&ProducerIDsRecord{BrokerID: 1, FirstID: 0, Size: 1000},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A torn write after the last whole frame.
	path := filepath.Join(dir, fileName)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 1, 0, 9, 9})
	f.Close()

	s, err = Open(vfs.OS(), dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	im := s.Image()
	if ta := im.Topic("a"); ta == nil || ta.NumPartitions() != 5 || ta.Configs["retention.ms"] != "1000" || ta.ID != a {
		t.Fatalf("topic a after replay: %+v", ta)
	}
	if im.Topic("b") == nil || im.NextProducerID() != 1000 {
		t.Fatalf("image after replay: topics %v, next producer ID %d", im.TopicNames(), im.NextProducerID())
	}
	if got := im.Offset(); got != (Offset{Index: 3, Term: localTerm}) {
		t.Fatalf("offset after replay: %+v, want index 3", got)
	}
	// The torn tail is gone and appends continue.
	createTopic(t, s, "c", 1)
	s.Close()
	s2, err := Open(vfs.OS(), dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Image().Topic("c") == nil || s2.Image().Offset().Index != 4 {
		t.Fatalf("topic created after recovery: %v at %+v", s2.Image().TopicNames(), s2.Image().Offset())
	}
}

func TestRemoveTopicAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(vfs.OS(), dir, testOptions())
	for i := 0; i < 200; i++ {
		id := createTopic(t, s, "churn", 1)
		if _, err := s.Apply(func(*Image) ([]Record, error) {
			return []Record{&RemoveTopicRecord{ID: id}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	createTopic(t, s, "keep", 2)
	want := s.Image()
	s.Close()
	before, _ := os.Stat(filepath.Join(dir, fileName))
	s, err := Open(vfs.OS(), dir, testOptions()) // rewrites the long history as a snapshot
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := os.Stat(filepath.Join(dir, fileName))
	if after.Size() >= before.Size() {
		t.Fatalf("log not compacted: %d -> %d bytes", before.Size(), after.Size())
	}
	if err := imagesEqual(s.Image(), want); err != nil {
		t.Fatalf("image after the snapshot: %v", err)
	}
	// Entries after the snapshot continue its numbering, and replay over it.
	createTopic(t, s, "more", 1)
	s.Close()
	s, err = Open(vfs.OS(), dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if im := s.Image(); im.Topic("more") == nil || im.Offset().Index != want.Offset().Index+1 {
		t.Fatalf("after the snapshot: %v at %+v (snapshot at %+v)", im.TopicNames(), im.Offset(), want.Offset())
	}
}

// TestApplyRefusesInvalidChange: records that do not apply to the image are refused
// before anything is written.
func TestApplyRefusesInvalidChange(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.OS(), dir)
	createTopic(t, s, "a", 1)
	st, _ := os.Stat(filepath.Join(dir, fileName))
	_, err := s.Apply(func(*Image) ([]Record, error) {
		return append(topicRecords("b", newID(), 1), &RemoveTopicRecord{ID: newID()}), nil
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("an invalid change: %v, want ErrInvalid", err)
	}
	st2, _ := os.Stat(filepath.Join(dir, fileName))
	if s.Image().Topic("b") != nil || st2.Size() != st.Size() {
		t.Fatalf("a refused change left a trace: topics %v, file %d -> %d bytes", s.Image().TopicNames(), st.Size(), st2.Size())
	}
}

func FuzzReplay(f *testing.F) {
	b, _ := entryFrame(Offset{Index: 1, Term: 1}, []Record{&ClusterIDRecord{ID: "x"}})
	f.Add(b)
	b2, _ := entryFrame(Offset{Index: 2, Term: 1}, topicRecords("t", uuid.UUID{1}, 2))
	f.Add(append(b, b2...))
	snap, _ := AppendSnapshot(nil, testImage(f, 3, 2))
	sf, _ := appendFrame(nil, snap)
	f.Add(sf)
	legacy, _ := os.ReadFile("testdata/json-metadata.log")
	f.Add(legacy)
	f.Fuzz(func(t *testing.T, data []byte) {
		rp, cerr := replay(data, 1)
		if cerr == nil && (rp.im == nil || rp.good > len(data)) {
			t.Fatalf("replay: image %v, valid prefix %d of %d bytes", rp.im, rp.good, len(data))
		}
		if cerr != nil && (cerr.Offset < 0 || cerr.Offset >= int64(len(data)) || cerr.Next >= int64(len(data))) {
			t.Fatalf("corruption reported outside the data: %+v", cerr)
		}
	})
}
