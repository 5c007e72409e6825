// Package metaprops reads and writes meta.properties, the file that says which cluster
// and which node a data directory belongs to, in Kafka's format (KRaft's version 1,
// with KIP-858's directory.id), so Kafka's tools and operators recognise it:
//
//	#
//	#Written by Vltava
//	cluster.id=<cluster id>
//	directory.id=<this directory's id: a random UUID in Kafka's base64 form>
//	node.id=<node.id>
//	version=1
//
// Every log dir and the metadata log dir hold one. It is written at a node's first start
// (or by `vltava storage format`) and checked at every start: a directory of another
// cluster or another node stops the start, naming the directory and both ids. The file
// is replaced atomically (temp file, fsync, rename, fsync dir), so a crash leaves the old
// one or the new one.
//
// Cluster IDs: Kafka's are random UUIDs as 22 characters of URL-safe base64 without
// padding. A new cluster gets one chosen at random (RandomUUID), or for a static quorum
// of several voters one derived from the voter set (DeriveClusterID), so nodes started
// from empty directories with the same controller.quorum.voters agree on it without
// talking to each other or a format step.
package metaprops

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// FileName is the file's name in each directory.
const FileName = "meta.properties"

// maxFileBytes bounds what is read: the file is a few lines.
const maxFileBytes = 64 << 10

// maxClusterIDLen is the longest cluster ID accepted (the quorum's frames carry it in
// 255 bytes; Kafka's are 22 characters).
const maxClusterIDLen = 255

// ErrNotFound is a directory without meta.properties.
var ErrNotFound = errors.New("no " + FileName)

// Props is the content of one meta.properties.
type Props struct {
	ClusterID   string
	NodeID      int32
	DirectoryID string // "" in a file written before KIP-858 (and by Vltava before it)
}

// Encode returns the file's bytes.
func Encode(p Props) []byte {
	var b strings.Builder
	b.WriteString("#\n#Written by Vltava\n")
	fmt.Fprintf(&b, "cluster.id=%s\n", p.ClusterID)
	if p.DirectoryID != "" {
		fmt.Fprintf(&b, "directory.id=%s\n", p.DirectoryID)
	}
	fmt.Fprintf(&b, "node.id=%d\nversion=1\n", p.NodeID)
	return []byte(b.String())
}

// Parse parses a meta.properties of version 1 (KRaft). Version 0 (ZooKeeper-era Kafka,
// broker.id instead of node.id) is refused with a message saying so.
func Parse(data []byte) (Props, error) {
	kv, err := config.ParseProperties(string(data))
	if err != nil {
		return Props{}, err
	}
	m := map[string]string{}
	for _, p := range kv {
		m[p.Key] = strings.TrimSpace(p.Value)
	}
	var p Props
	switch v := m["version"]; v {
	case "1":
	case "0":
		return Props{}, errors.New("version 0 (a ZooKeeper-mode Kafka directory): only KRaft's version 1 is supported")
	case "":
		return Props{}, errors.New("no version")
	default:
		return Props{}, fmt.Errorf("version %q: only version 1 is supported", v)
	}
	p.ClusterID = m["cluster.id"]
	if err := CheckClusterID(p.ClusterID); err != nil {
		return Props{}, err
	}
	id, err := strconv.ParseInt(m["node.id"], 10, 32)
	if err != nil {
		return Props{}, fmt.Errorf("node.id %q is not a number", m["node.id"])
	}
	p.NodeID = int32(id)
	p.DirectoryID = m["directory.id"]
	return p, nil
}

// CheckClusterID accepts what can be a cluster ID: 1 to 255 bytes of printable ASCII
// without spaces (Kafka's are base64; Vltava accepts any such string in cluster.id).
func CheckClusterID(id string) error {
	if id == "" {
		return errors.New("empty cluster.id")
	}
	if len(id) > maxClusterIDLen {
		return fmt.Errorf("cluster.id of %d bytes: at most %d", len(id), maxClusterIDLen)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("cluster.id %q holds a character other than printable ASCII", id)
		}
	}
	return nil
}

// Read reads dir's meta.properties. A missing file is an error wrapping ErrNotFound.
func Read(fsys vfs.FS, dir string) (Props, error) {
	path := filepath.Join(dir, FileName)
	data, err := vfs.ReadFile(fsys, path, maxFileBytes)
	if err != nil {
		if _, serr := fsys.Stat(path); serr != nil {
			return Props{}, fmt.Errorf("%w in %s", ErrNotFound, dir)
		}
		return Props{}, err
	}
	p, err := Parse(data)
	if err != nil {
		return Props{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Write replaces dir's meta.properties atomically.
func Write(fsys vfs.FS, dir string, p Props) error {
	return vfs.WriteFileAtomic(fsys, filepath.Join(dir, FileName), Encode(p))
}

// RandomUUID returns a random UUID in Kafka's form (Uuid.randomUuid().toString()): 22
// characters of URL-safe base64. As Kafka does, it never starts with '-', so it can be
// passed as a command-line argument.
func RandomUUID() string {
	for {
		var u [16]byte
		rand.Read(u[:])
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		if s := base64.RawURLEncoding.EncodeToString(u[:]); s[0] != '-' {
			return s
		}
	}
}

// DeriveClusterID returns the cluster ID of a new cluster whose static quorum is voters
// (node id -> controller address): a digest of the sorted "id@host:port" list, shaped as
// Kafka's IDs are. Nodes configured with the same voters get the same ID; clusters with
// other voters get others.
func DeriveClusterID(voters map[int32]string) string {
	ids := make([]int32, 0, len(voters))
	for id := range voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	h.Write([]byte("vltava cluster of voters:"))
	for _, id := range ids {
		fmt.Fprintf(h, "%d@%s,", id, voters[id])
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[0] &= 0x7f            // never a leading '-' or '_'
	u[6] = u[6]&0x0f | 0x80 // version 8 (RFC 9562: custom), so it is not taken for a random one
	u[8] = u[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// Dir is one directory's meta.properties as found.
type Dir struct {
	Path  string
	Props Props
	Found bool  // the file exists and parsed
	Err   error // a file that exists but cannot be read or parsed
}

// Load reads the meta.properties of each dir (a directory that does not exist has none).
func Load(fsys vfs.FS, dirs []string) []Dir {
	out := make([]Dir, len(dirs))
	for i, d := range dirs {
		out[i].Path = d
		p, err := Read(fsys, d)
		switch {
		case err == nil:
			out[i].Props, out[i].Found = p, true
		case !errors.Is(err, ErrNotFound):
			out[i].Err = err
		}
	}
	return out
}

// Check checks that the directories found belong to node nodeID and to one cluster, and
// to clusterID if it is not empty (the cluster.id configured), and returns the cluster
// ID they hold ("" if none has a file yet). Each refusal names the directory and both
// ids: a data dir of another node or cluster must not be taken over.
func Check(ds []Dir, nodeID int32, clusterID string) (string, error) {
	found, from := "", ""
	for _, d := range ds {
		if d.Err != nil {
			return "", fmt.Errorf("%s: %w", d.Path, d.Err)
		}
		if !d.Found {
			continue
		}
		p := d.Props
		if p.NodeID != nodeID {
			return "", fmt.Errorf("%s belongs to node %d, and this is node %d (node.id): refusing to use another node's data dir", filepath.Join(d.Path, FileName), p.NodeID, nodeID)
		}
		if clusterID != "" && p.ClusterID != clusterID {
			return "", fmt.Errorf("%s belongs to cluster %s, and this node is configured for cluster %s (cluster.id): refusing to start", filepath.Join(d.Path, FileName), p.ClusterID, clusterID)
		}
		if found != "" && p.ClusterID != found {
			return "", fmt.Errorf("%s belongs to cluster %s but %s to cluster %s: the directories of one node must belong to one cluster", filepath.Join(d.Path, FileName), p.ClusterID, filepath.Join(from, FileName), found)
		}
		found, from = p.ClusterID, d.Path
	}
	for i, d := range ds {
		for _, e := range ds[:i] {
			if d.Found && e.Found && d.Props.DirectoryID != "" && d.Props.DirectoryID == e.Props.DirectoryID && filepath.Clean(d.Path) != filepath.Clean(e.Path) {
				return "", fmt.Errorf("%s and %s have the same directory.id %s: one was copied from the other; give one a new id (remove its directory.id line)", d.Path, e.Path, d.Props.DirectoryID)
			}
		}
	}
	return found, nil
}

// Complete writes meta.properties of cluster clusterID and node nodeID in every
// directory of ds that has none, and adds a directory.id to those that lack one
// (written before KIP-858). Directories are created as needed. It returns the
// directories written.
func Complete(fsys vfs.FS, ds []Dir, clusterID string, nodeID int32) ([]string, error) {
	var written []string
	for _, d := range ds {
		p := d.Props
		if d.Found && p.DirectoryID != "" {
			continue
		}
		if !d.Found {
			p = Props{ClusterID: clusterID, NodeID: nodeID}
		}
		p.DirectoryID = RandomUUID()
		if err := vfs.MkdirAllDurable(fsys, d.Path); err != nil {
			return written, fmt.Errorf("create %s: %w", d.Path, err)
		}
		if err := Write(fsys, d.Path, p); err != nil {
			return written, err
		}
		written = append(written, d.Path)
	}
	return written, nil
}

// NewClusterID returns the ID a new cluster takes when cluster.id is not set: derived
// from controller.quorum.voters when it is set, so that every node of the cluster
// (observers included) computes the same one; at random for the quorum of one a node
// forms without it.
func NewClusterID(cfg config.Broker) string {
	if len(cfg.Voters) > 0 {
		return DeriveClusterID(cfg.QuorumVoters())
	}
	return RandomUUID()
}

// Dirs returns the directories that hold a meta.properties for cfg: every log dir, and
// the metadata log dir if it is not one of them.
func Dirs(cfg config.Broker) []string {
	dirs := slices.Clone(cfg.LogDirs)
	if !slices.ContainsFunc(dirs, func(d string) bool { return filepath.Clean(d) == filepath.Clean(cfg.MetadataLogDir) }) {
		dirs = append(dirs, cfg.MetadataLogDir)
	}
	return dirs
}
