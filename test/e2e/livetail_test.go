package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLiveTail: consumers that have caught up with an empty topic sit in
// long-poll fetches; records produced afterwards, in several bursts, must
// reach every one of them, byte for byte. Each process tells on stderr when
// a fetch came back empty (kcat: "Reached end of topic"; the python helper:
// "waiting for records"), and production starts only once all have.
func TestLiveTail(t *testing.T) {
	t.Parallel()
	const topic, partitions, perPart = "live-tail", int32(2), 15
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions, nil)
	want := genRecords(44, genSpec{partitions: partitions, perPart: perPart,
		baseTS: time.Now().Add(-time.Minute).UnixMilli()})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := filepath.Join(e2eDir(), "pyclient.py")
	waitEnd := strconv.Itoa(perPart)
	procs := []*tailProc{
		startTail(ctx, t, "kcat", "Reached end of topic", "kcat", "-C", "-b", srv.Addr, "-t", topic,
			"-o", "beginning", "-c", strconv.Itoa(int(partitions)*perPart), "-J", "-m", "30"),
		startTail(ctx, t, "python3-kafka", "waiting for records", "/usr/bin/python3", script, "kafka", "consume",
			"--bootstrap", srv.Addr, "--topic", topic, "--partitions", "0,1", "--wait-end", waitEnd, "--timeout", "100"),
		startTail(ctx, t, "python3-confluent-kafka", "waiting for records", "/usr/bin/python3", script, "confluent", "consume",
			"--bootstrap", srv.Addr, "--topic", topic, "--partitions", "0,1", "--wait-end", waitEnd, "--timeout", "100"),
	}
	var (
		franzGot []rec
		franzErr error
		franzWG  sync.WaitGroup
	)
	franzWG.Add(1)
	go func() {
		defer franzWG.Done()
		franzGot, franzErr = franzConsume(ctx, srv.Addr, topic, partitions, startAt{waitEnd: perPart})
	}()

	for _, p := range procs {
		select {
		case <-p.ready:
		case <-p.exited:
			t.Fatalf("%s exited before it waited: %v\nstderr: %s", p.name, p.err, lastBytes([]byte(p.stderr.String()), 1500))
		case <-ctx.Done():
			t.Fatalf("%s never reported an empty fetch; stderr: %s", p.name, lastBytes([]byte(p.stderr.String()), 1500))
		}
	}

	// Three bursts, each acknowledged before the next.
	for b := 0; b < 3; b++ {
		var burst []rec
		for _, r := range want {
			if int(r.O)*3/perPart == b {
				burst = append(burst, r)
			}
		}
		if _, err := franzProduce(ctx, srv.Addr, topic, "gzip", burst); err != nil {
			t.Fatalf("burst %d: %v", b, err)
		}
	}

	for _, p := range procs {
		select {
		case <-p.exited:
		case <-ctx.Done():
			t.Fatalf("%s still waiting for records; stderr: %s", p.name, lastBytes([]byte(p.stderr.String()), 1500))
		}
		if p.err != nil {
			t.Errorf("%s: %v\nstderr: %s", p.name, p.err, lastBytes([]byte(p.stderr.String()), 1500))
			continue
		}
		var got []rec
		var err error
		if p.name == "kcat" {
			got, err = parseKcatJSON(p.stdout.Bytes())
		} else {
			var res struct{ Records []rec }
			err = json.Unmarshal(p.stdout.Bytes(), &res)
			got = res.Records
		}
		if err != nil {
			t.Errorf("%s output: %v", p.name, err)
			continue
		}
		if d := diffRecs(append([]rec(nil), want...), got); d != "" {
			t.Errorf("%s tailing:\n%s", p.name, d)
		}
	}
	franzWG.Wait()
	if franzErr != nil {
		t.Errorf("franz-go tailing: %v", franzErr)
	} else if d := diffRecs(append([]rec(nil), want...), franzGot); d != "" {
		t.Errorf("franz-go tailing:\n%s", d)
	}
}

// tailProc is a consumer process whose stderr is watched for a marker.
type tailProc struct {
	name   string
	stdout bytes.Buffer // read only after exited is closed
	stderr lockedBuffer
	ready  chan struct{} // closed when the marker appeared on stderr
	exited chan struct{} // closed when the process has been waited for
	err    error         // set before exited is closed
}

func startTail(ctx context.Context, t *testing.T, name, marker, bin string, args ...string) *tailProc {
	t.Helper()
	p := &tailProc{name: name, ready: make(chan struct{}), exited: make(chan struct{})}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout = &p.stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(&p.stderr, sc.Text())
			if !seen && strings.Contains(sc.Text(), marker) {
				seen = true
				close(p.ready)
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}
