package server_test

// Topic changes are whole or nothing, bounded, and do not hold up each other: what
// CreateTopics, CreatePartitions and DeleteTopics answer when storage fails at any step,
// when a request or the broker would hold too many partitions, and while a large
// creation is under way.

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

// faults fails storage operations on the paths of one topic and of the metadata log:
// exactly the nth (once), or, with fill, every operation that takes space from the nth
// on (a disk that filled up; removals, truncations and fsyncs still succeed).
type faults struct {
	topic string
	mu    sync.Mutex
	n     int // operations left before the failure; 0 disarmed
	fill  bool
	full  bool
	hit   bool
}

func (f *faults) arm(n int, fill bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n, f.fill, f.full, f.hit = n, fill, false, false
}

func (f *faults) disarm() (hit bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hit = f.hit
	f.n, f.full = 0, false
	return hit
}

func (f *faults) MaybeError(op vfs.Op) error {
	if !strings.Contains(op.Path, "/"+f.topic+"-") && !strings.Contains(op.Path, "__cluster_metadata") {
		return nil
	}
	switch op.Kind {
	case vfs.OpRead, vfs.OpReadDir, vfs.OpStat, vfs.OpClose, vfs.OpRemove, vfs.OpTruncate:
		return nil // these take no space
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full && (op.Kind == vfs.OpOpen || op.Kind == vfs.OpWrite || op.Kind == vfs.OpMkdir) {
		return syscall.ENOSPC
	}
	if f.n == 0 {
		return nil
	}
	f.n--
	if f.n > 0 {
		return nil
	}
	f.hit = true
	f.full = f.fill
	return syscall.ENOSPC
}

// TestTopicChangesAreWholeUnderStorageFaults: whichever storage operation of a topic
// change fails (once, or from then on as a full disk), the change is answered
// KAFKA_STORAGE_ERROR and leaves nothing behind: no topic, no partitions, no directories;
// once storage works again the same change succeeds.
func TestTopicChangesAreWholeUnderStorageFaults(t *testing.T) {
	for _, fill := range []bool{false, true} {
		name := "one op fails"
		if fill {
			name = "disk fills up"
		}
		t.Run(name, func(t *testing.T) {
			mem := vfs.NewMem()
			inj := &faults{topic: "atomic"}
			n := startNodeFS(t, vfs.WithErrors(mem, inj), "/data", nil)
			cl := n.client()
			b := n.srv.Broker()
			check := func(step int, what string, wantParts int32) {
				t.Helper()
				got := int32(0)
				if tp := b.Image().Topic("atomic"); tp != nil {
					got = tp.NumPartitions()
				}
				hosted := int32(0)
				if ht := b.Topic("atomic"); ht != nil {
					hosted = int32(len(ht.Partitions))
				}
				dirs := partitionDirs(t, mem, "/data", "atomic")
				if got != wantParts || hosted != wantParts || int32(len(dirs)) != wantParts {
					t.Fatalf("step %d, %s: metadata has %d partitions, %d hosted, directories %v; want %d of each",
						step, what, got, hosted, dirs, wantParts)
				}
			}

			// CreateTopics.
			for step := 1; ; step++ {
				inj.arm(step, fill)
				res := createTopicsRaw(t, cl, 3, "atomic")[0]
				if !inj.disarm() {
					if res.ErrorCode != 0 {
						t.Fatalf("step %d: no fault, answered %s", step, codeName(res.ErrorCode))
					}
					check(step, "created without faults", 3)
					break
				}
				if res.ErrorCode == 0 {
					// The failed operation was one the creation can do without (a read).
					check(step, "created through a fault", 3)
				} else {
					if res.ErrorCode != kerr.KafkaStorageError.Code {
						t.Fatalf("step %d: storage failed, answered %s (%v)", step, codeName(res.ErrorCode), msgOf(res.ErrorMessage))
					}
					check(step, "failed create", 0)
					if res := createTopicsRaw(t, cl, 3, "atomic")[0]; res.ErrorCode != 0 {
						t.Fatalf("step %d: create again once storage works: %s (%v)", step, codeName(res.ErrorCode), msgOf(res.ErrorMessage))
					}
					check(step, "created again", 3)
				}
				if c := produceOne(t, cl, "atomic"); c != 0 {
					t.Fatalf("step %d: produce to the created topic: %s", step, codeName(c))
				}
				if c := deleteTopicRaw(t, cl, "atomic"); c != 0 {
					t.Fatalf("step %d: delete: %s", step, codeName(c))
				}
				check(step, "deleted", 0)
			}

			// CreatePartitions: 3 -> 5.
			reset := func(step int) {
				t.Helper()
				if tp := b.Image().Topic("atomic"); tp != nil && tp.NumPartitions() == 3 {
					return
				}
				if c := deleteTopicRaw(t, cl, "atomic"); c != 0 {
					t.Fatalf("step %d: delete: %s", step, codeName(c))
				}
				if c := createTopicsRaw(t, cl, 3, "atomic")[0].ErrorCode; c != 0 {
					t.Fatalf("step %d: create: %s", step, codeName(c))
				}
			}
			for step := 1; ; step++ {
				reset(step)
				inj.arm(step, fill)
				res := createPartitionsRaw(t, cl, 5, "atomic")
				if !inj.disarm() {
					if res.ErrorCode != 0 {
						t.Fatalf("step %d: no fault, answered %s", step, codeName(res.ErrorCode))
					}
					check(step, "partitions added without faults", 5)
					break
				}
				if res.ErrorCode == 0 {
					// The failed operation was one the change can do without (a read).
					check(step, "partitions added through a fault", 5)
					continue
				}
				if res.ErrorCode != kerr.KafkaStorageError.Code {
					t.Fatalf("step %d: storage failed, answered %s (%v)", step, codeName(res.ErrorCode), msgOf(res.ErrorMessage))
				}
				check(step, "failed partition change", 3)
				if c := produceOne(t, cl, "atomic"); c != 0 {
					t.Fatalf("step %d: produce after a failed partition change: %s", step, codeName(c))
				}
			}

			// DeleteTopics: refused whole (the topic is intact and serves) or done whole.
			for step := 1; ; step++ {
				inj.arm(step, fill)
				c := deleteTopicRaw(t, cl, "atomic")
				hit := inj.disarm()
				if c == 0 {
					check(step, "deleted", 0)
					break
				}
				if !hit || c != kerr.KafkaStorageError.Code {
					t.Fatalf("step %d: delete answered %s (fault hit: %v)", step, codeName(c), hit)
				}
				check(step, "failed delete", 5)
				if c := produceOne(t, cl, "atomic"); c != 0 {
					t.Fatalf("step %d: produce after a failed delete: %s", step, codeName(c))
				}
			}
		})
	}
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
// created, other topics are created, changed, deleted and written to.
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
			if n.srv.Broker().Image().Topic("big") != nil {
				return "big is in the metadata before its partitions exist"
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
