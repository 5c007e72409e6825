package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// acked is one record the broker acknowledged.
type acked struct {
	P     int32
	O     int64
	Value string
}

// crashProducer is an idempotent franz-go producer with acks=all (both its
// defaults, set explicitly here so the test states them).
func crashProducer(t testing.TB, addr, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.RetryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// produceBatch sends n records spread over partitions and returns those
// acknowledged, in the order they were produced.
func produceBatch(ctx context.Context, cl *kgo.Client, partitions int32, prefix string, n, pad int) ([]acked, error) {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: int32(i) % partitions, Key: []byte(prefix), Value: crashValue(prefix, i, pad)}
	}
	res := cl.ProduceSync(ctx, rs...)
	var out []acked
	for _, r := range rs {
		out = append(out, acked{P: r.Partition, O: r.Offset, Value: string(r.Value)})
	}
	// Keep only the acknowledged ones; results are in completion order.
	failed := map[*kgo.Record]bool{}
	for _, r := range res {
		if r.Err != nil {
			failed[r.Record] = true
		}
	}
	var ok []acked
	for i, r := range rs {
		if !failed[r] {
			ok = append(ok, out[i])
		}
	}
	return ok, res.FirstErr()
}

// crashValue is "<run>-<seq>" (the sequence zero-padded so values of one run
// sort in produce order) and pad filler bytes that do not compress, so the
// producer's default compression does not shrink them away.
func crashValue(run string, seq, pad int) []byte {
	v := []byte(fmt.Sprintf("%s-%08d|", run, seq))
	rng := rand.New(rand.NewPCG(uint64(seq), uint64(len(run))))
	for range pad {
		v = append(v, 'a'+byte(rng.UintN(26)))
	}
	return v
}

// crashCase is a storage layout the crash tests run under.
type crashCase struct {
	name    string
	configs map[string]*string // topic configs
	pad     int                // filler bytes per value
	scale   int                // multiplies the record counts
}

// crashCases: everything in one segment, and small segments (Kafka's
// minimum segment.bytes, 1 MiB) with 1 KiB values so that recovery meets
// several segments per partition and the torn tail is in the last of them.
var crashCases = []crashCase{
	{name: "one-segment", pad: 0, scale: 1},
	{name: "many-segments", configs: map[string]*string{"segment.bytes": kadm.StringPtr("1048576")}, pad: 1024, scale: 3},
}

// segmentCount is the number of segment files of topic-p under dataDir.
func segmentCount(dataDir, topic string, p int32) int {
	n := 0
	dirName := fmt.Sprintf("%s-%d", topic, p)
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, segmentExt()) && filepath.Base(filepath.Dir(path)) == dirName {
			n++
		}
		return nil
	})
	return n
}

func segmentExt() string {
	if brokerKind == "kfake" {
		return ".dat"
	}
	return ".log"
}

// checkAcked reads every partition from the start and checks that each
// acknowledged record is at its offset with its value, that each partition
// holds no value twice, and that values of one producer run appear in the
// order they were produced. It returns the log end offset of each partition.
func checkAcked(t *testing.T, addr, topic string, partitions int32, want []acked) map[int32]int64 {
	t.Helper()
	got, err := franzConsume(context.Background(), addr, topic, partitions, startAt{})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	at := map[[2]int64]rec{}
	ends := map[int32]int64{}
	seen := map[string]int64{}
	for _, r := range got {
		at[[2]int64{int64(r.P), r.O}] = r
		ends[r.P] = max(ends[r.P], r.O+1)
		if o, dup := seen[string(r.V)]; dup {
			t.Errorf("value %q at p%d@%d and again at @%d: duplicate", r.V, r.P, o, r.O)
		}
		seen[string(r.V)] = r.O
	}
	// In order: per partition, one run's sequence numbers grow with the offset.
	sortRecs(got)
	lastSeq := map[string]string{}
	for _, r := range got {
		run, seq, ok := strings.Cut(string(r.V), "-")
		if !ok {
			continue
		}
		k := fmt.Sprintf("%d/%s", r.P, run)
		if prev, ok := lastSeq[k]; ok && seq <= prev {
			t.Errorf("p%d@%d holds %q after %s-%s: out of produce order", r.P, r.O, r.V, run, prev)
		}
		lastSeq[k] = seq
	}
	missing := 0
	for _, a := range want {
		r, ok := at[[2]int64{int64(a.P), a.O}]
		if !ok || string(r.V) != a.Value {
			if missing < 5 {
				t.Errorf("acknowledged record p%d@%d %q: got %q (present %v)", a.P, a.O, a.Value, r.V, ok)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records missing or different", missing, len(want))
	}
	// Order: within a partition, acknowledged offsets grow in produce order.
	last := map[int32]int64{}
	for _, a := range want {
		if o, ok := last[a.P]; ok && a.O <= o {
			t.Errorf("p%d: %q acknowledged at %d, not after the previous record's %d", a.P, a.Value, a.O, o)
		}
		last[a.P] = a.O
	}
	return ends
}

// TestCrashKill9: records acknowledged with acks=all survive kill -9 in the
// middle of a stream, at their offsets and in order; after the restart new
// records continue at the log end.
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	for _, cc := range crashCases {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			crashKill9(t, cc, (*server).Kill)
		})
	}
	// The same under a clean shutdown (SIGTERM) in mid-stream: the broker
	// must exit 0 promptly (server.Stop checks) and keep what it
	// acknowledged.
	t.Run("sigterm", func(t *testing.T) {
		t.Parallel()
		crashKill9(t, crashCases[0], (*server).Stop)
	})
}

func crashKill9(t *testing.T, cc crashCase, stopServer func(*server)) {
	const topic, partitions = "crash", int32(3)
	ackTarget := 3000 * cc.scale
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions, cc.configs)

	// Produce asynchronously so that several batches per partition are in
	// flight (kgo keeps up to 5 requests per broker) when the broker dies.
	// A record counts as acknowledged once its promise reports success.
	cl := crashProducer(t, srv.Addr, topic)
	var (
		mu       sync.Mutex
		all      []acked
		firstErr error
		enough   = make(chan struct{})
		stop     = make(chan struct{})
		done     = make(chan struct{})
		inflight sync.WaitGroup
	)
	go func() {
		defer close(done)
		signalled := false
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				inflight.Wait()
				return
			default:
			}
			r := &kgo.Record{Partition: int32(seq) % partitions, Value: crashValue("run1", seq, cc.pad)}
			inflight.Add(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer inflight.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				all = append(all, acked{P: r.Partition, O: r.Offset, Value: string(r.Value)})
				if len(all) >= ackTarget && !signalled {
					signalled = true
					close(enough)
				}
			})
		}
	}()
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		n, err := len(all), firstErr
		mu.Unlock()
		t.Fatalf("%d records not acknowledged within 2 minutes (%d, first error %v)", ackTarget, n, err)
	}
	stopServer(srv) // mid-stream: requests are in flight
	close(stop)
	// An idempotent producer does not give up on batches it may have sent
	// while it cannot reach a broker; closing the client fails them.
	cl.Close()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("producer still blocked a minute after the client was closed")
	}
	mu.Lock()
	want := append([]acked(nil), all...)
	mu.Unlock()
	t.Logf("%d records acknowledged before the broker stopped (then: %v)", len(want), firstErr)
	if len(want) < ackTarget {
		t.Fatalf("only %d acknowledged", len(want))
	}

	srv.Start()
	ends := checkAcked(t, srv.Addr, topic, partitions, want)

	// Offsets continue at the log end after recovery.
	cl2 := crashProducer(t, srv.Addr, topic)
	defer cl2.Close()
	more, err := produceBatch(context.Background(), cl2, partitions, "run2", 30, cc.pad)
	if err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	next := map[int32]int64{}
	for p := range partitions {
		next[p] = ends[p]
	}
	for _, a := range more {
		if a.O != next[a.P] {
			t.Errorf("after restart %q acknowledged at p%d@%d, want %d (the log end)", a.Value, a.P, a.O, next[a.P])
		}
		next[a.P] = a.O + 1
	}
	checkAcked(t, srv.Addr, topic, partitions, append(want, more...))
	checkSegments(t, srv.DataDir, topic, cc)
}

// checkSegments: the many-segments case must have rolled.
func checkSegments(t *testing.T, dataDir, topic string, cc crashCase) {
	t.Helper()
	if cc.configs == nil {
		return
	}
	if n := segmentCount(dataDir, topic, 0); n < 2 {
		t.Errorf("%s-0 has %d segment files; the case meant to cover several", topic, n)
	}
}

// TestCrashTornTail: after kill -9, garbage is appended to the active
// segment of each partition while the server is down (a torn write: a batch
// header promising more bytes than follow, and a whole-length batch with a
// bad CRC). Recovery must cut the tail: every acknowledged record is served,
// nothing after it, and new records continue right after it.
func TestCrashTornTail(t *testing.T) {
	t.Parallel()
	for _, cc := range crashCases {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			crashTornTail(t, cc)
		})
	}
}

func crashTornTail(t *testing.T, cc crashCase) {
	const topic, partitions = "torn", int32(2)
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions, cc.configs)

	cl := crashProducer(t, srv.Addr, topic)
	var want []acked
	for b := 0; b < 8*cc.scale*cc.scale; b++ {
		got, err := produceBatch(context.Background(), cl, partitions, fmt.Sprintf("torn-b%03d", b), 40, cc.pad)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		want = append(want, got...)
	}
	cl.Close()
	srv.Kill()

	rng := rand.New(rand.NewPCG(7, 11))
	for p := range partitions {
		seg := activeSegment(t, srv.DataDir, topic, p)
		var garbage []byte
		if p == 0 {
			garbage = tornBatch(rng)
		} else {
			garbage = badCRCBatch(rng)
		}
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(garbage); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("appended %d garbage bytes to %s", len(garbage), seg)
	}

	srv.Start()
	ends := checkAcked(t, srv.Addr, topic, partitions, want)
	perPart := map[int32]int64{}
	for _, a := range want {
		perPart[a.P]++
	}
	for p := range partitions {
		if ends[p] != perPart[p] {
			t.Errorf("p%d: log end %d after recovery, want %d (everything acknowledged, nothing of the torn tail)", p, ends[p], perPart[p])
		}
	}

	cl2 := crashProducer(t, srv.Addr, topic)
	defer cl2.Close()
	more, err := produceBatch(context.Background(), cl2, partitions, "after", 20, cc.pad)
	if err != nil {
		t.Fatalf("produce after recovery: %v", err)
	}
	for _, a := range more {
		if a.O < perPart[a.P] {
			t.Errorf("%q acknowledged at p%d@%d, inside the recovered log (end %d)", a.Value, a.P, a.O, perPart[a.P])
		}
	}
	checkAcked(t, srv.Addr, topic, partitions, append(want, more...))

	// And once more through a clean restart: the recovered log reopens as is.
	srv.Stop()
	srv.Start()
	checkAcked(t, srv.Addr, topic, partitions, append(want, more...))
	checkSegments(t, srv.DataDir, topic, cc)
}

// activeSegment finds the segment file with the highest base offset in the
// directory <topic>-<partition> anywhere under dataDir.
func activeSegment(t *testing.T, dataDir, topic string, p int32) string {
	t.Helper()
	ext := segmentExt()
	dirName := fmt.Sprintf("%s-%d", topic, p)
	var segs []string
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ext) && filepath.Base(filepath.Dir(path)) == dirName {
			segs = append(segs, path)
		}
		return nil
	})
	if len(segs) == 0 {
		t.Fatalf("no %s segment in a directory %s under %s", ext, dirName, dataDir)
	}
	sort.Strings(segs) // names are zero-padded base offsets
	return segs[len(segs)-1]
}

// tornBatch is the start of a v2 batch whose length field promises 4 KiB
// while only a few dozen bytes follow: a write cut short by the crash.
func tornBatch(rng *rand.Rand) []byte {
	b := make([]byte, 61+19)
	binary.BigEndian.PutUint64(b[0:], 1<<20) // base offset
	binary.BigEndian.PutUint32(b[8:], 4096)  // batch length
	b[16] = 2                                // magic
	for i := 17; i < len(b); i++ {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// badCRCBatch is a complete-length v2 batch whose CRC does not match.
func badCRCBatch(rng *rand.Rand) []byte {
	const n = 200
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	binary.BigEndian.PutUint64(b[0:], 1<<20)
	binary.BigEndian.PutUint32(b[8:], n-12)
	binary.BigEndian.PutUint32(b[12:], 0) // partition leader epoch
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], 0)  // attributes
	binary.BigEndian.PutUint32(b[23:], 0)  // last offset delta
	binary.BigEndian.PutUint32(b[57:], 1)  // record count
	binary.BigEndian.PutUint32(b[17:], 42) // CRC: wrong
	return b
}

// TestCrashKill9ProducerRetries: the same idempotent producer keeps running
// across kill -9 and a restart on the same address, so batches whose
// responses the crash swallowed are retried with their original producer ID
// and sequence numbers. The restarted broker must rebuild producer state
// from its log and answer those retries without appending them twice:
// every record is acknowledged, each is in the log exactly once, in order.
func TestCrashKill9ProducerRetries(t *testing.T) {
	t.Parallel()
	const topic, partitions = "retries", int32(2)
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(time.Minute), kgo.RetryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 6000
	var (
		mu       sync.Mutex
		all      []acked
		errs     []error
		inflight sync.WaitGroup
		killAt   = make(chan struct{})
		killOnce sync.Once
	)
	go func() {
		for seq := 0; seq < total; seq++ {
			r := &kgo.Record{Partition: int32(seq) % partitions, Value: crashValue("run1", seq, 0)}
			inflight.Add(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer inflight.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				all = append(all, acked{P: r.Partition, O: r.Offset, Value: string(r.Value)})
				if len(all) == total/3 {
					killOnce.Do(func() { close(killAt) })
				}
			})
		}
	}()
	select {
	case <-killAt:
	case <-time.After(2 * time.Minute):
		t.Fatal("a third of the records not acknowledged within 2 minutes")
	}
	srv.Kill()            // mid-stream: requests are in flight
	srv.Listen = srv.Addr // same address: the client knows no other
	srv.Start()

	finished := make(chan struct{})
	go func() { inflight.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("records still outstanding two minutes after the restart")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("%d records failed across the restart, first: %v", len(errs), errs[0])
	}
	if len(all) != total {
		t.Errorf("%d of %d records acknowledged", len(all), total)
	}
	ends := checkAcked(t, srv.Addr, topic, partitions, all)
	var n int64
	for _, e := range ends {
		n += e
	}
	if n != total {
		t.Errorf("log holds %d records, want exactly the %d produced (no duplicates from retries)", n, total)
	}
}

// TestCrashKill9PythonProducers: the same crash with python3-kafka and
// python3-confluent-kafka as the producers (acks=all; confluent with
// idempotence). The helper prints each record's delivery report the moment
// it arrives; every record reported before kill -9 must be in the log after
// the restart, at its offset, in order.
func TestCrashKill9PythonProducers(t *testing.T) {
	t.Parallel()
	for _, lib := range []struct{ name, arg string }{{"python3-kafka", "kafka"}, {"python3-confluent-kafka", "confluent"}} {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			const topic, partitions = "pycrash", int32(2)
			srv := startServer(t)
			createTopic(t, newAdmin(t, srv.Addr), topic, partitions, nil)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(e2eDir(), "pyclient.py"), lib.arg, "stream",
				"--bootstrap", srv.Addr, "--topic", topic, "--partitions", "0,1", "--count", "1000000")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			var want []acked
			sc := bufio.NewScanner(out)
			killed := false
			for sc.Scan() {
				var line struct {
					P int32
					O int64
					V string
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("%s: line %q: %v", lib.name, sc.Bytes(), err)
				}
				want = append(want, acked{P: line.P, O: line.O, Value: line.V})
				if len(want) == 2000 && !killed {
					killed = true
					srv.Kill() // mid-stream
					// Reports already on their way out still count:
					// the broker acknowledged those records before it
					// died. Then the producer is stopped by its pid.
					_ = cmd.Process.Kill()
				}
			}
			_ = cmd.Wait()
			if !killed {
				t.Fatalf("%s stopped after %d acknowledgements, before the crash; stderr:\n%s", lib.name, len(want), lastBytes([]byte(stderr.String()), 2000))
			}
			t.Logf("%s: %d records acknowledged before kill -9", lib.name, len(want))

			srv.Start()
			ends := checkAcked(t, srv.Addr, topic, partitions, want)
			cl := crashProducer(t, srv.Addr, topic)
			defer cl.Close()
			more, err := produceBatch(context.Background(), cl, partitions, "run2", 10, 0)
			if err != nil {
				t.Fatalf("produce after restart: %v", err)
			}
			for _, a := range more {
				if a.O < ends[a.P] {
					t.Errorf("after restart %q acknowledged at p%d@%d, inside the recovered log (end %d)", a.Value, a.P, a.O, ends[a.P])
				}
			}
		})
	}
}

// TestCrashKill9Metadata: topics whose creation was acknowledged, and a
// topic config change that was acknowledged, survive kill -9 right after
// the answer, with the same topic IDs and partition counts.
func TestCrashKill9Metadata(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	adm := newAdmin(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]int32{"meta-a": 1, "meta-b": 4, "meta-c": 7}
	for topic, n := range want {
		createTopic(t, adm, topic, n, nil)
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, "meta-b")
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = alter.On("meta-b", nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("alter config: %v", err)
	}
	before, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Start()

	adm2 := newAdmin(t, srv.Addr)
	after, err := adm2.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for topic, n := range want {
		td, ok := after[topic]
		if !ok || td.Err != nil {
			t.Errorf("%s missing after kill -9 (%v)", topic, td.Err)
			continue
		}
		if got := int32(len(td.Partitions)); got != n {
			t.Errorf("%s: %d partitions after restart, want %d", topic, got, n)
		}
		if td.ID != before[topic].ID {
			t.Errorf("%s: topic ID %v after restart, was %v", topic, td.ID, before[topic].ID)
		}
	}
	rc, err := adm2.DescribeTopicConfigs(ctx, "meta-b")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On("meta-b", nil)
	if err == nil {
		err = c.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range c.Configs {
		if kv.Key == "retention.ms" {
			found = true
			if kv.MaybeValue() != "3600000" {
				t.Errorf("meta-b retention.ms = %q after restart, want 3600000", kv.MaybeValue())
			}
		}
	}
	if !found {
		t.Errorf("meta-b: retention.ms not described after restart")
	}
}

// TestSigstopRetries: the broker freezes (SIGSTOP) for longer than the
// producer's request timeout, so an idempotent producer gives up on requests
// the broker has not read yet and sends them again on a new connection.
// When the broker thaws it reads the originals and the retries; the
// duplicates must be recognised by producer ID and sequence and answered
// without appending twice: every record acknowledged, each once in the log.
func TestSigstopRetries(t *testing.T) {
	t.Parallel()
	const topic, partitions, total = "sigstop", int32(2), 4000
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions, nil)
	hook := &produceErrHook{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.ProduceRequestTimeout(time.Second), kgo.RequestTimeoutOverhead(time.Second),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.RetryTimeout(2*time.Minute),
		kgo.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		all      []acked
		errs     []error
		inflight sync.WaitGroup
	)
	produce := func(from, to int) {
		for seq := from; seq < to; seq++ {
			r := &kgo.Record{Partition: int32(seq) % partitions, Value: crashValue("run1", seq, 0)}
			inflight.Add(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer inflight.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				all = append(all, acked{P: r.Partition, O: r.Offset, Value: string(r.Value)})
			})
		}
	}
	// A quarter before the pause, acknowledged; the rest is sent while the
	// broker is frozen, so requests are surely in flight through it.
	produce(0, total/4)
	inflight.Wait()
	srv.Signal(syscall.SIGSTOP)
	go produce(total/4, total)
	// The broker stays frozen until a produce request has timed out (the client's
	// timeout is 2 s with its overhead), so that the producer surely retries; a
	// fixed pause raced the client on a loaded machine. No timeout within 30 s
	// fails the test below.
	for deadline := time.Now().Add(30 * time.Second); hook.n.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	srv.Signal(syscall.SIGCONT)

	finished := make(chan struct{})
	go func() { inflight.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("records still outstanding two minutes after SIGCONT")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("%d records failed, first: %v", len(errs), errs[0])
	}
	failedReqs := hook.n.Load()
	if failedReqs == 0 {
		t.Errorf("no produce request failed during the pause: the fault did not make the producer retry")
	}
	t.Logf("%d produce requests failed and were retried during the pause", failedReqs)
	ends := checkAcked(t, srv.Addr, topic, partitions, all)
	var n int64
	for _, e := range ends {
		n += e
	}
	if n != total {
		t.Errorf("log holds %d records, want exactly the %d produced (retries appended twice?)", n, total)
	}
}

// produceErrHook counts produce requests that ended in an error (a timeout
// while the broker is frozen).
type produceErrHook struct{ n atomic.Int64 }

func (h *produceErrHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == 0 && e2e.Err() != nil {
		h.n.Add(1)
	}
}
