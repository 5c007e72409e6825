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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Run runs `vltava bench <produce|consume|e2e> [flags]`.
func Run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

const usage = `usage: vltava bench <produce|consume|e2e> [flags]

  produce  send records and report throughput and produce-ack latency
  consume  read a topic from the beginning and report throughput
  e2e      produce and consume together and report end-to-end latency

Sizes accept B, KB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024).
MB/s in reports is 10^6 bytes per second, counting record keys and values.
`

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
}

// run parses args and runs one bench, writing the report to stdout and progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("missing mode: produce, consume or e2e")
	}
	cfg, err := parseFlags(args[0], args[1:], stderr)
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

func parseFlags(mode string, args []string, stderr io.Writer) (*config, error) {
	switch mode {
	case "produce", "consume", "e2e":
	default:
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("unknown mode %q: want produce, consume or e2e", mode)
	}
	cfg := &config{mode: mode}
	fs := flag.NewFlagSet("vltava bench "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var brokers, records, maxBytes string
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	fs.StringVar(&cfg.topic, "topic", "vltava-bench", "topic to use (created if missing)")
	fs.StringVar(&records, "records", "0", "records to measure (produce, e2e) or to read at most (consume); 0 = use --duration, or for consume read to the end")
	fs.StringVar(&maxBytes, "bytes", "0", "consume: stop after this many bytes (e.g. 1GiB); produce, e2e: send this many bytes of values (sets --records); 0 = no byte limit")
	fs.DurationVar(&cfg.duration, "duration", 0, "measure for this long instead of a record count (default 10s for produce and e2e when --records is 0)")
	fs.IntVar(&cfg.recordSize, "record-size", 100, "value size in bytes (at least 8: the first 8 carry the send time)")
	fs.StringVar(&cfg.keyDist, "key-distribution", "none", "record keys: none (the partitioner spreads unkeyed records), random or sequential (8-byte keys)")
	fs.IntVar(&cfg.partitions, "partitions", 1, "partitions to create the topic with if it is missing")
	fs.IntVar(&cfg.replicationFactor, "replication-factor", -1, "replication factor for a created topic (-1 = broker default)")
	fs.IntVar(&cfg.producers, "producers", 1, "producer clients, each with its own connections")
	fs.IntVar(&cfg.consumers, "consumers", 1, "consumer clients; partitions are divided among them")
	fs.StringVar(&cfg.acks, "acks", "all", "produce acks: all, 1 or 0")
	fs.DurationVar(&cfg.linger, "linger", 0, "producer linger (0 = send as soon as possible; batches still form while requests are in flight)")
	fs.IntVar(&cfg.batchBytes, "batch-size", 0, "max bytes of one record batch (0 = client default, about 1 MB)")
	var bufferMemory string
	fs.StringVar(&bufferMemory, "buffer-memory", "32MiB", "bytes of records a producer buffers before Produce blocks, like Kafka's buffer.memory")
	fs.StringVar(&cfg.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.BoolVar(&cfg.idempotent, "idempotent", true, "idempotent producer (needs --acks all; turned off with a note otherwise)")
	fs.StringVar(&cfg.rate, "rate", "0", "target produce rate, total across producers: records/s (e.g. 5000) or bytes/s (e.g. 20MB); 0 = as fast as possible")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "produce for this long before measuring; warm-up records are not counted")
	fs.DurationVar(&cfg.progress, "progress", 5*time.Second, "interval of progress lines on stderr (0 = none)")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "give up when no record arrives for this long (consume, e2e)")
	fs.IntVar(&cfg.idleConns, "idle-connections", 0, "open this many extra idle connections (each sends one ApiVersions) to the first broker and hold them during the run")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as one JSON object")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.brokers = append(cfg.brokers, b)
		}
	}
	var err error
	if cfg.records, err = parseSize(records); err != nil {
		return nil, fmt.Errorf("--records: %w", err)
	}
	if cfg.maxBytes, err = parseSize(maxBytes); err != nil {
		return nil, fmt.Errorf("--bytes: %w", err)
	}
	if cfg.bufferMemory, err = parseSize(bufferMemory); err != nil {
		return nil, fmt.Errorf("--buffer-memory: %w", err)
	}
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
