package e2e

// Consumer groups with unmodified clients as separate processes: kcat's balanced
// consumer, python3-kafka's KafkaConsumer(group_id=...) and
// python3-confluent-kafka's Consumer with group.id, alone and mixed in one group,
// while members join and leave; a member frozen with SIGSTOP expiring after its
// session timeout; the broker restarted (SIGTERM and kill -9) in the middle of
// group consumption; and the `vltava group` tools against a live group. Every
// test checks records by content: each produced value delivered at its position,
// none committed twice.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

var groupBrokerOverrides = []string{"group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=500"}

// runProcGroupScenario consumes a topic with a group whose membership changes
// while a producer keeps adding records: m1 and m2 start, m3 joins, m1 leaves,
// m4 joins, m2 leaves; then production stops and m3 and m4 finish the topic.
//
// With quiescentLeaves, a member leaves only once everything produced so far is
// consumed and committed (production pauses around the leave). kcat needs that:
// on SIGTERM it drops a message librdkafka already returned (and whose offset it
// stored, so the close commits past it) without printing it, its consume_cb
// returning early once it is told to stop. That is kcat's loss, not the broker's.
func runProcGroupScenario(t *testing.T, group string, quiescentLeaves bool, start func(addr, topic, name string, led *groupLedger) *memberProc) {
	srv := startServer(t, groupBrokerOverrides...)
	const topic, parts = "moving", 4
	adm := newAdmin(t, srv.Addr)
	createTopic(t, adm, topic, parts, nil)
	prodCl := groupProducer(t, srv.Addr)
	all := produceValues(t, prodCl, topic, parts, "pre", 200)
	stopProducing := keepProducing(t, prodCl, topic, parts, "bg")
	led := newGroupLedger()
	progress := func(more int) func(*groupLedger) bool {
		n := led.distinct()
		return func(l *groupLedger) bool { return len(l.byValue) >= n+more }
	}

	leaves := 0
	leave := func(m *memberProc) {
		t.Helper()
		if !quiescentLeaves {
			m.stop(t)
			return
		}
		// Everything delivered (printed) is all librdkafka has stored; the
		// leaving member's close and the others' revocations commit it.
		all = append(all, stopProducing()...)
		led.waitDelivered(t, all, 60*time.Second)
		m.stop(t)
		leaves++
		stopProducing = keepProducing(t, prodCl, topic, parts, fmt.Sprintf("bg%d", leaves))
	}

	m1 := start(srv.Addr, topic, "m1", led)
	m2 := start(srv.Addr, topic, "m2", led)
	led.waitFor(t, "m1 to consume", 60*time.Second, led.hasDelivered("m1"))
	led.waitFor(t, "m2 to consume", 60*time.Second, led.hasDelivered("m2"))
	m3 := start(srv.Addr, topic, "m3", led)
	led.waitFor(t, "m3 (joined) to consume", 60*time.Second, led.hasDelivered("m3"))
	leave(m1)
	led.waitFor(t, "progress after m1 left", 60*time.Second, progress(40))
	m4 := start(srv.Addr, topic, "m4", led)
	led.waitFor(t, "m4 (joined) to consume", 60*time.Second, led.hasDelivered("m4"))
	leave(m2)
	led.waitFor(t, "progress after m2 left", 60*time.Second, progress(40))
	all = append(all, stopProducing()...)
	led.waitDelivered(t, all, 60*time.Second)
	waitCommittedAtEnd(t, adm, group, topic, 30*time.Second)
	m3.stop(t)
	m4.stop(t)
	redelivered := led.check(t, all)
	t.Logf("%d records, %d redeliveries of uncommitted deliveries, per member %v", len(all), redelivered, led.perMember())
}

func TestGroupKcatBalancedConsumers(t *testing.T) {
	t.Parallel()
	runProcGroupScenario(t, "kcat", true, func(addr, topic, name string, led *groupLedger) *memberProc {
		return kcatMember(t, led, addr, topic, "kcat", name)
	})
}

func TestGroupPythonKafkaConsumers(t *testing.T) {
	t.Parallel()
	runProcGroupScenario(t, "pykafka", false, func(addr, topic, name string, led *groupLedger) *memberProc {
		return pyMember(t, led, "kafka", addr, topic, "pykafka", name, 6000)
	})
}

func TestGroupConfluentConsumers(t *testing.T) {
	t.Parallel()
	runProcGroupScenario(t, "confluent", false, func(addr, topic, name string, led *groupLedger) *memberProc {
		return pyMember(t, led, "confluent", addr, topic, "confluent", name, 6000)
	})
}

// TestGroupMixedProcessClients puts kcat, python3-kafka and confluent members in
// one group (all offer the "range" assignor) and moves partitions among them.
func TestGroupMixedProcessClients(t *testing.T) {
	t.Parallel()
	libs := map[string]string{"m1": "kcat", "m2": "kafka", "m3": "confluent", "m4": "kafka"}
	runProcGroupScenario(t, "mixed", true, func(addr, topic, name string, led *groupLedger) *memberProc {
		if libs[name] == "kcat" {
			return kcatMember(t, led, addr, topic, "mixed", name)
		}
		return pyMember(t, led, libs[name], addr, topic, "mixed", name, 6000)
	})
}

// TestGroupStoppedMemberExpires freezes one member with SIGSTOP. The coordinator
// must keep it (and its partitions) for its session timeout, then remove it and
// rebalance, after which the other member consumes the frozen member's
// partitions from their committed offsets.
func TestGroupStoppedMemberExpires(t *testing.T) {
	t.Parallel()
	srv := startServer(t, groupBrokerOverrides...)
	const group, topic, parts = "frozen", "frozen", 4
	const session = 2 * time.Second
	adm := newAdmin(t, srv.Addr)
	createTopic(t, adm, topic, parts, nil)
	prodCl := groupProducer(t, srv.Addr)
	led := newGroupLedger()

	frozen := pyMember(t, led, "confluent", srv.Addr, topic, group, "frozen", int(session.Milliseconds()))
	pyMember(t, led, "confluent", srv.Addr, topic, group, "survivor", 6000)
	owned := waitGroupMembers(t, adm, group, topic, parts, "frozen", "survivor")
	all := produceValues(t, prodCl, topic, parts, "a", 80)
	led.waitDelivered(t, all, 60*time.Second)
	waitCommittedAtEnd(t, adm, group, topic, 30*time.Second)

	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	batch := produceValues(t, prodCl, topic, parts, "b", 80)
	all = append(all, batch...)
	led.waitDelivered(t, all, 60*time.Second)
	waitCommittedAtEnd(t, adm, group, topic, 30*time.Second)
	waitGroupMembers(t, adm, group, topic, parts, "survivor")

	// The survivor got the frozen member's partitions, and not before the
	// frozen member's session expired (its last heartbeat was at most one
	// heartbeat interval, 100ms, before SIGSTOP).
	frozenParts := map[int32]bool{}
	for _, p := range owned["frozen"] {
		frozenParts[p] = true
	}
	led.mu.Lock()
	var first time.Time
	for _, d := range led.all {
		if d.member == "survivor" && frozenParts[d.p] && strings.HasPrefix(d.v, "b-") && (first.IsZero() || d.at.Before(first)) {
			first = d.at
		}
	}
	led.mu.Unlock()
	if first.IsZero() {
		t.Fatalf("survivor never consumed the frozen member's partitions %v", owned["frozen"])
	}
	if took := first.Sub(stoppedAt); took < session-200*time.Millisecond {
		t.Errorf("the frozen member's partitions moved %v after SIGSTOP, before its %v session timeout", took, session)
	}
	led.check(t, all)
	frozen.kill()
}

// TestGroupZombieMemberIsFenced makes a member freeze itself (SIGSTOP) between a
// poll and that poll's commit while records keep arriving. Once its session has
// expired and the other member has taken its partitions, it is resumed with
// SIGCONT and commits for its old generation: that commit must be refused (the
// ledger fails the test if any record ends up committed by both members). The
// zombie then rejoins and consumes again. Run with each python client as the
// zombie and the other as the survivor.
func TestGroupZombieMemberIsFenced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ zombie, survivor string }{{"confluent", "kafka"}, {"kafka", "confluent"}} {
		t.Run(tc.zombie, func(t *testing.T) {
			srv := startServer(t, groupBrokerOverrides...)
			const group, topic, parts = "zombie", "zombie", 4
			adm := newAdmin(t, srv.Addr)
			createTopic(t, adm, topic, parts, nil)
			prodCl := groupProducer(t, srv.Addr)
			all := produceValues(t, prodCl, topic, parts, "a", 40)
			stopProducing := keepProducing(t, prodCl, topic, parts, "bg")
			led := newGroupLedger()

			zombie := pyMember(t, led, tc.zombie, srv.Addr, topic, group, "zombie", 1500)
			survivor := pyMember(t, led, tc.survivor, srv.Addr, topic, group, "survivor", 6000)
			waitGroupMembers(t, adm, group, topic, parts, "survivor", "zombie")
			led.waitFor(t, "the zombie to consume", 60*time.Second, led.hasDelivered("zombie"))
			led.waitFor(t, "the survivor to consume", 60*time.Second, led.hasDelivered("survivor"))

			if err := zombie.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			waitProcessStopped(t, zombie.cmd.Process.Pid)
			waitGroupMembers(t, adm, group, topic, parts, "survivor")
			stoppedAt := time.Now()
			led.waitFor(t, "the survivor to consume every partition", 60*time.Second, func(l *groupLedger) bool {
				seen := map[int32]bool{}
				for _, d := range l.all {
					if d.member == "survivor" && d.at.After(stoppedAt) {
						seen[d.p] = true
					}
				}
				return len(seen) == parts
			})
			if err := zombie.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			resumedAt := time.Now()
			waitGroupMembers(t, adm, group, topic, parts, "survivor", "zombie")
			led.waitFor(t, "the zombie to consume after it rejoined", 60*time.Second, func(l *groupLedger) bool {
				for _, d := range l.all {
					if d.member == "zombie" && d.committed && d.at.After(resumedAt) {
						return true
					}
				}
				return false
			})
			all = append(all, stopProducing()...)
			led.waitDelivered(t, all, 60*time.Second)
			waitCommittedAtEnd(t, adm, group, topic, 30*time.Second)
			zombie.stop(t)
			survivor.stop(t)
			redelivered := led.check(t, all)
			refused := 0
			led.mu.Lock()
			for _, d := range led.all {
				if d.member == "zombie" && !d.committed {
					refused++
				}
			}
			led.mu.Unlock()
			if refused == 0 {
				t.Errorf("the zombie's commit of the records it held while frozen succeeded")
			}
			t.Logf("%d records; the zombie's commit failed for %d deliveries; %d redeliveries; per member %v", len(all), refused, redelivered, led.perMember())
		})
	}
}

// waitProcessStopped waits until the process is in the stopped state (T in
// /proc/PID/stat), which the member enters by itself.
func waitProcessStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		time.Sleep(10 * time.Millisecond) // pacing between polls of the condition
	}
	t.Fatalf("process %d did not stop itself within 30s", pid)
}

// TestGroupBrokerRestartMidConsumption restarts the broker under two consuming
// members, cleanly (SIGTERM) and by crash (kill -9). Committed offsets must come
// back at least where the members last saw their commits acknowledged, and the
// members must resume from them: no record lost, and a record delivered twice only
// if one of its deliveries was not committed.
func TestGroupBrokerRestartMidConsumption(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			b := startPinnedBroker(t, groupBrokerOverrides...)
			const group, topic, parts = "restart", "restart", 4
			adm := newAdmin(t, b.addr)
			createTopic(t, adm, topic, parts, nil)
			all := produceValues(t, groupProducer(t, b.addr), topic, parts, "a", 4000)
			led := newGroupLedger()
			m1 := pyMember(t, led, "confluent", b.addr, topic, group, "m1", 6000)
			m2 := pyMember(t, led, "confluent", b.addr, topic, group, "m2", 6000)
			led.waitFor(t, "500 records consumed", 60*time.Second, func(l *groupLedger) bool { return len(l.byValue) >= 500 })

			if !b.signal(sig, 20*time.Second) {
				t.Fatalf("broker did not exit on %v", sig)
			}
			// Only commits the broker acknowledged are marked committed, and the
			// broker is gone: these are the offsets that must survive.
			want := map[int32]int64{}
			led.mu.Lock()
			for _, d := range led.all {
				if d.committed && d.o+1 > want[d.p] {
					want[d.p] = d.o + 1
				}
			}
			before := len(led.byValue)
			led.mu.Unlock()
			b.start()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			offs, err := newAdmin(t, b.addr).FetchOffsets(ctx, group)
			cancel()
			if err != nil {
				t.Fatalf("fetch offsets after restart: %v", err)
			}
			for p, at := range want {
				if o, ok := offs.Lookup(topic, p); !ok || o.At < at {
					t.Errorf("partition %d: committed %d after restart, members saw %d acknowledged before", p, o.At, at)
				}
			}

			all = append(all, produceValues(t, groupProducer(t, b.addr), topic, parts, "b", 400)...)
			led.waitDelivered(t, all, 90*time.Second)
			waitCommittedAtEnd(t, newAdmin(t, b.addr), group, topic, 30*time.Second)
			m1.stop(t)
			m2.stop(t)
			redelivered := led.check(t, all)
			t.Logf("%d distinct records consumed before the restart; %d redeliveries of uncommitted deliveries; per member %v", before, redelivered, led.perMember())
		})
	}
}

// TestGroupCLI runs `vltava group list|describe|reset-offsets|delete` against a
// broker with a live confluent-kafka member, then with none.
func TestGroupCLI(t *testing.T) {
	t.Parallel()
	if brokerKind != "vltava" {
		t.Skipf("the group tools are part of the vltava binary; broker under test is %s", brokerKind)
	}
	srv := startServer(t, groupBrokerOverrides...)
	const group, topic, parts = "cli", "clitopic", 2
	adm := newAdmin(t, srv.Addr)
	createTopic(t, adm, topic, parts, nil)
	prodCl := groupProducer(t, srv.Addr)
	all := produceValues(t, prodCl, topic, parts, "r", 10)
	led := newGroupLedger()
	member := pyMember(t, led, "confluent", srv.Addr, topic, group, "cli-member", 6000)
	waitGroupMembers(t, adm, group, topic, parts, "cli-member")
	led.waitDelivered(t, all, 60*time.Second)
	waitCommittedAtEnd(t, adm, group, topic, 30*time.Second)

	vltava := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, stderr, err := runCmd(ctx, 30*time.Second, nil, brokerBin, append(args, "--brokers", srv.Addr)...)
		return string(out) + string(stderr), err
	}
	fieldsOf := func(out, prefix string) [][]string {
		var rows [][]string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == prefix {
				rows = append(rows, f)
			}
		}
		return rows
	}

	out, err := vltava("group", "list")
	if err != nil {
		t.Fatalf("group list: %v\n%s", err, out)
	}
	if rows := fieldsOf(out, group); len(rows) != 1 || rows[0][1] != "Stable" || rows[0][2] != "consumer" {
		t.Errorf("group list: %q", out)
	}

	out, err = vltava("group", "describe", group)
	if err != nil {
		t.Fatalf("group describe: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Group: cli\tState: Stable\tProtocol: consumer/range") || !strings.Contains(out, "Members: 1") {
		t.Errorf("describe summary: %q", out)
	}
	rows := fieldsOf(out, topic)
	if len(rows) != parts {
		t.Fatalf("describe: %d partition rows, want %d:\n%s", len(rows), parts, out)
	}
	for _, f := range rows {
		// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG MEMBER-ID HOST CLIENT-ID
		if len(f) != 8 || f[2] != "5" || f[3] != "5" || f[4] != "0" || f[6] != "/127.0.0.1" || f[7] != "cli-member" {
			t.Errorf("describe row %v: want committed 5, end 5, lag 0, host /127.0.0.1, client cli-member", f)
		}
	}

	out, err = vltava("group", "delete", group)
	if err == nil || !strings.Contains(out, "NON_EMPTY_GROUP") {
		t.Errorf("delete of a group with a member: err %v, output %q; want a NON_EMPTY_GROUP failure", err, out)
	}

	committed := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		return fmt.Sprint(offs[topic][0].At, " ", offs[topic][1].At)
	}
	out, err = vltava("group", "reset-offsets", group, "--to-earliest", "--execute")
	if err == nil || !strings.Contains(out, "active members") {
		t.Errorf("reset-offsets --execute on a group with a member: err %v; want a refusal naming the active members\n%s", err, out)
	}
	if got := committed(); got != "5 5" {
		t.Errorf("committed %s after the refused reset, want 5 5", got)
	}

	member.stop(t)
	produceValues(t, prodCl, topic, parts, "s", 4)
	out, err = vltava("group", "describe", group)
	if err != nil {
		t.Fatalf("group describe: %v\n%s", err, out)
	}
	if !strings.Contains(out, "State: Empty") {
		t.Errorf("describe after the member left: %q", out)
	}
	for _, f := range fieldsOf(out, topic) {
		if len(f) != 8 || f[2] != "5" || f[3] != "7" || f[4] != "2" || f[5] != "-" {
			t.Errorf("describe row %v: want committed 5, end 7, lag 2, no member", f)
		}
	}

	// reset-offsets: a dry run by default, then each kind of target applied.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to-earliest"}, "5 5"}, // dry run
		{[]string{"--to-earliest", "--execute"}, "0 0"},
		{[]string{"--shift-by", "3", "--execute"}, "3 3"},
		{[]string{"--to-offset", "6", "--execute"}, "6 6"},
		{[]string{"--to-latest", "--execute"}, "7 7"},
		{[]string{"--to-datetime", "2001-01-01T00:00:00Z", "--execute"}, "0 0"},
	} {
		out, err := vltava(append([]string{"group", "reset-offsets", group, "--topic", topic}, tc.args...)...)
		if err != nil {
			t.Fatalf("reset-offsets %v: %v\n%s", tc.args, err, out)
		}
		if got := committed(); got != tc.want {
			t.Errorf("after reset-offsets %v: committed %s, want %s\n%s", tc.args, got, tc.want, out)
		}
	}

	out, err = vltava("group", "delete", group)
	if err != nil || !strings.Contains(out, "deleted group cli") {
		t.Fatalf("delete of the empty group: %v\n%s", err, out)
	}
	out, err = vltava("group", "list")
	if err != nil || len(fieldsOf(out, group)) != 0 {
		t.Errorf("group list after delete: %v\n%s", err, out)
	}
}
