// produce.go is `vltava produce`: one record per line of stdin, like kafka-console-producer
// and kcat -P.
package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// defaultMaxMessageBytes is the batch limit when the topic's own is unknown (a topic the
// broker will auto-create): Kafka's default message.max.bytes, which such a topic gets.
const defaultMaxMessageBytes = 1048588

func (e Env) produce(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("produce", "--topic T [flags] < lines", defaultRequestTimeout,
		"how long a record may wait to be acknowledged before it counts as failed (0: no limit)")
	topic := fs.String("topic", "", "topic to produce to (required; created if the broker auto-creates topics)")
	keySep := fs.String("key-separator", "", "split each line at the first `SEP` into key and value; a line without SEP gets a null key")
	var headers kvList
	fs.Var(&headers, "header", "header `k=v` added to every record (repeatable)")
	headerDelim := fs.String("header-delimiter", "", "each line starts with its own headers, then `SEP`: k=v pairs separated by commas\n(a k without = has a null value), as kafka-console-producer's parse.headers with headers.delimiter")
	partition := fs.Int("partition", -1, "partition to produce to (-1: the default partitioner, which hashes keys like Kafka's)")
	acks := fs.String("acks", "all", "acknowledgement: all, 1 or 0")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	var maxBytes cmdflag.Size
	fs.Var(&maxBytes, "max-message-bytes", "largest record batch this client sends (`SIZE`, e.g. 4MiB; 0: the topic's max.message.bytes, looked up at start)")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if *topic == "" {
		return fs.Fail(errors.New("--topic is required"))
	}
	if err := validTopicName(*topic); err != nil {
		return err
	}
	if maxBytes != 0 && (maxBytes < 512 || maxBytes > 1<<30) {
		return fmt.Errorf("--max-message-bytes %d: want 512 bytes to 1GiB", maxBytes)
	}
	c.clientID = "vltava-produce"
	opts, err := produceOpts(*topic, *acks, *compression, *partition)
	if err != nil {
		return err
	}
	if c.timeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.timeout))
	}
	topicMax, err := preflight(ctx, c, *topic)
	if err != nil {
		return err
	}
	lim := produceLimit{topic: *topic, topicMax: topicMax, limit: int64(maxBytes), flag: maxBytes != 0}
	if !lim.flag {
		lim.limit = defaultMaxMessageBytes
		if topicMax > 0 {
			lim.limit = int64(topicMax)
		}
	}
	// The limit is also checked here, per record, before kgo sees it (batchBytes), so what
	// this client refuses is told apart from what the broker refuses.
	opts = append(opts, kgo.ProducerBatchMaxBytes(int32(max(512, min(lim.limit, 1<<30)))))
	if lim.limit > 100<<20-1<<20 {
		// kgo's cap on a whole request (100 MiB by default) must hold the largest batch.
		opts = append(opts, kgo.BrokerMaxWriteBytes(int32(min(lim.limit+1<<20, 1<<30))))
	}
	cl, err := c.client(opts...)
	if err != nil {
		return err
	}

	var hdrs []kgo.RecordHeader
	for i, k := range headers.keys {
		hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(headers.values[i])})
	}
	res := &produceResult{lim: lim}
	lineNo := 0
	readErr := readLines(e.Stdin, func(line []byte) error {
		lineNo++
		r := &kgo.Record{Value: line, Headers: hdrs, Partition: int32(*partition)}
		if *headerDelim != "" {
			h, kv, ok := bytes.Cut(line, []byte(*headerDelim))
			if !ok {
				return fmt.Errorf("line %d: no header delimiter %q (with --header-delimiter every line starts with its headers)", lineNo, *headerDelim)
			}
			r.Headers = append(hdrs[:len(hdrs):len(hdrs)], parseHeaders(h)...)
			r.Value = kv
		}
		if *keySep != "" {
			if k, v, ok := bytes.Cut(r.Value, []byte(*keySep)); ok {
				r.Key, r.Value = k, v
			}
		}
		res.inflight.Add(1)
		if size := batchBytes(r); size > lim.limit {
			res.done(r, lim.clientRefusal(size))
			return nil
		}
		cl.Produce(ctx, r, res.done)
		return nil
	})
	flushErr := cl.Flush(ctx)
	// Flush returns early when interrupted; Close then fails whatever is still buffered, and
	// kgo calls every record's promise exactly once, so after the wait the counts are final.
	cl.Close()
	res.inflight.Wait()
	ok, failed, first := res.counts()
	fmt.Fprintf(e.Stderr, "produced %d records to %s", ok, *topic)
	if failed > 0 {
		fmt.Fprintf(e.Stderr, ", %d failed", failed)
	}
	fmt.Fprintln(e.Stderr)
	switch {
	case readErr != nil:
		return fmt.Errorf("read stdin: %w", readErr)
	case failed > 0:
		return fmt.Errorf("%d of %d records failed, first: %w", failed, ok+failed, c.reachErr(first))
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	}
	return nil
}

// preflight asks the cluster for the topic's configs, with a client of its own, before the
// producer exists. It fails fast when no broker answers (kgo alone would retry for the
// whole delivery timeout, 30 s by default, as other tools do not) and learns the topic's
// max.message.bytes, or 0 when the topic does not exist yet or its configs are not readable.
func preflight(ctx context.Context, c *common, topic string) (int32, error) {
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	limit := c.timeout
	if limit <= 0 {
		limit = defaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil && len(rcs) == 0 {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer from %s within %s: %w", c.brokers, limit, err)
		}
		var ke *kerr.Error
		if !errors.As(err, &ke) {
			return 0, fmt.Errorf("no broker at %s answers: %w", c.brokers, firstShardErr(err))
		}
		return 0, nil // a Kafka error (not authorized to describe, say): produce may still work
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return 0, nil
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "max.message.bytes" {
			if n, err := strconv.ParseInt(cfg.MaybeValue(), 10, 32); err == nil && n > 0 {
				return int32(n), nil
			}
		}
	}
	return 0, nil
}

// produceLimit is the batch limit of one run and where it came from, for the messages
// that say which side refused a record.
type produceLimit struct {
	topic    string
	topicMax int32 // the topic's max.message.bytes; 0 if unknown
	limit    int64 // this client's limit
	flag     bool  // limit came from --max-message-bytes
}

func (l produceLimit) clientRefusal(size int64) error {
	if l.flag {
		msg := fmt.Sprintf("record not sent: it needs a batch of %d bytes, over this client's limit of %d bytes (--max-message-bytes)", size, l.limit)
		if l.topicMax > 0 {
			msg += fmt.Sprintf("; the topic's max.message.bytes is %d", l.topicMax)
		}
		return refusedHere{msg}
	}
	return refusedHere{fmt.Sprintf("record not sent: it needs a batch of %d bytes, over the topic's max.message.bytes of %d, which the broker "+
		"enforces and this client follows (raise it with `vltava topic alter-config %s --set max.message.bytes=N`)", size, l.limit, l.topic)}
}

// refusedHere is a record this client refused to send because it is too large. It is a
// MESSAGE_TOO_LARGE for errors.Is, but its text does not say the server refused it.
type refusedHere struct{ msg string }

func (r refusedHere) Error() string { return r.msg }
func (r refusedHere) Unwrap() error { return kerr.MessageTooLarge }

// brokerRefusal explains a MESSAGE_TOO_LARGE the broker sent: its limit, not this client's.
func (l produceLimit) brokerRefusal(err error) error {
	if l.topicMax > 0 {
		return fmt.Errorf("the broker refused the batch: %w; the topic's max.message.bytes is %d", err, l.topicMax)
	}
	return fmt.Errorf("the broker refused the batch: %w", err)
}

// batchBytes is what a record batch holding only r counts against the producer's batch
// limit, computed as kgo does (the v2 batch header, 61 bytes, and its 4-byte length in the
// request, then the record), so a record that passes here also passes kgo's own check, and
// every MESSAGE_TOO_LARGE kgo returns after it comes from the broker.
func batchBytes(r *kgo.Record) int64 {
	n := 1 + varintLen(0) + varintLen(0) + // attributes, timestamp delta, offset delta
		varintLen(int64(len(r.Key))) + int64(len(r.Key)) +
		varintLen(int64(len(r.Value))) + int64(len(r.Value)) +
		varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + int64(len(h.Key)) + varintLen(int64(len(h.Value))) + int64(len(h.Value))
	}
	return 65 + varintLen(n) + n
}

// varintLen is the length of v as a zigzag varint, Kafka's encoding of record fields.
func varintLen(v int64) int64 {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := int64(1)
	for ; u >= 0x80; u >>= 7 {
		n++
	}
	return n
}

// parseHeaders reads the header part of a line: k=v pairs separated by commas; a k without
// = has a null value. Empty input gives no headers.
func parseHeaders(b []byte) []kgo.RecordHeader {
	if len(b) == 0 {
		return nil
	}
	var out []kgo.RecordHeader
	for _, kv := range bytes.Split(b, []byte{','}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		h := kgo.RecordHeader{Key: string(k)}
		if ok {
			h.Value = append([]byte{}, v...)
		}
		out = append(out, h)
	}
	return out
}

// produceOpts maps the produce flags onto kgo options.
func produceOpts(topic, acks, compression string, partition int) ([]kgo.Opt, error) {
	// Ask for auto-creation as the Java producer and librdkafka do; the broker's
	// auto.create.topics.enable decides.
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		// Idempotence needs acks=all, so weaker acks turn it off, as the Java client must.
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: want all, 1 or 0", acks)
	}
	var codec kgo.CompressionCodec
	switch compression {
	case "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	switch {
	case partition >= 0 && partition <= 1<<31-1:
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	case partition != -1:
		return nil, fmt.Errorf("--partition %d: want a partition number or -1", partition)
	}
	return opts, nil
}

// readLines calls fn with each line of r, without its trailing newline, until fn fails. A
// last line with no newline still counts; an empty input gives no lines. Lines may be any
// length.
func readLines(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if ferr := fn(bytes.TrimSuffix(line, []byte{'\n'})); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// produceResult counts promise outcomes; kgo calls promises from its own goroutines.
type produceResult struct {
	inflight sync.WaitGroup
	lim      produceLimit

	mu     sync.Mutex
	ok     int
	failed int
	first  error
}

func (p *produceResult) done(_ *kgo.Record, err error) {
	defer p.inflight.Done()
	// This client's refusals were made before Produce and say so; a MESSAGE_TOO_LARGE from
	// kgo after the size check here is the broker's (see batchBytes).
	if errors.Is(err, kerr.MessageTooLarge) && !errors.As(err, new(refusedHere)) {
		err = p.lim.brokerRefusal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.ok++
		return
	}
	p.failed++
	if p.first == nil {
		p.first = err
	}
}

func (p *produceResult) counts() (ok, failed int, first error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.failed, p.first
}
