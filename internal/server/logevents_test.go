package server_test

// The events the broker logs at INFO for an operator, one test per class, read back
// from the JSON format (every line must parse): group joins and rebalances, group and
// offset deletions and resets, config changes, topic and partition changes, recovery
// actions and slow requests.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/logging"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// loggedNode is a node whose log lines, in JSON, the test reads.
type loggedNode struct {
	*node
	logs *syncBuffer
}

// startLogged starts a broker over dir (a fresh one if "") on fsys (the OS if nil),
// logging JSON at DEBUG.
func startLogged(t *testing.T, dir string, fsys vfs.FS, over map[string]string) *loggedNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ov := map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0", "group.initial.rebalance.delay.ms": "0",
		"log.cleaner.enable": "false", "vltava.log.format": "json"}
	maps.Copy(ov, over)
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h, err := logging.NewHandler(logs, cfg.Values["vltava.log.format"], slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, broker.Options{FS: fsys, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, srv: srv, addr: srv.Addrs()[0]}
	t.Cleanup(n.stop)
	return &loggedNode{node: n, logs: logs}
}

// lines parses every line logged so far; a line that is not one JSON object fails
// the test.
func (n *loggedNode) lines() []map[string]any {
	n.t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(n.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			n.t.Fatalf("log line is not JSON (%v): %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

// find returns the lines with message msg whose fields include want (values
// compared as fmt prints them).
func (n *loggedNode) find(msg string, want map[string]any) []map[string]any {
	n.t.Helper()
	var out []map[string]any
next:
	for _, l := range n.lines() {
		if l["msg"] != msg {
			continue
		}
		for k, v := range want {
			if fmt.Sprint(l[k]) != fmt.Sprint(v) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// one returns the single line find finds, failing otherwise.
func (n *loggedNode) one(msg string, want map[string]any) map[string]any {
	n.t.Helper()
	ls := n.find(msg, want)
	if len(ls) != 1 {
		n.t.Fatalf("%d lines %q with %v, want 1; the log:\n%s", len(ls), msg, want, n.logs.String())
	}
	return ls[0]
}

func (n *loggedNode) waitLine(msg string, want map[string]any) map[string]any {
	n.t.Helper()
	waitFor(n.t, fmt.Sprintf("a log line %q with %v", msg, want), func() bool { return len(n.find(msg, want)) > 0 })
	return n.find(msg, want)[0]
}

func topicIDString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// TestLogTopicChanges: topic creation, new partitions and deletion are logged with the
// topic ID as the CLI shows it.
func TestLogTopicChanges(t *testing.T) {
	n := startLogged(t, "", nil, nil)
	n.createTopic(t, "orders", 2, nil)
	id := topicIDString(topicID(t, n.node, "orders"))
	n.one("created topic", map[string]any{"topic": "orders", "topic_id": id, "partitions": 2, "level": "INFO"})
	if _, err := n.admin().CreatePartitions(ctxT(t), 3, "orders"); err != nil {
		t.Fatal(err)
	}
	n.one("created partitions", map[string]any{"topic": "orders", "topic_id": id, "partitions": 5, "was": 2})
	if _, err := n.admin().DeleteTopics(ctxT(t), "orders"); err != nil {
		t.Fatal(err)
	}
	n.one("deleted topic", map[string]any{"topic": "orders", "topic_id": id})
}

// TestLogConfigChanges: a config change says who made it, the keys and their new
// values, but never a secret's value.
func TestLogConfigChanges(t *testing.T) {
	n := startLogged(t, "", nil, nil)
	n.createTopic(t, "orders", 1, nil)
	adm := kadm.NewClient(n.client(kgo.ClientID("ops-tool")))
	rs, err := adm.AlterTopicConfigs(ctxT(t), []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")},
		{Op: kadm.DeleteConfig, Name: "cleanup.policy"},
	}, "orders")
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	l := n.one("config changed", map[string]any{"resource": "topic", "name": "orders", "client_id": "ops-tool"})
	if l["changes"] != "retention.ms=3600000, cleanup.policy deleted" || !strings.HasPrefix(fmt.Sprint(l["client"]), "127.0.0.1:") {
		t.Fatalf("config change line: %v", l)
	}
	// Validation only changes nothing and logs nothing.
	if _, err := adm.ValidateAlterTopicConfigs(ctxT(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	if ls := n.find("config changed", nil); len(ls) != 1 {
		t.Fatalf("%d config change lines after a validate-only request", len(ls))
	}
	brs, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "ssl.keystore.password", Value: kadm.StringPtr("s3cret-value")},
		{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("7200000")},
	})
	if err == nil {
		err = brs[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	l = n.one("config changed", map[string]any{"resource": "broker"})
	if l["changes"] != "ssl.keystore.password=[hidden], log.retention.ms=7200000" || l["name"] != "(cluster default)" {
		t.Fatalf("broker config change line: %v", l)
	}
	if strings.Contains(n.logs.String(), "s3cret") {
		t.Fatal("a secret's value was logged")
	}
}

// TestLogGroupEvents: members joining and rebalances, classic and KIP-848, are logged
// with the group, generation, members and how long the join phase took.
func TestLogGroupEvents(t *testing.T) {
	n := startLogged(t, "", nil, nil)
	n.createTopic(t, "orders", 2, nil)
	// A group consumer joins as soon as it is made.
	n.client(kgo.ClientID("billing-app"), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"))
	joined := n.waitLine("group member joined", map[string]any{"group": "billing", "type": "classic", "client_id": "billing-app", "members": 1})
	if !strings.HasPrefix(fmt.Sprint(joined["client_host"]), "/127.0.0.1") || joined["level"] != "INFO" {
		t.Fatalf("join line: %v", joined)
	}
	l := n.waitLine("group rebalanced", map[string]any{"group": "billing", "type": "classic", "generation": 1, "members": 1})
	if l["protocol"] == "" || l["leader"] != joined["member"] || l["duration_ms"] == nil {
		t.Fatalf("rebalance line: %v", l)
	}

	// KIP-848: a member's join and the new group epoch's assignment.
	m := newCGMember(t, n.node, "kip848", topicID(t, n.node, "orders"))
	if err := m.heartbeat("orders"); err != nil {
		t.Fatal(err)
	}
	n.one("group member joined", map[string]any{"group": "kip848", "type": "consumer", "member": m.id, "client_id": "raw848"})
	l = n.one("group rebalanced", map[string]any{"group": "kip848", "type": "consumer", "generation": 1, "members": 1})
	if l["assignor"] != "uniform" || l["assignment_ms"] == nil {
		t.Fatalf("KIP-848 rebalance line: %v", l)
	}
}

// TestLogGroupAdmin: group deletion, offset deletion and offset resets (commits from
// outside a generation) are logged with who made them; a connection's second commit to
// the same group goes to DEBUG.
func TestLogGroupAdmin(t *testing.T) {
	n := startLogged(t, "", nil, nil)
	n.createTopic(t, "orders", 2, nil)
	adm := kadm.NewClient(n.client(kgo.ClientID("reset-tool")))
	offsets := kadm.Offsets{}
	offsets.AddOffset("orders", 0, 5, -1)
	offsets.AddOffset("orders", 1, 7, -1)
	commit := func() {
		t.Helper()
		rs, err := adm.CommitOffsets(ctxT(t), "billing", offsets)
		if err == nil {
			err = rs.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	commit()
	msg := "group offsets committed outside a generation (an offset reset, or a consumer that assigns itself partitions)"
	l := n.one(msg, map[string]any{"group": "billing", "level": "INFO", "client_id": "reset-tool"})
	if l["offsets"] != "orders-0=5, orders-1=7" {
		t.Fatalf("reset line: %v", l)
	}
	commit() // the same connection again: DEBUG
	n.one(msg, map[string]any{"group": "billing", "level": "DEBUG"})

	if rs, err := adm.DeleteOffsets(ctxT(t), "billing", kadm.TopicsSet{"orders": {1: {}}}); err != nil || rs.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, rs.Error())
	}
	n.one("group offsets deleted", map[string]any{"group": "billing", "partitions": "orders-1", "client_id": "reset-tool"})
	if rs, err := adm.DeleteGroups(ctxT(t), "billing"); err != nil || rs.Error() != nil {
		t.Fatalf("delete group: %v %v", err, rs.Error())
	}
	n.one("group deleted", map[string]any{"group": "billing", "client_id": "reset-tool"})
}

// TestLogRecovery: a restart that finds a torn tail logs what recovery cut, where and
// how many bytes, in JSON as in text.
func TestLogRecovery(t *testing.T) {
	dir := t.TempDir()
	n := startLogged(t, dir, nil, nil)
	n.createTopic(t, "orders", 1, nil)
	r := dialRaw(t, n.addr)
	for _, v := range []string{"a", "b"} {
		if p := produceRaw(t, r, "orders", -1, buildBatch(t, batch.BuildOptions{}, v)); p.ErrorCode != 0 {
			t.Fatalf("produce: %+v", p)
		}
	}
	n.stop()
	// A torn write after the clean stop: half a batch at the end of the segment.
	seg := filepath.Join(dir, "orders-0", "00000000000000000000.log")
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(buildBatch(t, batch.BuildOptions{}, "torn")[:30])
	f.Close()

	n = startLogged(t, dir, nil, nil)
	l := n.one("log recovery removed or distrusted data", map[string]any{"partition": "orders-0", "level": "WARN", "log_end_offset": 2})
	if !strings.Contains(fmt.Sprint(l["truncated"]), "30 bytes") {
		t.Fatalf("recovery line does not say what was cut: %v", l)
	}
}

// TestSlowRequestLog: a request slower than vltava.request.slow.log.threshold.ms is
// logged with its API, client and sizes; a long poll's wait does not count.
func TestSlowRequestLog(t *testing.T) {
	var slow atomic.Bool
	var inject vfs.InjectorFunc = func(op vfs.Op) error {
		// A slow disk: writes to the slow topic's segments take 50 ms.
		if slow.Load() && op.Kind == vfs.OpWrite && strings.Contains(op.Path, "slow-0") && strings.HasSuffix(op.Path, ".log") {
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}
	n := startLogged(t, "", vfs.WithErrors(vfs.OS(), inject), map[string]string{"vltava.request.slow.log.threshold.ms": "20"})
	n.createTopic(t, "slow", 1, nil)
	n.createTopic(t, "idle", 1, nil)
	r := dialRaw(t, n.addr)
	slow.Store(true)
	if p := produceRaw(t, r, "slow", -1, buildBatch(t, batch.BuildOptions{}, "x")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	slow.Store(false)
	// A long poll on an empty topic waits its 100 ms on purpose: not slow.
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "idle"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r.do(req)
	r.do(kmsg.NewPtrApiVersionsRequest()) // the fetch has been counted before this is answered

	l := n.waitLine("slow request", map[string]any{"api": "Produce", "client_id": "test", "level": "INFO"})
	if d, _ := l["duration_ms"].(float64); d < 50 {
		t.Fatalf("slow request line: duration %v ms, want at least 50: %v", l["duration_ms"], l)
	}
	if rb, _ := l["request_bytes"].(float64); rb <= 0 || l["response_bytes"].(float64) <= 0 || l["threshold_ms"].(float64) != 20 {
		t.Fatalf("slow request line: %v", l)
	}
	if ls := n.find("slow request", map[string]any{"api": "Fetch"}); len(ls) != 0 {
		t.Fatalf("a long poll was logged as slow: %v", ls)
	}
}
