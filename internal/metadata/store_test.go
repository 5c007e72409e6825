package metadata

import (
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
		return []Record{{Topic: &TopicRecord{Name: name, ID: id, Partitions: partitions, ReplicationFactor: 1}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReplayAndTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(vfs.OS(), dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	a := createTopic(t, s, "a", 3)
	createTopic(t, s, "b", 1)
	v := "1000"
	if _, err := s.Apply(func(*Image) ([]Record, error) {
		return []Record{
			{Partitions: &PartitionsRecord{ID: a, Partitions: 5}},
			{TopicConfig: &TopicConfigRecord{ID: a, Key: "retention.ms", Value: &v}},
			{ProducerIDBlock: &ProducerIDBlockRecord{Next: 1000}},
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

	s, err = Open(vfs.OS(), dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	im := s.Image()
	if ta := im.Topic("a"); ta == nil || ta.Partitions != 5 || ta.Configs["retention.ms"] != "1000" || ta.ID != a {
		t.Fatalf("topic a after replay: %+v", ta)
	}
	if im.Topic("b") == nil || im.NextProducerID != 1000 {
		t.Fatalf("image after replay: %+v", im)
	}
	// The torn tail is gone and appends continue.
	createTopic(t, s, "c", 1)
	s.Close()
	s2, err := Open(vfs.OS(), dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Image().Topic("c") == nil {
		t.Fatal("topic created after recovery was lost")
	}
}

func TestRemoveTopicAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(vfs.OS(), dir, discardLogger())
	for i := 0; i < 200; i++ {
		id := createTopic(t, s, "churn", 1)
		if _, err := s.Apply(func(*Image) ([]Record, error) {
			return []Record{{RemoveTopic: &RemoveTopicRecord{ID: id}}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	createTopic(t, s, "keep", 2)
	s.Close()
	before, _ := os.Stat(filepath.Join(dir, fileName))
	s, err := Open(vfs.OS(), dir, discardLogger()) // rewrites the long history as a snapshot
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := os.Stat(filepath.Join(dir, fileName))
	if after.Size() >= before.Size() {
		t.Fatalf("log not compacted: %d -> %d bytes", before.Size(), after.Size())
	}
	if im := s.Image(); len(im.Topics) != 1 || im.Topic("keep") == nil {
		t.Fatalf("image after snapshot: %v", im.TopicNames())
	}
}

func FuzzReplay(f *testing.F) {
	b, _ := appendFrame(nil, Record{ClusterID: &ClusterIDRecord{ID: "x"}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		im, good, _, cerr := replay(data)
		if cerr == nil && (im == nil || good > len(data)) {
			t.Fatalf("replay: image %v, valid prefix %d of %d bytes", im, good, len(data))
		}
		if cerr != nil && (cerr.Offset < 0 || cerr.Offset >= int64(len(data)) || cerr.Next >= int64(len(data))) {
			t.Fatalf("corruption reported outside the data: %+v", cerr)
		}
	})
}
