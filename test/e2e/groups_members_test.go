package e2e

// Pieces of the process-level consumer-group tests: group members as separate
// processes (kcat -G, and groups/pygroup.py for python3-kafka and
// python3-confluent-kafka) whose stdout lines are the records they consumed, a
// ledger of those deliveries checked by content, a franz-go producer, and a broker
// process that restarts on the port it had (the shared harness binds a new port on
// every start, and group members only know the address they were started with).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// delivery is one record handed to one member.
type delivery struct {
	member    string
	p         int32
	o         int64
	v         string
	committed bool // the member's commit covering it succeeded
	at        time.Time
}

// groupLedger records every delivery from every member process.
type groupLedger struct {
	mu      sync.Mutex
	changed chan struct{}
	all     []delivery
	byValue map[string][]delivery
}

func newGroupLedger() *groupLedger {
	return &groupLedger{changed: make(chan struct{}), byValue: map[string][]delivery{}}
}

func (l *groupLedger) add(d delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d.at = time.Now()
	l.all = append(l.all, d)
	l.byValue[d.v] = append(l.byValue[d.v], d)
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitFor blocks until cond holds (checked after every delivery) or timeout.
func (l *groupLedger) waitFor(t *testing.T, what string, timeout time.Duration, cond func(l *groupLedger) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, ch, n := cond(l), l.changed, len(l.byValue)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s (%d distinct values delivered)", timeout, what, n)
		}
	}
}

func (l *groupLedger) hasDelivered(member string) func(*groupLedger) bool {
	return func(l *groupLedger) bool {
		for _, d := range l.all {
			if d.member == member {
				return true
			}
		}
		return false
	}
}

func (l *groupLedger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byValue)
}

// waitDelivered waits until every wanted value was delivered at least once.
func (l *groupLedger) waitDelivered(t *testing.T, want []prod, timeout time.Duration) {
	t.Helper()
	missing := func() []string {
		var out []string
		for _, p := range want {
			if len(l.byValue[p.v]) == 0 {
				out = append(out, fmt.Sprintf("%s at %d/%d", p.v, p.p, p.o))
			}
		}
		return out
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		miss, ch := missing(), l.changed
		var near []string
		if len(miss) > 0 && len(miss) <= 10 {
			// Who consumed around the first missing record, for the failure message.
			for _, d := range l.all {
				var mp int32
				var mo int64
				fmt.Sscanf(miss[0][strings.Index(miss[0], " at ")+4:], "%d/%d", &mp, &mo)
				if d.p == mp && d.o >= mo-3 && d.o <= mo+3 {
					near = append(near, fmt.Sprintf("%s:%d/%d(c=%v)", d.member, d.p, d.o, d.committed))
				}
			}
		}
		l.mu.Unlock()
		if len(miss) == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			if len(miss) > 10 {
				miss = append(miss[:10], "...")
			}
			t.Fatalf("timed out after %v: %d of %d records never delivered: %v; deliveries near the first: %v", timeout, len(miss), len(want), miss, near)
		}
	}
}

// check asserts exactly-once by content: every wanted value delivered, each
// delivery at the position the value was produced at, nothing unknown delivered,
// and no value delivered and committed twice (a redelivery is allowed only of a
// delivery whose commit failed). It returns the number of redeliveries.
func (l *groupLedger) check(t *testing.T, want []prod) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	at := map[string]prod{}
	for _, p := range want {
		at[p.v] = p
	}
	var problems []string
	redelivered := 0
	for v, ds := range l.byValue {
		p, ok := at[v]
		if !ok {
			problems = append(problems, fmt.Sprintf("value %q delivered but never produced", v))
			continue
		}
		commits := 0
		for _, d := range ds {
			if d.p != p.p || d.o != p.o {
				problems = append(problems, fmt.Sprintf("value %q produced at %d/%d, delivered at %d/%d", v, p.p, p.o, d.p, d.o))
			}
			if d.committed {
				commits++
			}
		}
		if commits > 1 {
			problems = append(problems, fmt.Sprintf("value %q delivered and committed %d times: %+v", v, commits, ds))
		}
		redelivered += len(ds) - 1
	}
	for _, p := range want {
		if len(l.byValue[p.v]) == 0 {
			problems = append(problems, fmt.Sprintf("value %q (%d/%d) never delivered", p.v, p.p, p.o))
		}
	}
	sort.Strings(problems)
	if len(problems) > 10 {
		problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
	}
	if len(problems) > 0 {
		t.Errorf("exactly-once violated:\n%s", strings.Join(problems, "\n"))
	}
	return redelivered
}

func (l *groupLedger) perMember() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, d := range l.all {
		out[d.member]++
	}
	return out
}

// memberProc is one group member process.
type memberProc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{} // stdout drained and the process waited for
	stderr *lockedBuffer
}

// startMemberProc runs a member; every stdout line is parsed into a delivery.
// The process is killed by its pid at cleanup if still running.
func startMemberProc(t *testing.T, led *groupLedger, name string, parse func(string) (delivery, error), prog string, args ...string) *memberProc {
	t.Helper()
	cmd := exec.Command(prog, args...)
	// The member dies with the test binary even if a -timeout panic skips Cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	m := &memberProc{name: name, cmd: cmd, done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = m.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d, err := parse(sc.Text())
			if err != nil {
				m.stderr.Write([]byte(fmt.Sprintf("test: unparsable stdout line %q: %v\n", sc.Text(), err)))
				continue
			}
			d.member = name
			led.add(d)
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			t.Logf("member %s (%v) stderr:\n%s", name, cmd.ProcessState, m.stderr.String())
		}
	})
	return m
}

// stop asks the member to leave (SIGTERM) and waits for it to exit cleanly. A
// member that died on its own before (a client crash) fails the test.
func (m *memberProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-m.done:
		t.Errorf("member %s exited (%v) before it was asked to; its stderr ends:\n%s", m.name, m.cmd.ProcessState, tail(m.stderr.String(), 1500))
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		if !m.cmd.ProcessState.Success() {
			t.Errorf("member %s exited with %v after SIGTERM; its stderr ends:\n%s", m.name, m.cmd.ProcessState, tail(m.stderr.String(), 1500))
		}
	case <-time.After(20 * time.Second):
		t.Errorf("member %s did not exit within 20s of SIGTERM; killing it", m.name)
		m.kill()
	}
}

// tail is the end of a member's stderr, with a diagnosis of a crash seen before.
func tail(s string, n int) string {
	if strings.Contains(s, "object of type 'NoneType' has no len()") {
		s += "\n[test: python3-kafka 2.0.2 fails like this when a Fetch response carries null records for a partition; Kafka always sends a non-null (empty) records field]"
	}
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// kill ends the member with SIGKILL (which also ends a stopped process).
func (m *memberProc) kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

func pyMember(t *testing.T, led *groupLedger, lib, addr, topic, group, name string, sessionMs int) *memberProc {
	t.Helper()
	return startMemberProc(t, led, name, parsePyLine, "/usr/bin/python3", filepath.Join(e2eDir(), "groups", "pygroup.py"),
		"--lib", lib, "--bootstrap", addr, "--topic", topic, "--group", group, "--member", name, "--session-ms", strconv.Itoa(sessionMs))
}

func parsePyLine(line string) (delivery, error) {
	var j struct {
		P int32  `json:"p"`
		O int64  `json:"o"`
		V string `json:"v"`
		C bool   `json:"c"`
	}
	if err := json.Unmarshal([]byte(line), &j); err != nil {
		return delivery{}, err
	}
	return delivery{p: j.P, o: j.O, v: j.V, committed: j.C}, nil
}

// kcatMember runs kcat's balanced consumer. kcat does not say which offsets it
// committed; librdkafka commits what kcat was handed automatically (every few
// seconds, before giving up partitions in a rebalance, and on the clean close
// SIGTERM triggers), so every delivery counts as committed and no redelivery is
// allowed.
func kcatMember(t *testing.T, led *groupLedger, addr, topic, group, name string) *memberProc {
	t.Helper()
	return startMemberProc(t, led, name, parseKcatLine, "kcat", "-b", addr, "-G", group, "-u", "-q",
		"-f", "%p %o %s\n", "-X", "client.id="+name, "-X", "auto.offset.reset=earliest",
		"-X", "heartbeat.interval.ms=100", "-X", "session.timeout.ms=6000",
		"-X", "auto.commit.interval.ms=100", "-X", "fetch.wait.max.ms=100", topic)
}

func parseKcatLine(line string) (delivery, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return delivery{}, fmt.Errorf("want 3 fields")
	}
	p, err := strconv.ParseInt(f[0], 10, 32)
	if err != nil {
		return delivery{}, err
	}
	o, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return delivery{}, err
	}
	return delivery{p: int32(p), o: o, v: f[2], committed: true}, nil
}

// prod is one acknowledged record.
type prod struct {
	p int32
	o int64
	v string
}

func groupProducer(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // python3-kafka here has no snappy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceValues produces n records prefix-i round robin over the partitions.
func produceValues(t *testing.T, cl *kgo.Client, topic string, parts int32, prefix string, n int) []prod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(fmt.Sprintf("%s-%05d", prefix, i))}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", prefix, err)
	}
	out := make([]prod, n)
	for i, r := range rs {
		out[i] = prod{p: r.Partition, o: r.Offset, v: string(r.Value)}
	}
	return out
}

// keepProducing adds a batch every 20ms until the returned stop is called, which
// returns everything acknowledged.
func keepProducing(t *testing.T, cl *kgo.Client, topic string, parts int32, prefix string) func() []prod {
	quit, done := make(chan struct{}), make(chan struct{})
	var out []prod
	var failed error
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond) // paces production only
		defer tick.Stop()
		for b := 0; ; b++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			rs := make([]*kgo.Record, parts*2)
			for i := range rs {
				rs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(fmt.Sprintf("%s-%04d-%02d", prefix, b, i))}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			if err != nil {
				failed = err
				return
			}
			for _, r := range rs {
				out = append(out, prod{p: r.Partition, o: r.Offset, v: string(r.Value)})
			}
		}
	}()
	return func() []prod {
		close(quit)
		<-done
		if failed != nil {
			t.Fatalf("background produce: %v", failed)
		}
		return out
	}
}

// waitCommittedAtEnd waits until the group's committed offset of every partition
// equals its log end offset: all consumed records are committed. It polls
// OffsetFetch, the only way to see another client's commits.
func waitCommittedAtEnd(t *testing.T, adm *kadm.Client, group, topic string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		offs, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		if err1 != nil || err2 != nil {
			last = fmt.Sprint(err1, err2)
		} else {
			last = ""
			ends.Each(func(e kadm.ListedOffset) {
				if o, _ := offs.Lookup(topic, e.Partition); o.At != e.Offset {
					last += fmt.Sprintf(" p%d committed %d end %d;", e.Partition, o.At, e.Offset)
				}
			})
			if last == "" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // pacing between polls of the condition
	}
	t.Fatalf("group %s never committed up to the log end: %s", group, last)
}

// waitGroupMembers waits until DescribeGroups shows the group Stable with exactly
// the named client IDs, every partition of topic assigned once; it returns the
// partitions of each client.
func waitGroupMembers(t *testing.T, adm *kadm.Client, group, topic string, parts int32, clients ...string) map[string][]int32 {
	t.Helper()
	sort.Strings(clients)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		described, err := adm.DescribeGroups(ctx, group)
		cancel()
		d := described[group]
		switch {
		case err != nil:
			last = err.Error()
		case d.Err != nil:
			last = d.Err.Error()
		case d.State != "Stable":
			last = "state " + d.State
		default:
			owned, seen, ids := map[string][]int32{}, map[int32]bool{}, []string{}
			dup := false
			for _, m := range d.Members {
				ids = append(ids, m.ClientID)
				if c, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range c.Topics {
						for _, p := range tp.Partitions {
							dup = dup || seen[p]
							seen[p] = true
							owned[m.ClientID] = append(owned[m.ClientID], p)
						}
					}
				}
			}
			sort.Strings(ids)
			if fmt.Sprint(ids) == fmt.Sprint(clients) && !dup && len(seen) == int(parts) {
				return owned
			}
			last = fmt.Sprintf("members %v, %d partitions assigned, duplicate %v", ids, len(seen), dup)
		}
		time.Sleep(50 * time.Millisecond) // pacing between polls of the condition
	}
	t.Fatalf("group %s never stable with %v: %s", group, clients, last)
	return nil
}

// pinnedBroker is a broker process that restarts on the address of its first run,
// so clients started with that address find it again.
type pinnedBroker struct {
	t       *testing.T
	dir     string
	addr    string // 127.0.0.1:0 until the first run reports its port
	over    []string
	runs    int
	cmd     *exec.Cmd
	exited  chan struct{}
	stderrs []*lockedBuffer
}

func startPinnedBroker(t *testing.T, overrides ...string) *pinnedBroker {
	t.Helper()
	b := &pinnedBroker{t: t, dir: t.TempDir(), addr: "127.0.0.1:0", over: overrides}
	t.Cleanup(func() {
		b.signal(syscall.SIGTERM, 20*time.Second)
		b.signal(syscall.SIGKILL, 10*time.Second)
		if t.Failed() {
			for i, l := range b.stderrs {
				t.Logf("broker run %d:\n%s", i+1, l.String())
			}
		}
	})
	b.start()
	return b
}

func (b *pinnedBroker) start() {
	b.t.Helper()
	b.runs++
	ready := filepath.Join(b.dir, fmt.Sprintf("ready-%d", b.runs))
	args := []string{"server", "--data-dir", filepath.Join(b.dir, "data"), "--listen", b.addr, "--ready-file", ready, "--http-listen", "none"}
	for _, o := range b.over {
		args = append(args, "--override", o)
	}
	cmd := exec.Command(brokerBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &lockedBuffer{}
	b.stderrs = append(b.stderrs, logs)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start broker: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.cmd, b.exited = cmd, exited
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond) // paces checks of the ready file
	defer tick.Stop()
	for {
		if s, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(s)) != "" {
			b.addr = strings.TrimSpace(string(s))
			return
		}
		select {
		case <-exited:
			b.cmd = nil
			b.t.Fatalf("broker exited before ready:\n%s", logs.String())
		case <-deadline:
			b.t.Fatalf("broker not ready after 60s:\n%s", logs.String())
		case <-tick.C:
		}
	}
}

// signal sends sig to the running broker and waits up to wait for it to exit.
func (b *pinnedBroker) signal(sig syscall.Signal, wait time.Duration) bool {
	if b.cmd == nil {
		return true
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
		b.cmd = nil
		return true
	case <-time.After(wait):
		return false
	}
}
