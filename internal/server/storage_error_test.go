package server_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// syncBuffer is a log destination the test reads while the broker writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFullDiskTakesLogDirOffline: a write that runs out of space part way through a batch
// is answered KAFKA_STORAGE_ERROR and takes the log dir offline, as Kafka does: every
// partition in it answers KAFKA_STORAGE_ERROR to produce and fetch, even once space is
// back, DescribeLogDirs reports the dir's error, an ERROR line names the dir and the
// cause, and with its only log dir offline the broker halts. Restarted with space, it
// recovers by a scan (no clean-shutdown marker was written): what was acknowledged is
// there, the failed batch is not, and produce resumes.
func TestFullDiskTakesLogDirOffline(t *testing.T) {
	disk := vfs.NewDiskFull(1 << 40)
	dataDir := t.TempDir()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": dataDir, "listeners": "PLAINTEXT://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	start := func(fsys vfs.FS, out *syncBuffer) (*server.Server, *rawConn) {
		t.Helper()
		srv, err := server.New(cfg, broker.Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(out, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		return srv, dialRaw(t, srv.Addrs()[0])
	}
	var logs syncBuffer
	srv, r := start(vfs.WithErrors(vfs.OS(), disk), &logs)
	defer func() {
		if srv != nil {
			srv.Close()
		}
	}()
	n := &node{t: t, srv: srv, addr: srv.Addrs()[0]}
	n.createTopic(t, "disk", 1, nil)
	n.createTopic(t, "other", 1, nil)

	produce := func(topic, value string) kmsg.ProduceResponseTopicPartition {
		return produceRaw(t, r, topic, -1, buildBatch(t, batch.BuildOptions{}, value))
	}
	for _, topic := range []string{"disk", "other"} {
		if p := produce(topic, "a"); p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("before, %s: %+v", topic, p)
		}
	}
	disk.SetFree(20) // the next batch gets 20 bytes in, then ENOSPC
	if p := produce("disk", "b"); p.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: %+v, want KAFKA_STORAGE_ERROR", p)
	}
	select {
	case <-srv.Broker().Halted():
	default:
		t.Fatal("the broker did not halt with its only log dir offline")
	}
	if err := srv.Broker().HaltErr(); err == nil || !strings.Contains(err.Error(), "all log dirs") {
		t.Fatalf("HaltErr = %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR msg=\"log dir offline") || !strings.Contains(out, "dir="+filepath.Clean(dataDir)) ||
		!strings.Contains(out, "no space left on device") || !strings.Contains(out, "all log dirs have failed") {
		t.Fatalf("the ERROR lines do not say which dir failed and why:\n%s", out)
	}

	disk.SetFree(1 << 40) // space is back; the dir stays offline until a restart
	for _, topic := range []string{"disk", "other"} {
		if p := produce(topic, "c"); p.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("produce to %s in the offline dir: %+v, want KAFKA_STORAGE_ERROR", topic, p)
		}
		if code := fetchCode(t, r, topic); code != kerr.KafkaStorageError.Code {
			t.Fatalf("fetch from %s in the offline dir: error %d, want KAFKA_STORAGE_ERROR", topic, code)
		}
		// Every request about a partition of an offline dir answers it, as Kafka's
		// replica manager does for an offline partition.
		for _, ts := range []int64{-1, -2, -3, 0} {
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version = 7
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = topic
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = ts
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			if code := r.do(lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
				t.Fatalf("ListOffsets(%d) of %s in the offline dir: %v, want KAFKA_STORAGE_ERROR", ts, topic, kerr.ErrorForCode(code))
			}
		}
		oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
		oe.Version = 4
		ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
		ot.Topic = topic
		op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		op.LeaderEpoch = 0
		op.CurrentLeaderEpoch = -1
		ot.Partitions = append(ot.Partitions, op)
		oe.Topics = append(oe.Topics, ot)
		if code := r.do(oe).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
			t.Fatalf("OffsetForLeaderEpoch of %s in the offline dir: %v, want KAFKA_STORAGE_ERROR", topic, kerr.ErrorForCode(code))
		}
	}
	dirs := r.do(kmsg.NewPtrDescribeLogDirsRequest()).(*kmsg.DescribeLogDirsResponse).Dirs
	if len(dirs) != 1 || dirs[0].ErrorCode != kerr.KafkaStorageError.Code || len(dirs[0].Topics) != 0 {
		t.Fatalf("DescribeLogDirs = %+v, want the dir with KAFKA_STORAGE_ERROR and no topics", dirs)
	}

	srv.Close()
	srv = nil
	for _, topic := range []string{"disk", "other"} {
		if _, err := vfs.OS().Stat(filepath.Join(dataDir, topic+"-0", "clean-shutdown")); err == nil {
			t.Fatalf("%s: a clean-shutdown marker was written for a log of the failed dir", topic)
		}
	}

	srv, r = start(vfs.OS(), &syncBuffer{})
	if p := produce("disk", "c"); p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("after the restart: %+v, want offset 1 (the failed batch is gone)", p)
	}
	if p := produce("other", "c"); p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("after the restart, other: %+v", p)
	}
	if code := fetchCode(t, r, "disk"); code != 0 {
		t.Fatalf("fetch after the restart: error %d", code)
	}
}

// fetchCode fetches partition 0 of topic from offset 0 and returns its error code.
func fetchCode(t *testing.T, r *rawConn, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis = 0
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}
