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
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

func (e Env) produce(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("produce", "--topic T [flags] < lines", defaultRequestTimeout,
		"how long a record may wait to be acknowledged before it counts as failed (0: no limit)")
	topic := fs.String("topic", "", "topic to produce to (required; created if the broker auto-creates topics)")
	keySep := fs.String("key-separator", "", "split each line at the first SEP into key and value; a line without SEP gets a null key")
	var headers kvList
	fs.Var(&headers, "header", "header k=v added to every record (repeatable)")
	partition := fs.Int("partition", -1, "partition to produce to (-1: the default partitioner, which hashes keys like Kafka's)")
	acks := fs.String("acks", "all", "acknowledgement: all, 1 or 0")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	if *topic == "" {
		return fs.Fail(errors.New("--topic is required"))
	}
	c.clientID = "vltava-produce"
	opts, err := produceOpts(*topic, *acks, *compression, *partition)
	if err != nil {
		return err
	}
	if c.timeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.timeout))
	}
	cl, err := c.client(opts...)
	if err != nil {
		return err
	}

	var hdrs []kgo.RecordHeader
	for i, k := range headers.keys {
		hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(headers.values[i])})
	}
	res := &produceResult{}
	readErr := readLines(e.Stdin, func(line []byte) {
		r := &kgo.Record{Value: line, Headers: hdrs, Partition: int32(*partition)}
		if *keySep != "" {
			if k, v, ok := bytes.Cut(line, []byte(*keySep)); ok {
				r.Key, r.Value = k, v
			}
		}
		res.inflight.Add(1)
		cl.Produce(ctx, r, res.done)
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

// readLines calls fn with each line of r, without its trailing newline. A last line with no
// newline still counts; an empty input gives no lines. Lines may be any length.
func readLines(r io.Reader, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			fn(bytes.TrimSuffix(line, []byte{'\n'}))
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

	mu     sync.Mutex
	ok     int
	failed int
	first  error
}

func (p *produceResult) done(_ *kgo.Record, err error) {
	defer p.inflight.Done()
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
