package quorum

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/vltava/vltava/internal/wire"
)

func msgApp(from, to, term, index, logTerm uint64, entryTerms ...uint64) *raftpb.Message {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(from), To: new(to), Term: new(term), Index: new(index), LogTerm: new(logTerm)}
	for i, et := range entryTerms {
		m.Entries = append(m.Entries, &raftpb.Entry{Index: new(index + 1 + uint64(i)), Term: new(et), Data: []byte("x")})
	}
	return m
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := []*raftpb.Message{
		msgApp(2, 1, 3, 10, 2, 2, 3, 3),
		{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(3)), Commit: new(uint64(9))},
	}
	frame, err := appendFrame(nil, 7, 2, "cluster-a", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if size := int(binary.BigEndian.Uint32(frame)); size != len(frame)-4 {
		t.Fatalf("size prefix %d, frame %d", size, len(frame))
	}
	h, _, err := wire.ParseHeader(frame[4:], func(int16, int16) bool { return false })
	if err != nil || h.APIKey != 1000 || h.APIVersion != 0 || h.CorrelationID != 7 || h.ClientID != "vltava-raft-2" {
		t.Fatalf("header %+v: %v", h, err)
	}
	body, err := ParseFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(body, "cluster-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !proto.Equal(got[0], msgs[0]) || !proto.Equal(got[1], msgs[1]) {
		t.Fatalf("decoded %v", got)
	}
}

func TestBadFramesAreRefused(t *testing.T) {
	snapData := encodeSnapshotData(voters(1, 2), []byte("s"))
	goodSnap := &raftpb.Snapshot{Data: snapData, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
	for _, tc := range []struct {
		name    string
		cluster string
		msg     *raftpb.Message
		want    string
	}{
		{"another cluster", "cluster-b", msgApp(2, 1, 3, 10, 2, 3), `frame of cluster "cluster-b"`},
		{"another receiver", "", msgApp(2, 3, 3, 10, 2, 3), "message for node 3"},
		{"from nobody", "", msgApp(0, 1, 3, 10, 2, 3), "message from node 0"},
		{"from itself", "", msgApp(1, 1, 3, 10, 2, 3), "message from node 1"},
		{"a proposal", "", &raftpb.Message{Type: raftpb.MsgProp.Enum(), From: new(uint64(2)), To: new(uint64(1))}, "not sent between members"},
		{"a local message", "", &raftpb.Message{Type: raftpb.MsgHup.Enum(), From: new(uint64(2)), To: new(uint64(1))}, "not sent between members"},
		{"a gap in entries", "", func() *raftpb.Message {
			m := msgApp(2, 1, 3, 10, 2, 3, 3)
			m.Entries[1].Index = new(uint64(13))
			return m
		}(), "has index 13"},
		{"entry term above the message's", "", msgApp(2, 1, 3, 10, 2, 4), "has term 4"},
		{"entry terms going down", "", msgApp(2, 1, 3, 10, 2, 3, 2), "has term 2"},
		{"snapshot without metadata", "", &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: new(uint64(1)), Snapshot: &raftpb.Snapshot{}}, "without snapshot metadata"},
		{"snapshot with bad data", "", &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: new(uint64(1)),
			Snapshot: &raftpb.Snapshot{Data: []byte{9}, Metadata: goodSnap.Metadata}}, "version 9"},
		{"snapshot on a heartbeat", "", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Snapshot: goodSnap}, "carries a snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := appendBatch(nil, tc.cluster, []*raftpb.Message{tc.msg})
			if err != nil {
				t.Fatal(err)
			}
			_, err = decodeBatch(body, "", 1)
			if !errors.Is(err, errBadBatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode: %v, want %q", err, tc.want)
			}
		})
	}
	for _, body := range [][]byte{nil, {0}, {0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1}} {
		if _, err := decodeBatch(body, "", 1); !errors.Is(err, errBadBatch) {
			t.Fatalf("decode %x: %v", body, err)
		}
	}
	// A good snapshot passes.
	body, _ := appendBatch(nil, "", []*raftpb.Message{{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2)), Snapshot: goodSnap}})
	if _, err := decodeBatch(body, "", 1); err != nil {
		t.Fatal(err)
	}
}
