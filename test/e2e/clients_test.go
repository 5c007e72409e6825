package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// codecs are the compression codecs of the matrix, by their Kafka names.
var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// startAt is where a consumer starts in every partition: the beginning, an
// offset, or the first record at or after a timestamp.
type startAt struct {
	offset    *int64
	timestamp *int64
	// smallFetch caps the client's fetch sizes (per partition and per
	// response) at smallFetchBytes, below the size of most batches: the
	// broker must still return the first batch whole (KIP-74) so the
	// consumer makes progress.
	smallFetch bool
	// waitEnd, when set, replaces the end offsets: the consumer reads until
	// every partition reaches it, waiting for records that are not there yet.
	waitEnd int64
}

// smallFetchBytes is the fetch size limit of a smallFetch read (librdkafka's
// minimum for its own limits is 1000).
const smallFetchBytes = 1000

func (s startAt) String() string {
	if s.smallFetch {
		c := s
		c.smallFetch = false
		return c.String() + fmt.Sprintf(" with %d-byte fetches", smallFetchBytes)
	}
	switch {
	case s.offset != nil:
		return fmt.Sprintf("offset %d", *s.offset)
	case s.timestamp != nil:
		return fmt.Sprintf("timestamp %d", *s.timestamp)
	}
	return "beginning"
}

// clientError is an error a client library raised, by its own type name.
type clientError struct {
	Client, Type, Msg string
}

func (e *clientError) Error() string { return fmt.Sprintf("%s raised %s: %s", e.Client, e.Type, e.Msg) }

// client is one Kafka client library as producer and consumer.
type client struct {
	name string
	// spec narrows the generated records to what the producer can express.
	spec func(genSpec) genSpec
	// produce sends recs in order (each to its partition) and returns them
	// with the offsets the broker acknowledged; producers that do not report
	// offsets or cannot set timestamps return what they sent (offsets as a
	// fresh topic assigns them, timestamps 0).
	produce func(ctx context.Context, addr, topic, codec string, recs []rec) ([]rec, error)
	// consume reads every partition of the topic from start to the end
	// offsets at the time it starts.
	consume func(ctx context.Context, addr, topic string, partitions int32, start startAt) ([]rec, error)
	// canCodec reports whether the library can compress and decompress the
	// codec here; when it cannot, wantErr is the error it documents.
	canCodec func(codec string) (ok bool, wantErr string)
}

var clients = []*client{kcatClient(), pyClient("python3-kafka", "kafka"), pyClient("python3-confluent-kafka", "confluent"), franzClient()}

const clientTimeout = 40 * time.Second

// ---------------------------------------------------------------- kcat

const (
	kcatMsgDelim = 0x1e // -D
	kcatKeyDelim = 0x1f // -K
)

func kcatClient() *client {
	return &client{
		name: "kcat",
		spec: func(g genSpec) genSpec {
			g.avoid = []byte{kcatMsgDelim, kcatKeyDelim}
			g.avoidInHeaders = []byte{0}
			g.headerGroups = 3 // -H applies to every message of one kcat run
			g.noTimestamps = true
			g.emptyIsNull = true    // -Z
			g.emptyKeyIsNull = true // "\x1fvalue" has a null key
			return g
		},
		produce:  kcatProduce,
		consume:  kcatConsume,
		canCodec: func(string) (bool, string) { return true, "" }, // librdkafka is built with all of them
	}
}

// kcatProduce runs one kcat per run of records sharing a partition and
// headers. kcat cannot set timestamps and does not print offsets.
func kcatProduce(ctx context.Context, addr, topic, codec string, recs []rec) ([]rec, error) {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].P == recs[i].P && sameHeaders(recs[j].H, recs[i].H) {
			j++
		}
		var in bytes.Buffer
		for _, r := range recs[i:j] {
			if r.K != nil {
				in.Write(r.K)
				in.WriteByte(kcatKeyDelim)
			}
			in.Write(r.V) // null: nothing, which -Z sends as null
			in.WriteByte(kcatMsgDelim)
		}
		args := []string{"-P", "-b", addr, "-t", topic, "-p", strconv.Itoa(int(recs[i].P)),
			"-D", fmt.Sprintf(`\x%02x`, kcatMsgDelim), "-K", fmt.Sprintf(`\x%02x`, kcatKeyDelim),
			"-X", "compression.codec=" + codec, "-X", "acks=all", "-X", "linger.ms=20", "-Z", "-m", "30"}
		for _, h := range recs[i].H {
			args = append(args, "-H", h.K+"="+string(h.V))
		}
		if _, stderr, err := runCmd(ctx, clientTimeout, in.Bytes(), "kcat", args...); err != nil {
			return nil, fmt.Errorf("kcat %v: %w\nstderr ends: %s", args, err, lastBytes(stderr, 1200))
		}
		i = j
	}
	return recs, nil
}

// lastBytes is the end of a process's output, for error messages.
func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte("..."), b[len(b)-n:]...)
	}
	return b
}

func sameHeaders(a, b []hdr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].K != b[i].K || !bytes.Equal(a[i].V, b[i].V) {
			return false
		}
	}
	return true
}

// kcatConsume reads with -J: kcat (through yajl) writes keys, values and
// header values as JSON strings whose bytes >= 0x80 are copied raw, so they
// are decoded here byte for byte rather than as UTF-8.
func kcatConsume(ctx context.Context, addr, topic string, partitions int32, start startAt) ([]rec, error) {
	o := "beginning"
	switch {
	case start.offset != nil:
		o = strconv.FormatInt(*start.offset, 10)
	case start.timestamp != nil:
		o = "s@" + strconv.FormatInt(*start.timestamp, 10)
	}
	// Not -q: librdkafka's protocol errors on stderr explain a hang.
	args := []string{"-C", "-b", addr, "-t", topic, "-o", o, "-e", "-J", "-m", "30"}
	if start.smallFetch {
		n := strconv.Itoa(smallFetchBytes)
		args = append(args, "-X", "fetch.max.bytes="+n, "-X", "max.partition.fetch.bytes="+n,
			"-X", "message.max.bytes="+n)
	}
	stdout, stderr, err := runCmd(ctx, clientTimeout, nil, "kcat", args...)
	if err != nil {
		return nil, fmt.Errorf("kcat %v: %w\nstderr ends: %s", args, err, lastBytes(stderr, 1200))
	}
	return parseKcatJSON(stdout)
}

// parseKcatJSON parses kcat -J output, one record per line.
func parseKcatJSON(stdout []byte) ([]rec, error) {
	var out []rec
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		v, err := parseRawJSON(line)
		if err != nil {
			return nil, fmt.Errorf("kcat output %q: %w", line, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("kcat output %q: not an object", line)
		}
		r, err := kcatRec(m)
		if err != nil {
			return nil, fmt.Errorf("kcat output %q: %w", line, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func kcatRec(m map[string]any) (rec, error) {
	var r rec
	num := func(k string) (int64, error) {
		n, ok := m[k].(json.Number)
		if !ok {
			return 0, fmt.Errorf("field %s: %v", k, m[k])
		}
		return n.Int64()
	}
	p, err := num("partition")
	if err != nil {
		return r, err
	}
	r.P = int32(p)
	if r.O, err = num("offset"); err != nil {
		return r, err
	}
	if r.TS, err = num("ts"); err != nil {
		return r, err
	}
	switch t, _ := m["tstype"].(rawString); string(t) {
	case "create":
		r.TSType = 0
	case "logappend":
		r.TSType = 1
	default:
		return r, fmt.Errorf("tstype %q", t)
	}
	bs := func(k string) []byte {
		s, ok := m[k].(rawString)
		if !ok {
			return nil // null
		}
		return append([]byte{}, s...)
	}
	r.K, r.V = bs("key"), bs("payload")
	r.H = []hdr{}
	if hs, ok := m["headers"].([]any); ok {
		for i := 0; i+1 < len(hs); i += 2 {
			k, _ := hs[i].(rawString)
			v, _ := hs[i+1].(rawString)
			r.H = append(r.H, hdr{K: string(k), V: append([]byte{}, v...)})
		}
	}
	return r, nil
}

// ---------------------------------------------------------------- python

func pyClient(name, lib string) *client {
	script := filepath.Join(e2eDir(), "pyclient.py")
	run := func(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
		args = append([]string{script, lib}, args...)
		stdout, stderr, err := runCmd(ctx, clientTimeout, stdin, "/usr/bin/python3", args...)
		var res struct {
			Error *struct{ Type, Msg string }
		}
		if jerr := json.Unmarshal(stdout, &res); jerr == nil && res.Error != nil {
			return nil, &clientError{Client: name, Type: res.Error.Type, Msg: res.Error.Msg}
		}
		if err != nil {
			return nil, fmt.Errorf("%s %v: %w\nstdout: %s\nstderr ends: %s", name, args, err, lastBytes(stdout, 600), lastBytes(stderr, 1200))
		}
		return stdout, nil
	}
	c := &client{name: name, spec: func(g genSpec) genSpec { return g }}
	c.produce = func(ctx context.Context, addr, topic, codec string, recs []rec) ([]rec, error) {
		in, err := json.Marshal(recs)
		if err != nil {
			return nil, err
		}
		out, err := run(ctx, in, "produce", "--bootstrap", addr, "--topic", topic, "--codec", codec)
		if err != nil {
			return nil, err
		}
		var res struct{ Acked []rec }
		if err := json.Unmarshal(out, &res); err != nil {
			return nil, fmt.Errorf("%s output %s: %w", name, out, err)
		}
		return res.Acked, nil
	}
	c.consume = func(ctx context.Context, addr, topic string, partitions int32, start startAt) ([]rec, error) {
		var ps []string
		for p := int32(0); p < partitions; p++ {
			ps = append(ps, strconv.Itoa(int(p)))
		}
		args := []string{"consume", "--bootstrap", addr, "--topic", topic, "--partitions", strings.Join(ps, ",")}
		switch {
		case start.offset != nil:
			args = append(args, "--from-offset", strconv.FormatInt(*start.offset, 10))
		case start.timestamp != nil:
			args = append(args, "--from-ts", strconv.FormatInt(*start.timestamp, 10))
		}
		if start.smallFetch {
			args = append(args, "--fetch-bytes", strconv.Itoa(smallFetchBytes))
		}
		out, err := run(ctx, nil, args...)
		if err != nil {
			return nil, err
		}
		var res struct{ Records []rec }
		if err := json.Unmarshal(out, &res); err != nil {
			return nil, fmt.Errorf("%s output %s: %w", name, out, err)
		}
		return res.Records, nil
	}
	// Ask the library once which codecs it has; python3-kafka needs optional
	// modules (python3-snappy, python3-lz4, python3-zstandard) for all but
	// gzip and documents the error it raises without them.
	var (
		once sync.Once
		have map[string]bool
	)
	c.canCodec = func(codec string) (bool, string) {
		if codec == "none" {
			return true, ""
		}
		once.Do(func() {
			have = map[string]bool{}
			if out, err := run(context.Background(), nil, "codecs"); err == nil {
				_ = json.Unmarshal(out, &have)
			}
		})
		return have[codec], fmt.Sprintf("Libraries for %s compression codec not found", codec)
	}
	return c
}

// ---------------------------------------------------------------- franz-go

func franzClient() *client {
	return &client{
		name:     "franz-go",
		spec:     func(g genSpec) genSpec { return g },
		produce:  franzProduce,
		consume:  franzConsume,
		canCodec: func(string) (bool, string) { return true, "" },
	}
}

func franzCodec(codec string) kgo.CompressionCodec {
	switch codec {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func franzProduce(ctx context.Context, addr, topic, codec string, recs []rec) ([]rec, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(franzCodec(codec)), kgo.ProducerLinger(20*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &kgo.Record{Partition: r.P, Key: r.K, Value: r.V}
		if r.TS != 0 {
			kr.Timestamp = time.UnixMilli(r.TS)
		}
		for _, h := range r.H {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.K, Value: h.V})
		}
		krs[i] = kr
	}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	res := cl.ProduceSync(ctx, krs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("franz-go produce: %w", err)
	}
	// Results arrive in completion order; the records themselves carry
	// their acknowledged partition and offset.
	out := make([]rec, len(recs))
	for i, kr := range krs {
		out[i] = recs[i]
		out[i].P, out[i].O = kr.Partition, kr.Offset
	}
	return out, nil
}

func franzConsume(ctx context.Context, addr, topic string, partitions int32, start startAt) ([]rec, error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ad := kadm.NewClient(adm)
	ends, err := ad.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("franz-go list end offsets: %w", err)
	}
	starts := map[int32]int64{}
	switch {
	case start.timestamp != nil:
		lo, err := ad.ListOffsetsAfterMilli(ctx, *start.timestamp, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("franz-go list offsets after %d: %w", *start.timestamp, err)
		}
		lo.Each(func(o kadm.ListedOffset) {
			starts[o.Partition] = o.Offset
			if e, ok := ends.Lookup(topic, o.Partition); ok && (o.Offset < 0 || o.Offset > e.Offset) {
				starts[o.Partition] = e.Offset
			}
		})
	default:
		for p := int32(0); p < partitions; p++ {
			starts[p] = 0
			if start.offset != nil {
				starts[p] = *start.offset
			}
		}
	}
	offs := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	end := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		e, ok := ends.Lookup(topic, p)
		if !ok {
			return nil, fmt.Errorf("franz-go: no end offset for partition %d", p)
		}
		end[p] = e.Offset
		if start.waitEnd > 0 {
			end[p] = start.waitEnd
		}
		next[p] = starts[p]
		if start.offset == nil && start.timestamp == nil {
			offs[p] = kgo.NewOffset().AtStart()
		} else {
			offs[p] = kgo.NewOffset().At(starts[p])
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs})}
	if start.smallFetch {
		opts = append(opts, kgo.FetchMaxBytes(smallFetchBytes), kgo.FetchMaxPartitionBytes(smallFetchBytes))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []rec
	behind := func() bool {
		for p := range end {
			if next[p] < end[p] {
				return true
			}
		}
		return false
	}
	for behind() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("franz-go consume: positions %v, end %v: %w", next, end, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s[%d]: %w", t, p, err)) })
		if ferr != nil {
			return nil, fmt.Errorf("franz-go consume: %w", ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			x := rec{P: r.Partition, O: r.Offset, TS: r.Timestamp.UnixMilli(), TSType: int(r.Attrs.TimestampType()),
				K: r.Key, V: r.Value, H: []hdr{}}
			for _, h := range r.Headers {
				x.H = append(x.H, hdr{K: h.Key, V: h.Value})
			}
			out = append(out, x)
			next[r.Partition] = r.Offset + 1
		})
	}
	return out, nil
}

// ---------------------------------------------------------------- raw JSON

// rawString is a JSON string decoded to its bytes without UTF-8 validation.
type rawString []byte

// parseRawJSON parses one JSON value; strings become rawString (escapes
// decoded, other bytes copied as they are), numbers json.Number.
func parseRawJSON(b []byte) (any, error) {
	p := &rawParser{b: b}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("trailing data at %d", p.i)
	}
	return v, nil
}

type rawParser struct {
	b []byte
	i int
}

func (p *rawParser) ws() {
	for p.i < len(p.b) && strings.IndexByte(" \t\r\n", p.b[p.i]) >= 0 {
		p.i++
	}
}

func (p *rawParser) value() (any, error) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for {
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == '}' {
				p.i++
				return m, nil
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, fmt.Errorf("want : at %d", p.i)
			}
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			m[string(k)] = v
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
			}
		}
	case c == '[':
		p.i++
		var a []any
		for {
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return a, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
			}
		}
	case c == '"':
		return p.str()
	case bytes.HasPrefix(p.b[p.i:], []byte("null")):
		p.i += 4
		return nil, nil
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, nil
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, nil
	default:
		j := p.i
		for j < len(p.b) && strings.IndexByte("+-0123456789.eE", p.b[j]) >= 0 {
			j++
		}
		if j == p.i {
			return nil, fmt.Errorf("unexpected %q at %d", c, p.i)
		}
		n := json.Number(p.b[p.i:j])
		p.i = j
		return n, nil
	}
}

func (p *rawParser) str() (rawString, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, fmt.Errorf("want string at %d", p.i)
	}
	p.i++
	out := rawString{}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch c {
		case '"':
			p.i++
			return out, nil
		case '\\':
			if p.i+1 >= len(p.b) {
				return nil, errors.New("unterminated escape")
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if p.i+4 > len(p.b) {
					return nil, errors.New("short \\u escape")
				}
				n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
				if err != nil {
					return nil, err
				}
				p.i += 4
				if n >= 0xd800 && n < 0xe000 {
					return nil, fmt.Errorf("surrogate \\u%04x not expected from kcat", n)
				}
				out = append(out, string(rune(n))...)
			default: // \" \\ \/
				out = append(out, e)
			}
		default:
			out = append(out, c)
			p.i++
		}
	}
	return nil, errors.New("unterminated string")
}
