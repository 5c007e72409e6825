// console.go is `vltava console`: the web console (internal/console) served over HTTP for
// the cluster named by --brokers. It listens on loopback unless told otherwise.
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vltava/vltava/internal/cli/cmdflag"
	"github.com/vltava/vltava/internal/console"
)

const defaultConsoleListen = "127.0.0.1:9080"

func (e Env) console(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("console", "[--listen HOST:PORT] [flags]", console.DefaultRequestTimeout,
		"time limit for each call the console makes to the cluster")
	fs.About = "Serve the web console: brokers and quorum, topics, a message browser, consumer groups and lag,\n" +
		"throughput charts; create and delete topics, alter configs, reset group offsets.\n" +
		"It has no login: anyone who can reach --listen can change the cluster, so it listens on loopback\n" +
		"by default (use an SSH tunnel, or a proxy that authenticates, to reach it from elsewhere)."
	listen := fs.String("listen", defaultConsoleListen, "`HOST:PORT` to serve on (port 0: any free port)")
	var allow stringList
	fs.Var(&allow, "allow-host", "also answer requests for this `HOST` name (repeatable); on loopback only loopback names\nare answered, against DNS rebinding")
	maxRecords := fs.Int("max-records", console.DefaultMaxRecords, "most records one message-browser request returns")
	maxBytes := cmdflag.Size(console.DefaultMaxBytes)
	fs.Var(&maxBytes, "max-bytes", "most record bytes (keys, values, headers) one message-browser request returns (`SIZE`)")
	maxScan := cmdflag.Size(console.DefaultMaxScanBytes)
	fs.Var(&maxScan, "max-scan-bytes", "most bytes one message-browser request fetches while filtering (`SIZE`)")
	interval := fs.Duration("sample-interval", console.DefaultSampleInterval, "how often the throughput charts poll offsets")
	history := fs.Int("history", console.DefaultSampleCapacity, "throughput samples kept (the charts' length is this times --sample-interval)")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	switch {
	case *maxRecords < 1:
		return fs.Fail(fmt.Errorf("--max-records %d: want 1 or more", *maxRecords))
	case maxBytes < 1 || maxBytes > 1<<30:
		return fs.Fail(fmt.Errorf("--max-bytes %d: want 1 byte to 1GiB", maxBytes))
	case maxScan < 1:
		return fs.Fail(fmt.Errorf("--max-scan-bytes %d: want 1 or more", maxScan))
	case *interval < 100*time.Millisecond:
		return fs.Fail(fmt.Errorf("--sample-interval %s: want 100ms or more", *interval))
	case *history < 2:
		return fs.Fail(fmt.Errorf("--history %d: want 2 or more", *history))
	case c.timeout <= 0:
		return fs.Fail(fmt.Errorf("--timeout %s: want a positive duration", c.timeout))
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT: %v", *listen, err)
	}
	c.clientID = "vltava-console"
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hosts, public := consoleHosts(host, allow)
	con, err := console.New(console.Options{
		Client:         cl,
		RequestTimeout: c.timeout,
		MaxRecords:     *maxRecords,
		MaxBytes:       int(maxBytes),
		MaxScanBytes:   int64(maxScan),
		SampleInterval: *interval,
		SampleCapacity: *history,
		AllowedHosts:   hosts,
		Version:        softwareVersion(),
		Logger:         slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer con.Close()
	srv := &http.Server{
		Handler:           con,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A response is written after the cluster answered, within --timeout.
		WriteTimeout:   c.timeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintf(e.Stdout, "vltava console: serving %s for brokers %s\n", consoleURL(ln.Addr(), host), c.brokers)
	if public {
		fmt.Fprintf(e.Stderr, "vltava console: warning: listening on %s, beyond loopback; the console has no login, so anyone who can reach it can change the cluster\n", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// consoleHosts is the Host names the console answers. On loopback: only loopback names
// (and --allow-host), so a page that rebinds its own name to 127.0.0.1 is refused. Beyond
// loopback, where the operator chose to expose it: any name, unless --allow-host lists them.
func consoleHosts(listenHost string, allow []string) (hosts []string, public bool) {
	if isLoopback(listenHost) {
		return append([]string{"localhost", "127.0.0.1", "::1", listenHost}, allow...), false
	}
	return allow, true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// consoleURL is the address to open: the bound port, and this machine's name for a
// wildcard listener.
func consoleURL(addr net.Addr, listenHost string) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String() + "/"
	}
	host := listenHost
	if host == "" || tcp.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port)) + "/"
}
