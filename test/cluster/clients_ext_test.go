package cluster

// The clients of the cluster client matrix (clients_test.go) that run as processes: kcat
// (librdkafka) and the two python libraries through pyclient.py. Each is started with
// exec.CommandContext, so the test's context ending kills it by its pid.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lineProc is a client process whose stdout the test reads line by line.
type lineProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	lines  chan string // stdout, closed at its end
}

func startLineProc(ctx context.Context, name string, args ...string) (*lineProc, error) {
	p := &lineProc{cmd: exec.CommandContext(ctx, name, args...), stderr: &lockedBuffer{}, lines: make(chan string, 1024)}
	p.cmd.Stderr = p.stderr
	// Stopped at the end of the test: SIGTERM first (kcat's consumer leaves its group),
	// the context's SIGKILL after a grace period.
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 10 * time.Second
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

// wait drains stdout and waits for the exit, adding the end of stderr to an error.
func (p *lineProc) wait() error {
	for range p.lines {
	}
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(p.cmd.Path), err, tail(p.stderr.String(), 15))
	}
	return nil
}

// ---------------------------------------------------------------- kcat

func kcatMatrix() *matrixClient {
	return &matrixClient{name: "kcat", idempotent: true, reportsAcks: false,
		produce: kcatProduce,
		consume: kcatConsume,
	}
}

// kcatProduce runs one kcat per partition (-p), writing every value to its stdin as the
// pace comes; kcat says nothing per record, so its values count as acknowledged once it
// has exited 0 with no delivery failure (librdkafka retries an idempotent producer's
// records until message.timeout.ms).
func kcatProduce(ctx context.Context, seeds []string, topic string, parts int32, stop <-chan struct{}, ack func(string)) error {
	procs := make([]*lineProc, parts)
	for p := range parts {
		lp, err := startLineProc(ctx, "kcat", "-P", "-b", strings.Join(seeds, ","), "-t", topic, "-p", fmt.Sprint(p),
			"-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000", "-X", "linger.ms=5")
		if err != nil {
			return err
		}
		procs[p] = lp
	}
	var sent []string
	var werr error
	if _, err := pace(ctx, stop, func(seq int) {
		v := value("kcat", seq)
		if _, err := fmt.Fprintln(procs[int32(seq)%parts].stdin, v); err != nil {
			werr = errors.Join(werr, err)
			return
		}
		sent = append(sent, v)
	}); err != nil {
		return err
	}
	var errs []error
	for _, lp := range procs {
		if _, err := fmt.Fprintln(lp.stdin, endValue); err != nil {
			errs = append(errs, err)
		}
		lp.stdin.Close()
	}
	for _, lp := range procs {
		if err := lp.wait(); err != nil {
			errs = append(errs, err)
		} else if out := lp.stderr.String(); strings.Contains(out, "Delivery failed") {
			errs = append(errs, fmt.Errorf("kcat: %s", tail(out, 10)))
		}
	}
	if err := errors.Join(append(errs, werr)...); err != nil {
		return err
	}
	for _, v := range sent {
		ack(v)
	}
	return nil
}

// kcatConsume runs kcat's balanced consumer (-G) with JSON output (-J), unbuffered (-u:
// kcat's stdout is otherwise flushed only at its exit), and stops it
// (SIGTERM: it leaves the group) once it has printed endValue in every partition.
func kcatConsume(ctx context.Context, seeds []string, topic, group string, parts int32, got func(int32, int64, string)) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lp, err := startLineProc(cctx, "kcat", "-b", strings.Join(seeds, ","), "-G", group, "-J", "-u", "-E",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=500", topic)
	if err != nil {
		return err
	}
	ends := newEndSet(parts)
	for line := range lp.lines {
		var m struct {
			Partition int32   `json:"partition"`
			Offset    int64   `json:"offset"`
			Payload   *string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Payload == nil {
			cancel()
			lp.wait()
			return fmt.Errorf("kcat printed %q: %v", line, err)
		}
		got(m.Partition, m.Offset, *m.Payload)
		if ends.saw(m.Partition, *m.Payload) {
			cancel() // SIGTERM, then the exit is waited for
			lp.wait()
			return nil
		}
	}
	err = lp.wait()
	return fmt.Errorf("kcat consumer ended with %s: %v", ends, err)
}

// ---------------------------------------------------------------- python

// pyMatrix drives pyclient.py with lib "kafka" (kafka-python) or "confluent"
// (confluent-kafka, librdkafka).
func pyMatrix(name, lib string, idempotent bool) *matrixClient {
	script := filepath.Join(repoRoot(), "test", "cluster", "pyclient.py")
	return &matrixClient{name: name, idempotent: idempotent, reportsAcks: true,
		produce: func(ctx context.Context, seeds []string, topic string, parts int32, stop <-chan struct{}, ack func(string)) error {
			lp, err := startLineProc(ctx, "/usr/bin/python3", script, lib, "produce", "--bootstrap", strings.Join(seeds, ","),
				"--topic", topic, "--partitions", fmt.Sprint(parts), "--run", name,
				"--interval", fmt.Sprint(produceInterval.Seconds()), "--timeout", "60")
			if err != nil {
				return err
			}
			var once sync.Once
			go func() {
				select {
				case <-stop:
				case <-ctx.Done():
				}
				once.Do(func() { lp.stdin.Close() }) // EOF: the script stops producing
			}()
			return pyLines(lp, func(m pyMsg) {
				if m.V != nil && *m.V != endValue {
					ack(*m.V)
				}
			})
		},
		consume: func(ctx context.Context, seeds []string, topic, group string, parts int32, got func(int32, int64, string)) error {
			lp, err := startLineProc(ctx, "/usr/bin/python3", script, lib, "consume", "--bootstrap", strings.Join(seeds, ","),
				"--topic", topic, "--partitions", fmt.Sprint(parts), "--group", group, "--timeout", "120")
			if err != nil {
				return err
			}
			return pyLines(lp, func(m pyMsg) {
				if m.V != nil {
					got(m.P, m.O, *m.V)
				}
			})
		},
	}
}

type pyMsg struct {
	P     int32   `json:"p"`
	O     int64   `json:"o"`
	V     *string `json:"v"`
	Done  any     `json:"done"`
	Error *struct {
		Type, Msg string
	} `json:"error"`
	Failed int      `json:"failed"`
	Errors []string `json:"errors"`
}

// pyLines hands every record line to fn and returns the script's error, if any.
func pyLines(lp *lineProc, fn func(pyMsg)) error {
	var last pyMsg
	var bad error
	for line := range lp.lines {
		var m pyMsg
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			bad = fmt.Errorf("pyclient printed %q: %v", line, err)
			continue
		}
		if m.Done != nil || m.Error != nil {
			last = m
			continue
		}
		fn(m)
	}
	err := errors.Join(bad, lp.wait())
	switch {
	case last.Error != nil:
		return errors.Join(fmt.Errorf("%s: %s", last.Error.Type, last.Error.Msg), err)
	case last.Done == nil:
		return errors.Join(errors.New("pyclient ended without a result"), err)
	case last.Failed > 0:
		return errors.Join(fmt.Errorf("%d records failed, e.g. %v", last.Failed, last.Errors), err)
	}
	return err
}
