package metaprops

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

var kafkaUUID = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{21}$`)

func TestEncodeParse(t *testing.T) {
	p := Props{ClusterID: "MkU3OEVBNTcwNTJENDM2Qk", NodeID: 3, DirectoryID: RandomUUID()}
	got, err := Parse(Encode(p))
	if err != nil || got != p {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, p)
	}
	// As kafka-storage format writes it (java.util.Properties: a date comment, any order).
	kafka := "#\n#Tue Mar 04 10:00:00 UTC 2025\nnode.id=1\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\nversion=1\ncluster.id=4L6g3nShT-eMCtK--X86sw\n"
	got, err = Parse([]byte(kafka))
	want := Props{ClusterID: "4L6g3nShT-eMCtK--X86sw", NodeID: 1, DirectoryID: "J8aAPcfLQt2bqs1JT_rMgQ"}
	if err != nil || got != want {
		t.Fatalf("Kafka's file: %+v %v", got, err)
	}
	// Vltava before directory.id.
	if got, err := Parse([]byte("version=1\ncluster.id=abc\nnode.id=1\n")); err != nil || got != (Props{ClusterID: "abc", NodeID: 1}) {
		t.Fatalf("old Vltava file: %+v %v", got, err)
	}
	for _, bad := range []struct{ file, want string }{
		{"version=0\nbroker.id=1\ncluster.id=x\n", "ZooKeeper"},
		{"cluster.id=x\nnode.id=1\n", "no version"},
		{"version=2\ncluster.id=x\nnode.id=1\n", `version "2"`},
		{"version=1\nnode.id=1\n", "empty cluster.id"},
		{"version=1\ncluster.id=x\nnode.id=one\n", "not a number"},
		{"version=1\ncluster.id=a b\nnode.id=1\n", "printable ASCII"},
	} {
		if _, err := Parse([]byte(bad.file)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", bad.file, err, bad.want)
		}
	}
}

func TestIDs(t *testing.T) {
	for range 100 {
		if id := RandomUUID(); !kafkaUUID.MatchString(id) {
			t.Fatalf("RandomUUID %q is not a Kafka UUID", id)
		}
	}
	a := DeriveClusterID(map[int32]string{1: "h1:9093", 2: "h2:9093", 3: "h3:9093"})
	b := DeriveClusterID(map[int32]string{3: "h3:9093", 1: "h1:9093", 2: "h2:9093"})
	c := DeriveClusterID(map[int32]string{1: "h1:9093", 2: "h2:9093", 3: "h3:9094"})
	if a != b || a == c || !kafkaUUID.MatchString(a) {
		t.Fatalf("derived ids: %q %q %q", a, b, c)
	}
	cfg := func(kv map[string]string) config.Broker {
		b, err := config.Load("", nil, kv)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	voters := map[string]string{"node.id": "2", "controller.quorum.voters": "1@h1:9093,2@h2:9093,3@h3:9093",
		"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"}
	if NewClusterID(cfg(voters)) != a {
		t.Fatal("a node of a static quorum does not take the derived id")
	}
	observer := map[string]string{"node.id": "7", "process.roles": "broker", "controller.quorum.voters": "1@h1:9093,2@h2:9093,3@h3:9093",
		"controller.listener.names": "CONTROLLER"}
	if NewClusterID(cfg(observer)) != a {
		t.Fatal("an observer does not derive the voters' id")
	}
	if NewClusterID(cfg(nil)) == NewClusterID(cfg(nil)) {
		t.Fatal("a quorum of one does not get a random id")
	}
}

func TestCheckAndComplete(t *testing.T) {
	fs := vfs.NewMem()
	dirs := []string{"/d1", "/d2", "/meta"}
	ds := Load(fs, dirs)
	if id, err := Check(ds, 1, ""); err != nil || id != "" {
		t.Fatalf("empty dirs: %q %v", id, err)
	}
	written, err := Complete(fs, ds, "clusterA", 1)
	if err != nil || len(written) != 3 {
		t.Fatalf("Complete: %v %v", written, err)
	}
	ds = Load(fs, dirs)
	if id, err := Check(ds, 1, ""); err != nil || id != "clusterA" {
		t.Fatalf("after Complete: %q %v", id, err)
	}
	if ds[0].Props.DirectoryID == "" || ds[0].Props.DirectoryID == ds[1].Props.DirectoryID {
		t.Fatalf("directory ids %q %q", ds[0].Props.DirectoryID, ds[1].Props.DirectoryID)
	}
	if written, err := Complete(fs, ds, "clusterA", 1); err != nil || len(written) != 0 {
		t.Fatalf("Complete again wrote %v %v", written, err)
	}
	cases := []struct {
		node    int32
		cluster string
		mutate  func()
		want    string
	}{
		{node: 2, want: "/d1/meta.properties belongs to node 1, and this is node 2"},
		{node: 1, cluster: "clusterB", want: "belongs to cluster clusterA, and this node is configured for cluster clusterB"},
		{node: 1, mutate: func() { Write(fs, "/d2", Props{ClusterID: "clusterB", NodeID: 1, DirectoryID: RandomUUID()}) },
			want: "/d2/meta.properties belongs to cluster clusterB but /d1/meta.properties to cluster clusterA"},
		{node: 1, mutate: func() { Write(fs, "/d2", ds[0].Props) }, want: "have the same directory.id"},
		{node: 1, mutate: func() { fs.MkdirAll("/d2", 0o755); vfs.WriteFileAtomic(fs, "/d2/meta.properties", []byte("garbage")) }, want: "/d2"},
	}
	for _, tc := range cases {
		if tc.mutate != nil {
			tc.mutate()
		}
		if _, err := Check(Load(fs, dirs), tc.node, tc.cluster); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check: %v, want an error saying %q", err, tc.want)
		}
		Write(fs, "/d2", Props{ClusterID: "clusterA", NodeID: 1, DirectoryID: RandomUUID()})
	}
	if _, err := Read(fs, "/nowhere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read of a missing file: %v", err)
	}
}
