package handler

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// TestFetchFrameNeverWraps: a response whose records would take the frame past the
// 32-bit frame length is refused rather than announced with a length that wrapped.
func TestFetchFrameNeverWraps(t *testing.T) {
	ft := newFetchTest(t, vfs.NewMem(), "/data", 1, nil, nil)
	f, err := os.Create(filepath.Join(t.TempDir(), "records"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 12
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "t"
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = []byte{}
	rt.Partitions = append(rt.Partitions, rp)
	fr.Topics = append(fr.Topics, rt)
	recs := []partRecords{{pinned: []log.PinnedRange{{File: f, Pos: 0, Len: 3 << 30}, {File: f, Pos: 0, Len: 2 << 30}}}}
	resp, err := ft.h.encodeFetch(1, fr, recs, nil, 0)
	if err == nil {
		t.Fatalf("a frame of more than 4 GiB was encoded, its length announced as %d", binary.BigEndian.Uint32(resp.Vec[0]))
	}
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("refused with %v", err)
	}
}
