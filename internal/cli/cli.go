// Package cli holds the operator tools (topic, produce, consume, group, cluster, bench). They are
// ordinary Kafka clients built on franz-go's kgo and kadm, so they work against any Kafka
// cluster, not only Vltava.
//
// Every tool runs through Env, which carries the standard streams and the environment, so
// tests drive the same code in-process with buffers instead of a terminal.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/bench"
)

// Defaults shared by every tool. The broker default matches `vltava server` with no flags.
const (
	defaultBrokers = "127.0.0.1:9092"
	brokersEnv     = "VLTAVA_BROKERS"
	// defaultRequestTimeout bounds admin requests and produce delivery; long enough for a
	// controller election, short enough that a wrong address fails in human time.
	defaultRequestTimeout = 30 * time.Second
)

// Run runs the named tool on the process's standard streams and environment; ok is false if
// there is no such tool. An interrupt (Ctrl-C) cancels the tool, which for consume is the
// normal way to stop.
func Run(cmd string, args []string) (ok bool, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first interrupt asks for a clean stop (consume commits what it printed); restoring
	// the default right away lets a second one kill a tool stuck shutting down.
	context.AfterFunc(ctx, stop)
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	return env.Run(ctx, cmd, args)
}

// Env is what a tool sees of the outside world. A zero Getenv means an empty environment.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Run runs one tool; ok is false if cmd names no tool. A `-h` anywhere in the flags prints
// the usage and returns no error.
func (e Env) Run(ctx context.Context, cmd string, args []string) (ok bool, err error) {
	switch cmd {
	case "topic":
		err = e.topic(ctx, args)
	case "produce":
		err = e.produce(ctx, args)
	case "consume":
		err = e.consume(ctx, args)
	case "group":
		err = e.group(ctx, args)
	case "cluster":
		err = e.cluster(ctx, args)
	case "bench":
		err = bench.Run(args)
	default:
		return false, nil
	}
	if errors.Is(err, flag.ErrHelp) {
		err = nil
	}
	return true, err
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// common holds the flags every tool that talks to a cluster accepts.
type common struct {
	brokers  string
	timeout  time.Duration
	logLevel string
	logTo    io.Writer
}

// newFlagSet returns a FlagSet that reports to stderr instead of exiting, with the common
// flags registered. timeoutDoc says what --timeout means for this tool, since consume uses
// it as an idle limit rather than a request bound.
func (e Env) newFlagSet(name, synopsis string, defTimeout time.Duration, timeoutDoc string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vltava %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	c := &common{}
	brokers := e.getenv(brokersEnv)
	if brokers == "" {
		brokers = defaultBrokers
	}
	fs.StringVar(&c.brokers, "brokers", brokers, "comma-separated bootstrap brokers host:port (env "+brokersEnv+")")
	fs.DurationVar(&c.timeout, "timeout", defTimeout, timeoutDoc)
	fs.StringVar(&c.logLevel, "log-level", "none", "client log on stderr: none, error, warn, info or debug")
	c.logTo = e.Stderr
	return fs, c
}

// parseArgs parses flags that may come before, between or after positional arguments, as
// operators expect (`topic create NAME --partitions 3`); the standard flag package alone
// stops at the first positional. Everything after a bare "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// seeds splits the --brokers value, dropping empty entries from stray commas.
func (c *common) seeds() []string {
	var out []string
	for _, s := range strings.Split(c.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// client connects a kgo client to the cluster named by --brokers.
func (c *common) client(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := c.seeds()
	if len(seeds) == 0 {
		return nil, errors.New("no brokers given: set --brokers or " + brokersEnv)
	}
	var level kgo.LogLevel
	switch c.logLevel {
	case "none", "":
		level = kgo.LogLevelNone
	case "error":
		level = kgo.LogLevelError
	case "warn":
		level = kgo.LogLevelWarn
	case "info":
		level = kgo.LogLevelInfo
	case "debug":
		level = kgo.LogLevelDebug
	default:
		return nil, fmt.Errorf("--log-level %q: want none, error, warn, info or debug", c.logLevel)
	}
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)
	if level != kgo.LogLevelNone {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(c.logTo, level, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", c.brokers, err)
	}
	return cl, nil
}

// admin returns a kadm client whose requests carry --timeout as the broker-side timeout, and
// a context that bounds the whole operation by the same --timeout.
func (c *common) admin(ctx context.Context) (*kadm.Client, context.Context, func(), error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, nil, err
	}
	adm := kadm.NewClient(cl)
	var cancel context.CancelFunc
	if c.timeout > 0 {
		adm.SetTimeoutMillis(int32(min(c.timeout.Milliseconds(), 1<<31-1)))
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	return adm, ctx, func() { cancel(); cl.Close() }, nil
}

// reachErr turns a bare deadline into a message that says what was being waited for, since
// a client that cannot reach any broker only ever reports that its context expired.
func (c *common) reachErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %s: %w", c.brokers, c.timeout, err)
	}
	return err
}

// kafkaErr adds the broker's own error message, when it sent one, to the Kafka error (whose
// text is already "NAME: description"), so the operator sees both.
func kafkaErr(err error, brokerMsg string) error {
	if err == nil || brokerMsg == "" || strings.Contains(err.Error(), brokerMsg) {
		return err
	}
	return fmt.Errorf("%w (broker says: %s)", err, brokerMsg)
}

// kvList is a repeatable k=v flag.
type kvList struct {
	keys   []string
	values []string
}

func (l *kvList) String() string {
	var parts []string
	for i := range l.keys {
		parts = append(parts, l.keys[i]+"="+l.values[i])
	}
	return strings.Join(parts, ",")
}

func (l *kvList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	l.keys = append(l.keys, k)
	l.values = append(l.values, v)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
