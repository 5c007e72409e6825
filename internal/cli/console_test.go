package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// urlWriter is a stdout that hands over the URL the console prints when it is ready.
type urlWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	url  chan string
}

var consoleURLRe = regexp.MustCompile(`serving (http://\S+/) for`)

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := consoleURLRe.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.url <- m[1]
	}
	return len(p), nil
}

// TestConsoleCommand starts `vltava console` on a free loopback port, reads the URL it
// prints, uses the API, and stops it by cancelling its context (Ctrl-C).
func TestConsoleCommand(t *testing.T) {
	brokers := testBrokers(t)
	topic := createTopic(t, brokers, 2)
	out := &urlWriter{url: make(chan string, 1)}
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	env := Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: &errOut}
	done := make(chan error, 1)
	go func() {
		_, err := env.Run(ctx, "console", []string{"--brokers", brokers, "--listen", "127.0.0.1:0", "--timeout", "5s"})
		done <- err
	}()
	var url string
	select {
	case url = <-out.url:
	case err := <-done:
		t.Fatalf("console stopped before serving: %v\n%s", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the console printed no URL")
	}
	resp, err := http.Get(url + "api/topics/" + topic)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"partitions":2`) {
		t.Errorf("GET topic: %d %s", resp.StatusCode, body)
	}
	// On loopback, only loopback names are answered (DNS rebinding).
	req, _ := http.NewRequest(http.MethodGet, url+"api/cluster", nil)
	req.Host = "rebound.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %d, want 403", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("console returned %v after its context ended", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the console did not stop")
	}
	if strings.Contains(errOut.String(), "warning") {
		t.Errorf("warned on loopback: %s", errOut.String())
	}
}

func TestConsoleFlags(t *testing.T) {
	r := tool(t, "", "", "console", "-h")
	if r.err != nil || !strings.Contains(r.stdout, "--listen HOST:PORT") || !strings.Contains(r.stdout, "127.0.0.1:9080") {
		t.Errorf("console -h: %v\n%s", r.err, r.stdout)
	}
	for _, args := range [][]string{
		{"--max-records", "0"}, {"--max-bytes", "0"}, {"--sample-interval", "1ms"}, {"--history", "1"},
		{"--listen", "nocolon"}, {"extra-arg"},
	} {
		if r := tool(t, "127.0.0.1:1", "", "console", args...); r.err == nil {
			t.Errorf("console %q: no error", args)
		}
	}
	hosts, public := consoleHosts("127.0.0.1", []string{"box.example"})
	if public || !contains(hosts, "localhost") || !contains(hosts, "box.example") {
		t.Errorf("loopback hosts %v public %v", hosts, public)
	}
	if hosts, public := consoleHosts("0.0.0.0", nil); !public || len(hosts) != 0 {
		t.Errorf("wildcard hosts %v public %v: want any host", hosts, public)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
