package server_test

// Topic changes are whole in the metadata log, bounded, and do not hold up each other:
// what CreateTopics answers, and what becomes of the node, when the storage of a
// partition or of the metadata log fails; when a request or the broker would hold too
// many partitions; and while a large creation is under way.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// startNodeFS starts a broker over fsys with its data in /data (or dir for the OS).
func startNodeFS(t *testing.T, fsys vfs.FS, dir string, over map[string]string) *node {
	t.Helper()
	ov := map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0"}
	for k, v := range over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, broker.Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, srv: srv, addr: srv.Addrs()[0]}
	t.Cleanup(n.stop)
	return n
}

func createTopicsReq(cl *kgo.Client, partitions int32, names ...string) ([]kmsg.CreateTopicsResponseTopic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 60000
	for _, name := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	return resp.Topics, nil
}

func createPartitionsReq(cl *kgo.Client, count int32, name string) (int16, *string, error) {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 60000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, nil, err
	}
	return resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage, nil
}

func deleteTopicReq(cl *kgo.Client, name string) (int16, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 60000
	req.TopicNames = []string{name}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].ErrorCode, nil
}

// produceReq produces one record to partition 0 of topic and returns the error code.
func produceReq(cl *kgo.Client, topic string) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		return 0, err
	}
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

func createTopicsRaw(t *testing.T, cl *kgo.Client, partitions int32, names ...string) []kmsg.CreateTopicsResponseTopic {
	t.Helper()
	res, err := createTopicsReq(cl, partitions, names...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type partitionsResult struct {
	ErrorCode    int16
	ErrorMessage *string
}

func createPartitionsRaw(t *testing.T, cl *kgo.Client, count int32, name string) partitionsResult {
	t.Helper()
	c, msg, err := createPartitionsReq(cl, count, name)
	if err != nil {
		t.Fatal(err)
	}
	return partitionsResult{c, msg}
}

func deleteTopicRaw(t *testing.T, cl *kgo.Client, name string) int16 {
	t.Helper()
	c, err := deleteTopicReq(cl, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func produceOne(t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	c, err := produceReq(cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msgOf(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).Error()
}

// partitionDirs lists the partition directories of topic in dir.
func partitionDirs(t *testing.T, fsys vfs.FS, dir, topic string) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), topic+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// pathFaults fails, once armed, every storage operation that takes space (open, write,
// mkdir, sync, rename) on a path containing one of the substrings: a disk that is full
// or failing under those paths.
type pathFaults struct {
	subs  []string
	mu    sync.Mutex
	armed bool
}

func (f *pathFaults) arm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = true
}

func (f *pathFaults) MaybeError(op vfs.Op) error {
	switch op.Kind {
	case vfs.OpRead, vfs.OpReadDir, vfs.OpStat, vfs.OpClose, vfs.OpRemove, vfs.OpTruncate:
		return nil // these take no space
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sub := range f.subs {
		if f.armed && strings.Contains(op.Path, sub) {
			return syscall.ENOSPC
		}
	}
	return nil
}

// waitHalted waits for the broker to halt and returns why.
func waitHalted(t *testing.T, b *broker.Broker) error {
	t.Helper()
	select {
	case <-b.Halted():
		return b.HaltErr()
	case <-time.After(30 * time.Second):
		t.Fatal("the broker did not halt")
		return nil
	}
}

// TestPartitionCreationFailureTakesItsLogDirOffline: a topic change is committed whole in
// the metadata log, and every node opens the partitions it places on it; a partition
// whose log cannot be created takes its log dir offline, as Kafka's LogManager does: the
// topic exists, its partitions in that dir answer KAFKA_STORAGE_ERROR, DescribeLogDirs
// reports the dir offline, the other dir serves and takes the new partitions. (Before the
// metadata quorum, a creation was undone whole instead, issue 8 item 18.)
func TestPartitionCreationFailureTakesItsLogDirOffline(t *testing.T) {
	mem := vfs.NewMem()
	inj := &pathFaults{subs: []string{"/a/atomic-"}}
	n := startNodeFS(t, vfs.WithErrors(mem, inj), "/a,/b", nil)
	cl := n.client()
	b := n.srv.Broker()
	n.createTopic(t, "before", 2, nil) // one partition in each dir
	inj.arm()
	if res := createTopicsRaw(t, cl, 4, "atomic")[0]; res.ErrorCode != 0 {
		t.Fatalf("create: %s (%s)", codeName(res.ErrorCode), msgOf(res.ErrorMessage))
	}
	if tp := b.Image().Topic("atomic"); tp == nil || tp.NumPartitions() != 4 {
		t.Fatalf("atomic in the metadata: %v", tp)
	}
	if err := b.LogDirErr("/a"); err == nil {
		t.Fatal("/a is online after a partition could not be created in it")
	}
	if err := b.LogDirErr("/b"); err != nil {
		t.Fatalf("/b: %v", err)
	}
	codes := map[int16]int{}
	for p := int32(0); p < 4; p++ {
		c, err := producePartition(cl, "atomic", p)
		if err != nil {
			t.Fatal(err)
		}
		codes[c]++
	}
	if codes[0] == 0 || codes[kerr.KafkaStorageError.Code] == 0 || codes[0]+codes[kerr.KafkaStorageError.Code] != 4 {
		t.Fatalf("produce to the partitions of atomic: %v", codes)
	}
	if c, _ := producePartition(cl, "before", 0); c != kerr.KafkaStorageError.Code {
		if c2, _ := producePartition(cl, "before", 1); c2 != kerr.KafkaStorageError.Code {
			t.Fatalf("neither partition of before, one of them in /a, answers KAFKA_STORAGE_ERROR: %s %s", codeName(c), codeName(c2))
		}
	}
	n.createTopic(t, "after", 3, nil)
	for p := int32(0); p < 3; p++ {
		if c, err := producePartition(cl, "after", p); err != nil || c != 0 {
			t.Fatalf("produce to after-%d, created once /a was offline: %v %s", p, err, codeName(c))
		}
	}
	select {
	case <-b.Halted():
		t.Fatalf("halted with /b online: %v", b.HaltErr())
	default:
	}
}

// TestPartitionCreationFailureHaltsWithOneLogDir: with a single log dir, a partition that
// cannot be created takes the only dir offline, and the broker halts ("all log dirs have
// failed"), as Kafka does.
func TestPartitionCreationFailureHaltsWithOneLogDir(t *testing.T) {
	inj := &pathFaults{subs: []string{"/data/atomic-"}}
	n := startNodeFS(t, vfs.WithErrors(vfs.NewMem(), inj), "/data", nil)
	inj.arm()
	if res := createTopicsRaw(t, n.client(), 1, "atomic")[0]; res.ErrorCode != 0 {
		t.Fatalf("create: %s", codeName(res.ErrorCode))
	}
	if err := waitHalted(t, n.srv.Broker()); err == nil || !strings.Contains(err.Error(), "all log dirs") {
		t.Fatalf("halted: %v", err)
	}
}

// TestMetadataLogFailureHalts: a topic change the metadata log cannot store is answered
// KAFKA_STORAGE_ERROR and creates nothing; the node, whose metadata log dir failed, halts
// as Kafka's does.
func TestMetadataLogFailureHalts(t *testing.T) {
	mem := vfs.NewMem()
	inj := &pathFaults{subs: []string{"__cluster_metadata"}}
	n := startNodeFS(t, vfs.WithErrors(mem, inj), "/data", nil)
	inj.arm()
	res := createTopicsRaw(t, n.client(), 3, "atomic")[0]
	if res.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("create with the metadata log failing: %s (%s)", codeName(res.ErrorCode), msgOf(res.ErrorMessage))
	}
	b := n.srv.Broker()
	if b.Image().Topic("atomic") != nil || len(partitionDirs(t, mem, "/data", "atomic")) != 0 {
		t.Fatal("a change the metadata log did not store left a topic behind")
	}
	if err := waitHalted(t, b); err == nil || !strings.Contains(err.Error(), "metadata log") {
		t.Fatalf("halted: %v", err)
	}
}

// producePartition produces one record to a partition and returns the error code.
func producePartition(cl *kgo.Client, topic string, partition int32) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		return 0, err
	}
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// TestOverlyLargeTopicChanges: a request whose change would take more than Kafka's
// 10,000 metadata records is refused whole with POLICY_VIOLATION, as Kafka does, and so
// is a change that would take the broker past vltava.max.broker.partitions; nothing is
// created either way.
func TestOverlyLargeTopicChanges(t *testing.T) {
	mem := vfs.NewMem()
	n := startNodeFS(t, mem, "/data", map[string]string{"vltava.max.broker.partitions": "20"})
	cl := n.client()
	b := n.srv.Broker()
	for _, tc := range []struct {
		parts int32
		names []string
	}{
		{1000000, []string{"huge"}},
		{10000, []string{"big"}}, // a topic record and 10,000 partition records
		{6000, []string{"half-a", "half-b"}},
	} {
		for _, res := range createTopicsRaw(t, cl, tc.parts, tc.names...) {
			if res.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(msgOf(res.ErrorMessage), "Unable to perform excessively large batch operation.") {
				t.Fatalf("%d partitions for %v: %s %q", tc.parts, tc.names, codeName(res.ErrorCode), msgOf(res.ErrorMessage))
			}
		}
		for _, name := range tc.names {
			if b.Image().Topic(name) != nil || len(partitionDirs(t, mem, "/data", name)) != 0 {
				t.Fatalf("refused topic %s left behind", name)
			}
		}
	}
	// The broker's own bound: 20 partitions.
	if res := createTopicsRaw(t, cl, 15, "fifteen")[0]; res.ErrorCode != 0 {
		t.Fatalf("15 partitions: %s", codeName(res.ErrorCode))
	}
	if res := createTopicsRaw(t, cl, 6, "six")[0]; res.ErrorCode != kerr.PolicyViolation.Code ||
		res.ErrorMessage == nil || !strings.Contains(*res.ErrorMessage, "vltava.max.broker.partitions") {
		t.Fatalf("6 more partitions past the broker's 20: %s %q", codeName(res.ErrorCode), msgOf(res.ErrorMessage))
	}
	if res := createPartitionsRaw(t, cl, 1000000, "fifteen"); res.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("CreatePartitions to 1,000,000: %s", codeName(res.ErrorCode))
	}
	if res := createPartitionsRaw(t, cl, 21, "fifteen"); res.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("CreatePartitions past the broker's bound: %s", codeName(res.ErrorCode))
	}
	if res := createPartitionsRaw(t, cl, 20, "fifteen"); res.ErrorCode != 0 {
		t.Fatalf("CreatePartitions up to the bound: %s", codeName(res.ErrorCode))
	}
	if got := len(partitionDirs(t, mem, "/data", "fifteen")); got != 20 || b.Image().Topic("six") != nil {
		t.Fatalf("%d directories of fifteen, six exists: %v", got, b.Image().Topic("six") != nil)
	}
}

// blockingFS holds the creation of one partition directory until released.
type blockingFS struct {
	vfs.FS
	path    string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (f *blockingFS) MkdirAll(p string, perm os.FileMode) error {
	if p == f.path {
		f.once.Do(func() {
			close(f.reached)
			<-f.release
		})
	}
	return f.FS.MkdirAll(p, perm)
}

// TestLargeCreationDoesNotBlockOtherChanges: while a topic's partitions are being
// created (it is committed, and its creation waits for them), other topics are created,
// changed, deleted and written to.
func TestLargeCreationDoesNotBlockOtherChanges(t *testing.T) {
	fsys := &blockingFS{FS: vfs.NewMem(), path: "/data/big-7", reached: make(chan struct{}), release: make(chan struct{})}
	n := startNodeFS(t, fsys, "/data", nil)
	released := false
	t.Cleanup(func() { // before the node stops: it waits for the blocked request
		if !released {
			close(fsys.release)
		}
	})
	cl := n.client()
	n.createTopic(t, "existing", 1, nil)
	n.createTopic(t, "doomed", 1, nil)

	big := make(chan []kmsg.CreateTopicsResponseTopic, 1)
	go func() {
		res, err := createTopicsReq(cl, 50, "big")
		if err != nil {
			res = []kmsg.CreateTopicsResponseTopic{{ErrorCode: -1, ErrorMessage: kmsg.StringPtr(err.Error())}}
		}
		big <- res
	}()
	<-fsys.reached // the big creation is under way, stopped at partition 7

	// Another connection: one connection's requests are served one at a time, in Kafka
	// as here.
	cl = n.client()
	others := make(chan string, 1)
	go func() {
		others <- func() string {
			if res, err := createTopicsReq(cl, 2, "small"); err != nil || res[0].ErrorCode != 0 {
				return fmt.Sprintf("create small: %v %v", err, res)
			}
			if c, _, err := createPartitionsReq(cl, 3, "existing"); err != nil || c != 0 {
				return fmt.Sprintf("create partitions: %v %s", err, codeName(c))
			}
			if c, err := deleteTopicReq(cl, "doomed"); err != nil || c != 0 {
				return fmt.Sprintf("delete: %v %s", err, codeName(c))
			}
			if c, err := produceReq(cl, "small"); err != nil || c != 0 {
				return fmt.Sprintf("produce: %v %s", err, codeName(c))
			}
			if n.srv.Broker().Image().Topic("big") == nil {
				return "big is not in the metadata while its partitions are being created"
			}
			return ""
		}()
	}()
	select {
	case msg := <-others:
		if msg != "" {
			t.Fatal(msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("other topic changes did not complete while a creation was under way")
	}
	close(fsys.release)
	released = true
	if res := (<-big)[0]; res.ErrorCode != 0 || res.NumPartitions != 50 {
		t.Fatalf("big: %s, %d partitions", codeName(res.ErrorCode), res.NumPartitions)
	}
	if c := produceOne(t, cl, "big"); c != 0 {
		t.Fatalf("produce to big: %s", codeName(c))
	}
}
