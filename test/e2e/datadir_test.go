package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Pid returns the running broker's process id.
func (s *server) Pid() int {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("broker not running")
	}
	return s.cmd.Process.Pid
}

// TestSecondBrokerOnDataDirInUse: a broker started on a data directory another broker
// is using refuses to start, saying which process holds it, and the first one keeps
// serving every record it acknowledged, before and after a restart.
func TestSecondBrokerOnDataDirInUse(t *testing.T) {
	t.Parallel()
	first := startServer(t)
	ctx := context.Background()
	topic := "locked"
	createTopic(t, newAdmin(t, first.Addr), topic, 1, nil)
	before, err := franzProduce(ctx, first.Addr, topic, "none", genRecords(61, genSpec{partitions: 1, perPart: 20}))
	if err != nil {
		t.Fatal(err)
	}

	ready := filepath.Join(t.TempDir(), "second-ready")
	cmd := exec.Command(brokerBin, "server", "--data-dir", first.DataDir, "--listen", "127.0.0.1:0", "--ready-file", ready, "--http-listen", "none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for whichever comes first: its exit or its ready file.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	var exitErr error
wait:
	for {
		select {
		case exitErr = <-exited:
			break wait
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("second broker neither exited nor became ready in 60s:\n%s", logs.String())
		case <-tick.C:
			if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
				cmd.Process.Kill()
				<-exited
				t.Fatalf("a second broker started on a data dir in use and serves on %s:\n%s", b, logs.String())
			}
		}
	}
	if exitErr == nil {
		t.Fatalf("second broker exited 0:\n%s", logs.String())
	}
	out := logs.String()
	for _, want := range []string{"in use", fmt.Sprintf("pid %d", first.Pid()), first.DataDir} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not say %q:\n%s", want, out)
		}
	}

	// The first broker is unharmed: it takes more records and serves all of them, also
	// after a clean restart.
	after, err := franzProduce(ctx, first.Addr, topic, "none", genRecords(62, genSpec{partitions: 1, perPart: 20}))
	if err != nil {
		t.Fatal(err)
	}
	want := append(before, after...)
	for _, restart := range []bool{false, true} {
		if restart {
			first.Stop()
			first.Start()
		}
		got, err := franzConsume(ctx, first.Addr, topic, 1, startAt{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("restart %v: read %d records, want %d", restart, len(got), len(want))
		}
		for i := range got {
			if !sameBytes(got[i].V, want[i].V) || got[i].O != int64(i) {
				t.Fatalf("restart %v: record %d: %s, want %s", restart, i, got[i], want[i])
			}
		}
	}
}
