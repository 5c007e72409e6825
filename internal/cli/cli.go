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
	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// Defaults shared by every tool. The broker default matches `vltava server` with no flags.
const (
	defaultBrokers = "127.0.0.1:9092"
	brokersEnv     = "VLTAVA_BROKERS"
	// defaultRequestTimeout bounds admin requests and produce delivery; long enough for a
	// controller election, short enough that a wrong address fails in human time.
	defaultRequestTimeout = 30 * time.Second
	// adminClientID is the client.id of the admin tools, which brokers log and show in
	// request metrics; produce and consume have their own.
	adminClientID = "vltava-cli"
)

// Extra is a command of the binary that runs outside this package (`vltava server`): only
// its name, summary and flags are needed here, for the usage and shell completion.
type Extra struct {
	Name, Summary string
	Flags         func() *cmdflag.Set
}

// Run runs the named tool on the process's standard streams and environment; ok is false if
// there is no such tool. An interrupt (Ctrl-C) cancels the tool, which for consume is the
// normal way to stop.
func Run(cmd string, args []string, extra ...Extra) (ok bool, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first interrupt asks for a clean stop (consume commits what it printed); restoring
	// the default right away lets a second one kill a tool stuck shutting down.
	context.AfterFunc(ctx, stop)
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Extra: extra}
	return env.Run(ctx, cmd, args)
}

// Env is what a tool sees of the outside world. A zero Getenv means an empty environment.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Extra lists the commands run outside this package, for usage and completion.
	Extra []Extra

	// collect, when set, makes every flag set hand itself over instead of parsing (see
	// cmdflag.Set.Collect): completion walks the commands this way.
	collect func(*cmdflag.Set)
}

// command is one command of the binary: a runner, or a group of subcommands.
type command struct {
	name, summary string
	run           func(Env, context.Context, []string) error
	subs          []subcommand
}

// subcommand is one verb of a tool with subcommands (topic create, group list, ...), or a
// group of further subcommands (cluster config describe).
type subcommand struct {
	name, args, summary string
	run                 func(Env, context.Context, []string) error
	subs                []subcommand
}

// commands is the one list of the binary's tools: dispatch, usage and completion derive from it.
func commands() []command {
	return []command{
		{name: "topic", summary: "create, list, describe, alter, trim and delete topics", subs: topicCommands()},
		{name: "partition", summary: "move partition replicas between brokers (reassign) and elect their leaders", subs: partitionCommands()},
		{name: "produce", summary: "produce lines from stdin", run: Env.produce},
		{name: "consume", summary: "consume records to stdout", run: Env.consume},
		{name: "group", summary: "list, describe, reset the offsets of and delete consumer groups", subs: groupCommands()},
		{name: "cluster", summary: "brokers, controller, cluster id, API versions and broker configs", subs: clusterCommands()},
		{name: "dev", summary: "run a local cluster of N nodes on 127.0.0.1 (separate processes) until Ctrl-C", run: Env.dev},
		{name: "bench", summary: "produce|consume|e2e load generator", run: Env.bench},
		{name: "console", summary: "serve the web console (topics, messages, groups, lag, throughput) on 127.0.0.1:9080", run: Env.console},
		{name: "version", summary: "print the version of this binary (also --version)", run: Env.version},
		{name: "completion", summary: "print a bash or zsh completion script", run: Env.completion},
	}
}

func findCommand(name string) (command, bool) {
	for _, t := range commands() {
		if t.name == name {
			return t, true
		}
	}
	return command{}, false
}

// Usage is the binary's top-level usage: the extra commands first, then the tools.
func Usage(extra ...Extra) string {
	var b strings.Builder
	b.WriteString("usage: vltava <command> [flags]\n\ncommands:\n")
	for _, x := range extra {
		fmt.Fprintf(&b, "  %-11s%s\n", x.Name, x.Summary)
	}
	for _, t := range commands() {
		fmt.Fprintf(&b, "  %-11s%s\n", t.name, t.summary)
	}
	b.WriteString("\nRun \"vltava <command> -h\" for a command's flags.\n")
	return b.String()
}

// Run runs one tool; ok is false if cmd names no tool. A `-h` anywhere in the flags prints
// the usage on stdout and returns no error.
func (e Env) Run(ctx context.Context, cmd string, args []string) (ok bool, err error) {
	if cmd == "--version" || cmd == "-version" {
		cmd = "version"
	}
	t, ok := findCommand(cmd)
	if !ok {
		return false, nil
	}
	if t.subs != nil {
		err = e.dispatch(ctx, t, args)
	} else {
		err = t.run(e, ctx, args)
	}
	if errors.Is(err, flag.ErrHelp) {
		err = nil
	}
	return true, err
}

// dispatch runs the subcommand args[0] of t.
func (e Env) dispatch(ctx context.Context, t command, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.Stderr, subUsage(t))
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.Stdout, subUsage(t))
		return flag.ErrHelp
	}
	for _, s := range t.subs {
		if s.name == args[0] {
			if s.subs != nil {
				return e.dispatch(ctx, command{name: t.name + " " + s.name, subs: s.subs}, args[1:])
			}
			return s.run(e, ctx, args[1:])
		}
	}
	fmt.Fprint(e.Stderr, subUsage(t))
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func subUsage(t command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: vltava %s <subcommand> [flags]\n\nsubcommands:\n", t.name)
	labels := make([]string, len(t.subs))
	width := 0
	for i, s := range t.subs {
		args := s.args
		if s.subs != nil {
			args = "<subcommand>"
		}
		labels[i] = strings.TrimSpace(s.name + " " + args)
		width = max(width, len(labels[i]))
	}
	for i, s := range t.subs {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, labels[i], s.summary)
	}
	fmt.Fprintf(&b, "\nRun \"vltava %s <subcommand> -h\" for its flags.\n", t.name)
	return b.String()
}

func (e Env) bench(ctx context.Context, args []string) error {
	if e.collect != nil {
		return cmdflag.ErrCollected // completion reads bench's flags through bench.FlagSet
	}
	return bench.Run(ctx, args, e.Stdout, e.Stderr, e.getenv)
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
	clientID string
	output   outputFormat // --format/-o of the topic, group and cluster commands
}

// newFlagSet returns the flag set of `vltava PATH`, with the common flags registered.
// timeoutDoc says what --timeout means for this tool, since consume uses it as an idle
// limit rather than a request bound.
func (e Env) newFlagSet(path, synopsis string, defTimeout time.Duration, timeoutDoc string) (*cmdflag.Set, *common) {
	fs := cmdflag.New(path, synopsis, e.Stdout, e.Stderr)
	fs.Collect = e.collect
	c := &common{clientID: adminClientID}
	brokers := e.getenv(brokersEnv)
	if brokers == "" {
		brokers = defaultBrokers
	}
	fs.StringVar(&c.brokers, "brokers", brokers, "comma-separated bootstrap brokers `HOST:PORT,...` (env "+brokersEnv+")")
	// Kafka's own tools call it --bootstrap-server; accepting it saves a retry.
	fs.Alias("bootstrap-server", "brokers")
	fs.DurationVar(&c.timeout, "timeout", defTimeout, timeoutDoc)
	fs.StringVar(&c.logLevel, "log-level", "none", "client log on stderr: none, error, warn, info or debug")
	c.logTo = e.Stderr
	return fs, c
}

// plainFlagSet is the flag set of a command that talks to no cluster.
func (e Env) plainFlagSet(path, synopsis string) *cmdflag.Set {
	fs := cmdflag.New(path, synopsis, e.Stdout, e.Stderr)
	fs.Collect = e.collect
	return fs
}

// adminFlagSet is newFlagSet for the topic, group and cluster commands: a whole-operation
// --timeout and the --format (-o) of their output.
func (e Env) adminFlagSet(path, synopsis string) (*cmdflag.Set, *common) {
	fs, c := e.newFlagSet(path, synopsis, defaultRequestTimeout, "time limit for the whole operation")
	fs.Var(&c.output, "format", "output `FORMAT`: text or json")
	fs.Alias("o", "format")
	return fs, c
}

// noArgs fails when a command that takes no positional arguments got some.
func noArgs(fs *cmdflag.Set, rest []string) error {
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	return nil
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
	// The client ID and the software name (KIP-511) are what a broker logs and reports
	// about a connection; kgo's default "kgo" says nothing about which tool it was.
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(c.clientID),
		kgo.SoftwareNameAndVersion("vltava", softwareVersion())}, opts...)
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
	_, adm, ctx, done, err := c.adminClient(ctx)
	return adm, ctx, done, err
}

// adminClient is admin with the client under it, for the requests kadm does not make.
func (c *common) adminClient(ctx context.Context) (*kgo.Client, *kadm.Client, context.Context, func(), error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	adm := kadm.NewClient(cl)
	var cancel context.CancelFunc
	if c.timeout > 0 {
		adm.SetTimeoutMillis(int32(min(c.timeout.Milliseconds(), 1<<31-1)))
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	return cl, adm, ctx, func() { cancel(); cl.Close() }, nil
}

// reachErr turns a bare deadline into a message that says what was being waited for, since
// a client that cannot reach any broker only ever reports that its context expired.
func (c *common) reachErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %s: %w", c.brokers, c.timeout, err)
	}
	return err
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
