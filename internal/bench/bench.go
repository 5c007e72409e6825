// Package bench is the `vltava bench` load generator: an ordinary franz-go client, in the spirit
// of kafka-producer-perf-test and the OpenMessaging Benchmark, so it measures any Kafka-compatible
// cluster the same way, Vltava or not.
//
// Three modes:
//   - produce: producers send records as fast as allowed (or at --rate) and the tool reports
//     throughput and the produce-ack latency (from the Produce call to the broker's answer);
//   - consume: consumers read a topic from the beginning and report throughput;
//   - e2e: producers and consumers run together; every record carries its send time in the
//     first 8 bytes of its value, and the consumer subtracts it from the time it sees the record.
//
// All times are measured from one monotonic base in this process, so producer and consumer must
// run in the same `vltava bench e2e` process for end-to-end figures to mean anything.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// brokersEnv is the variable every vltava tool reads its default bootstrap brokers from.
const brokersEnv = "VLTAVA_BROKERS"

// Run runs `vltava bench <produce|consume|e2e> [flags]`: the report goes to stdout, progress
// and errors to stderr. getenv supplies VLTAVA_BROKERS, the default of --brokers, as for
// the other tools.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return run(ctx, args, stdout, stderr, getenv)
}

// Modes are the bench's subcommands.
func Modes() []string { return []string{"produce", "consume", "e2e"} }

// FlagSet returns the flags of one mode without running anything (for shell completion);
// nil for an unknown mode.
func FlagSet(mode string) *cmdflag.Set {
	if !slices.Contains(Modes(), mode) {
		return nil
	}
	fs, _ := newFlagSet(mode, io.Discard, io.Discard, nil)
	return fs
}

const usage = `usage: vltava bench <produce|consume|e2e> [flags]

  produce  send records and report throughput and produce-ack latency
  consume  read a topic from the beginning and report throughput
  e2e      produce and consume together and report end-to-end latency

Run "vltava bench <mode> -h" for the flags of a mode.
`

// sizeAbout is the part of every mode's help about units.
const sizeAbout = `Counts and sizes accept K, M, G (powers of 1000; with B for bytes: KB, MB, GB) and
KiB, MiB, GiB (powers of 1024). MB/s in reports is 10^6 bytes per second, counting record
keys and values.`

// config is one bench run, as parsed from flags.
type config struct {
	mode              string
	brokers           []string
	topic             string
	records           int64
	maxBytes          int64
	duration          time.Duration
	recordSize        int
	keyDist           string
	partitions        int
	replicationFactor int
	producers         int
	consumers         int
	acks              string
	linger            time.Duration
	batchBytes        int
	bufferMemory      int64
	compression       string
	idempotent        bool
	rate              string
	recordsPerSec     float64 // resolved from rate and recordSize
	warmup            time.Duration
	progress          time.Duration
	timeout           time.Duration
	idleConns         int
	jsonOut           bool
	quiet             bool
	raw               *rawFlags // the flags as typed, before parseFlags checks them
}

// run parses args and runs one bench, writing the report to stdout and progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing mode: produce, consume or e2e")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cfg, err := parseFlags(args[0], args[1:], stdout, stderr, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var res *Result
	cpu0 := processCPU()
	switch cfg.mode {
	case "produce":
		res, err = runProduce(ctx, cfg, stderr)
	case "consume":
		res, err = runConsume(ctx, cfg, stderr)
	case "e2e":
		res, err = runE2E(ctx, cfg, stderr)
	}
	if res != nil {
		res.ClientCPUSeconds = processCPU() - cpu0
		if werr := writeResult(stdout, cfg, res); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// rawFlags holds the flags as typed until parseFlags checks them and copies them into a config.
type rawFlags struct {
	brokers                                                 string
	records, maxBytes, recordSize, batchBytes, bufferMemory cmdflag.Size
}

// newFlagSet registers the flags of one mode only: a flag a mode ignores would be noise in
// its help and would hide a mistake if accepted. Defaults live in the returned config.
func newFlagSet(mode string, stdout, stderr io.Writer, getenv func(string) string) (*cmdflag.Set, *config) {
	brokers := "127.0.0.1:9092"
	if getenv != nil && getenv(brokersEnv) != "" {
		brokers = getenv(brokersEnv)
	}
	cfg := &config{mode: mode, topic: "vltava-bench", recordSize: 100, keyDist: "none",
		partitions: 1, replicationFactor: -1, producers: 1, consumers: 1, acks: "all", bufferMemory: 32 << 20,
		compression: "none", idempotent: true, rate: "0", progress: 5 * time.Second, timeout: 30 * time.Second}
	produces, consumes := mode != "consume", mode != "produce"
	fs := cmdflag.New("bench "+mode, "[flags]", stdout, stderr)
	fs.About = map[string]string{
		"produce": "Send records as fast as allowed (or at --rate); report throughput and produce-ack latency.",
		"consume": "Read a topic from the beginning; report throughput.",
		"e2e":     "Produce and consume together; report end-to-end latency (send time is in each value's first 8 bytes).",
	}[mode] + "\n\n" + sizeAbout
	sz := &rawFlags{recordSize: cmdflag.Size(cfg.recordSize), bufferMemory: cmdflag.Size(cfg.bufferMemory)}
	fs.StringVar(&sz.brokers, "brokers", brokers, "comma-separated seed brokers `HOST:PORT,...` (env "+brokersEnv+")")
	fs.Alias("bootstrap-server", "brokers")
	fs.StringVar(&cfg.topic, "topic", cfg.topic, "topic to use (created if missing)")
	fs.IntVar(&cfg.partitions, "partitions", cfg.partitions, "partitions to create the topic with if it is missing")
	fs.IntVar(&cfg.replicationFactor, "replication-factor", cfg.replicationFactor, "replication factor for a created topic (-1 = broker default)")
	switch mode {
	case "produce":
		fs.Var(&sz.records, "records", "records to send and measure (`COUNT`, e.g. 1M; 0 = use --duration)")
		fs.Var(&sz.maxBytes, "bytes", "send this many bytes of values (`SIZE`, e.g. 1GiB; sets --records); 0 = no byte limit")
		fs.DurationVar(&cfg.duration, "duration", 0, "measure for this long (default 10s when --records and --bytes are 0)")
	case "consume":
		fs.Var(&sz.records, "records", "read at most this many records (`COUNT`; 0 = read to the end the topic had at start)")
		fs.Var(&sz.maxBytes, "bytes", "stop after this many bytes of keys and values (`SIZE`, e.g. 1GiB; 0 = no byte limit)")
		fs.DurationVar(&cfg.duration, "duration", 0, "stop after this long (0 = no time limit)")
	case "e2e":
		fs.Var(&sz.records, "records", "records to send and receive (`COUNT`, e.g. 1M; 0 = use --duration)")
		fs.Var(&sz.maxBytes, "bytes", "send this many bytes of values (`SIZE`; sets --records); 0 = no byte limit")
		fs.DurationVar(&cfg.duration, "duration", 0, "measure for this long (default 10s when --records and --bytes are 0)")
	}
	if produces {
		fs.Var(&sz.recordSize, "record-size", "value size (`SIZE`, at least 8 bytes: the first 8 carry the send time)")
		fs.StringVar(&cfg.keyDist, "key-distribution", cfg.keyDist, "record keys: none (the partitioner spreads unkeyed records), random or sequential (8-byte keys)")
		fs.IntVar(&cfg.producers, "producers", cfg.producers, "producer clients, each with its own connections")
		fs.StringVar(&cfg.acks, "acks", cfg.acks, "produce acks: all, 1 or 0")
		fs.DurationVar(&cfg.linger, "linger", 0, "producer linger (0 = send as soon as possible; batches still form while requests are in flight)")
		fs.Var(&sz.batchBytes, "batch-size", "max bytes of one record batch (`SIZE`; 0 = client default, about 1 MB)")
		fs.Var(&sz.bufferMemory, "buffer-memory", "bytes of records a producer buffers before Produce blocks (`SIZE`), like Kafka's buffer.memory")
		fs.StringVar(&cfg.compression, "compression", cfg.compression, "batch compression: none, gzip, snappy, lz4 or zstd")
		fs.BoolVar(&cfg.idempotent, "idempotent", cfg.idempotent, "idempotent producer (needs --acks all; turned off with a note otherwise)")
		fs.StringVar(&cfg.rate, "rate", cfg.rate, "target produce rate, total across producers: records/s (e.g. 5000) or bytes/s (e.g. 20MB); 0 = as fast as possible")
		fs.DurationVar(&cfg.warmup, "warmup", 0, "produce for this long before measuring; warm-up records are not counted")
	}
	if consumes {
		fs.IntVar(&cfg.consumers, "consumers", cfg.consumers, "consumer clients; partitions are divided among them")
		fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "give up when no record arrives for this long")
	}
	fs.DurationVar(&cfg.progress, "progress", cfg.progress, "interval of progress lines on stderr (0 = none)")
	fs.IntVar(&cfg.idleConns, "idle-connections", 0, "open this many extra idle connections (each sends one ApiVersions) to the first broker and hold them during the run")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as one JSON object")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines")
	cfg.raw = sz
	return fs, cfg
}

func parseFlags(mode string, args []string, stdout, stderr io.Writer, getenv func(string) string) (*config, error) {
	if !slices.Contains(Modes(), mode) {
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("unknown mode %q: want produce, consume or e2e", mode)
	}
	fs, cfg := newFlagSet(mode, stdout, stderr, getenv)
	rest, err := fs.Parse(args)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	sz := cfg.raw
	cfg.brokers = nil
	for _, b := range strings.Split(sz.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.brokers = append(cfg.brokers, b)
		}
	}
	cfg.records, cfg.maxBytes, cfg.bufferMemory = int64(sz.records), int64(sz.maxBytes), int64(sz.bufferMemory)
	if sz.recordSize > 1<<30 || sz.batchBytes > 1<<30 {
		return nil, errors.New("--record-size and --batch-size: at most 1GiB")
	}
	cfg.recordSize, cfg.batchBytes = int(sz.recordSize), int(sz.batchBytes)
	if cfg.recordsPerSec, err = parseRate(cfg.rate, cfg.recordSize); err != nil {
		return nil, fmt.Errorf("--rate: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.mode != "consume" && cfg.maxBytes > 0 {
		if cfg.records > 0 {
			return nil, errors.New("--records and --bytes: give one")
		}
		cfg.records = (cfg.maxBytes + int64(cfg.recordSize) - 1) / int64(cfg.recordSize)
	}
	if cfg.mode != "consume" && cfg.records == 0 && cfg.duration == 0 {
		cfg.duration = 10 * time.Second
	}
	if cfg.acks != "all" && cfg.idempotent {
		fmt.Fprintf(stderr, "note: idempotence needs --acks all; producing without it\n")
		cfg.idempotent = false
	}
	return cfg, nil
}

func (c *config) validate() error {
	switch {
	case len(c.brokers) == 0:
		return errors.New("--brokers: none given")
	case c.topic == "":
		return errors.New("--topic: empty")
	case c.records < 0 || c.maxBytes < 0 || c.duration < 0 || c.warmup < 0:
		return errors.New("--records, --bytes, --duration and --warmup must not be negative")
	case c.recordSize < 8:
		return fmt.Errorf("--record-size %d: at least 8 bytes, the first 8 carry the send time", c.recordSize)
	case c.partitions < 1:
		return fmt.Errorf("--partitions %d: at least 1", c.partitions)
	case c.producers < 1 || c.consumers < 1:
		return errors.New("--producers and --consumers: at least 1")
	case c.idleConns < 0 || c.batchBytes < 0:
		return errors.New("--idle-connections and --batch-size must not be negative")
	case c.bufferMemory < int64(c.recordSize+c.keyLen()):
		return fmt.Errorf("--buffer-memory %d: smaller than one record", c.bufferMemory)
	}
	switch c.keyDist {
	case "none", "random", "sequential":
	default:
		return fmt.Errorf("--key-distribution %q: want none, random or sequential", c.keyDist)
	}
	switch c.acks {
	case "all", "-1", "1", "0":
		if c.acks == "-1" {
			c.acks = "all"
		}
	default:
		return fmt.Errorf("--acks %q: want all, 1 or 0", c.acks)
	}
	if _, err := compressionCodec(c.compression); err != nil {
		return err
	}
	return nil
}

// keyLen is the length of the key each record carries.
func (c *config) keyLen() int {
	if c.keyDist == "none" {
		return 0
	}
	return 8
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}
