package quorum

// Fuzzers for every decoder of bytes the member did not just write itself: WAL segments
// and snapshot files (read back at recovery), snapshot data and address lists (from the
// leader), and frame bodies (from the network). Seed corpora are in testdata/fuzz; run
// one with e.g. go test ./internal/quorum -run x -fuzz FuzzWALSegment -fuzztime 1m.
// -quorum.write-corpus rewrites the seed files from the seeds below.

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var flagWriteCorpus = flag.Bool("quorum.write-corpus", false, "write the fuzzers' seed corpora to testdata/fuzz")

func walSeeds() [][]byte {
	seg := appendMarker(nil, 10, 2)
	for i := uint64(11); i < 14; i++ {
		seg = appendEntry(seg, &raftpb.Entry{Index: new(i), Term: new(uint64(2)), Type: raftpb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "entry %d", i)})
	}
	seg = appendHardState(seg, hardState(2, 1, 12))
	torn := bytes.Clone(seg[:len(seg)-5])
	flipped := bytes.Clone(seg)
	flipped[30] ^= 1
	return [][]byte{seg, torn, flipped, appendMarker(nil, 0, 0), {}}
}

func snapshotFileSeeds() [][]byte {
	return [][]byte{
		encodeSnapshotFile(snapshotFile{index: 1, term: 1, conf: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, AutoLeave: new(false)}, data: encodeSnapshotData(voters(1, 2, 3), nil)}),
		encodeSnapshotFile(snapshotFile{index: 90, term: 4, conf: &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3}, AutoLeave: new(true)},
			data: encodeSnapshotData(voters(1, 2, 3, 4), []byte("state bytes"))}),
	}
}

func frameBodySeeds() [][]byte {
	snap := &raftpb.Snapshot{Data: encodeSnapshotData(voters(1, 2), []byte("s")), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
	var out [][]byte
	for _, msgs := range [][]*raftpb.Message{
		{msgApp(2, 1, 3, 10, 2, 2, 3)},
		{{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(3)), Commit: new(uint64(9))},
			{Type: raftpb.MsgVote.Enum(), From: new(uint64(3)), To: new(uint64(1)), Term: new(uint64(4)), Index: new(uint64(9)), LogTerm: new(uint64(3))}},
		{{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2)), Snapshot: snap}},
	} {
		b, _ := appendBatch(nil, "fuzz", msgs)
		out = append(out, b)
	}
	return out
}

// writeCorpus writes seeds as the seed corpus files of fuzzer name.
func writeCorpus(t testing.TB, name string, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func addSeeds(f *testing.F, name string, seeds [][]byte) {
	if *flagWriteCorpus {
		writeCorpus(f, name, seeds)
	}
	for _, s := range seeds {
		f.Add(s)
	}
}

// FuzzWALSegment: recovery's segment scan never panics; what it accepts re-encodes to the
// bytes it read; a valid prefix is never followed by a valid record when it reports a
// torn tail.
func FuzzWALSegment(f *testing.F) {
	addSeeds(f, "FuzzWALSegment", walSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, valid, err := scanSegment("fuzz.wal", b)
		if err != nil {
			return
		}
		if valid > len(b) {
			t.Fatalf("valid %d of %d bytes", valid, len(b))
		}
		if valid < len(b) && findValidRecord(b, valid+1) >= 0 {
			t.Fatalf("torn tail at %d reported, but a valid record follows", valid)
		}
		var re []byte
		for _, r := range recs {
			switch r.typ {
			case recMarker:
				re = appendMarker(re, r.index, r.term)
			case recEntry:
				re = appendEntry(re, &raftpb.Entry{Index: new(r.index), Term: new(r.term), Type: r.entryType.Enum(), Data: r.data})
			case recHardState:
				re = appendHardState(re, hardState(r.term, r.vote, r.commit))
			}
		}
		if !bytes.Equal(re, b[:valid]) {
			t.Fatalf("records re-encode to %x, read %x", re, b[:valid])
		}
	})
}

// FuzzSnapshotFile: the snapshot file decoder never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzSnapshotFile(f *testing.F) {
	addSeeds(f, "FuzzSnapshotFile", snapshotFileSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := decodeSnapshotFile(b)
		if err != nil {
			return
		}
		if re := encodeSnapshotFile(sf); !bytes.Equal(re, b) {
			t.Fatalf("re-encodes to %x, read %x", re, b)
		}
	})
}

// FuzzSnapshotData: the data of a snapshot from the leader, and a conf change's address
// list, decode without panicking, and what decodes survives a round trip.
func FuzzSnapshotData(f *testing.F) {
	seeds := [][]byte{encodeSnapshotData(voters(1, 2, 3), []byte("state")), encodeSnapshotData(nil, nil), encodePeers(voters(7)),
		encodeSnapshotDataAt(voters(1), 41, []byte("state at 41")), append([]byte{1}, encodePeers(voters(1))...)}
	addSeeds(f, "FuzzSnapshotData", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		if peers, state, at, err := decodeSnapshotDataAt(b); err == nil {
			p2, s2, at2, err := decodeSnapshotDataAt(encodeSnapshotDataAt(peers, at, state))
			if err != nil || !maps.Equal(p2, peers) || !bytes.Equal(s2, state) || at2 != at {
				t.Fatalf("round trip: %v %v %q %d", err, p2, s2, at2)
			}
		}
		if peers, err := decodePeers(b); err == nil {
			if p2, err := decodePeers(encodePeers(peers)); err != nil || !maps.Equal(p2, peers) {
				t.Fatalf("address list round trip: %v %v", err, p2)
			}
		}
	})
}

// FuzzFrameBody: a frame body from the network decodes without panicking; what passes
// the checks re-encodes to messages that decode equal.
func FuzzFrameBody(f *testing.F) {
	addSeeds(f, "FuzzFrameBody", frameBodySeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeBatch(b, "fuzz", 1)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if err := checkMessage(m, 1); err != nil {
				t.Fatalf("decodeBatch returned a message checkMessage refuses: %v", err)
			}
		}
		re, err := appendBatch(nil, "fuzz", msgs)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeBatch(re, "fuzz", 1)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("re-encoded batch: %v", err)
		}
		for i := range msgs {
			if !proto.Equal(msgs[i], again[i]) {
				t.Fatalf("message %d differs after a round trip", i)
			}
		}
	})
}
