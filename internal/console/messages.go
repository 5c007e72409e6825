// messages.go is the message browser, GET /api/topics/{topic}/messages: records of one
// partition or all, from the oldest, the newest, an offset or a time, optionally only
// those whose key, value or a header contains some text.
//
// It fetches with plain Fetch requests to each partition's leader (no consumer group, no
// committed offsets, nothing left behind) and reads only below the high watermark it
// listed at the start, so a busy partition cannot keep it reading forever. Bounds: at most
// limit records are kept (the caller's, capped by Options.MaxRecords); the keys, values
// and headers returned add up to at most maxBytes (capped by Options.MaxBytes; the record
// that crosses it is cut and marked); the bytes fetched while looking for matches add up
// to at most Options.MaxScanBytes; and the request's timeout ends the scan, which then
// answers with what it found and says why it stopped.
//
// Order: one partition's records by offset; all partitions' by timestamp, then partition
// and offset. From the newest, the latest records come first.
package console

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	defaultBrowseLimit = 50
	maxFilterLen       = 1024
	// partitionFetchBytes is the most one partition returns per fetch round, so one
	// round over many partitions stays small and the scan budget is spent evenly.
	partitionFetchBytes = 1 << 20
)

// Why a browse stopped.
const (
	stopEnd      = "end"        // every partition read up to its high watermark (or the limit)
	stopLimit    = "limit"      // enough records matched
	stopBytes    = "bytes"      // the returned bytes reached maxBytes
	stopScan     = "scan-limit" // the fetched bytes reached Options.MaxScanBytes
	stopDeadline = "timeout"    // the request timeout ended the scan
)

type browseParams struct {
	partition int32 // -1: all
	start     string
	offset    int64
	timeMs    int64
	limit     int
	maxBytes  int
	filter    []byte // lower-cased
}

type recordView struct {
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     int64        `json:"timestamp"` // ms since the epoch
	TimestampType string       `json:"timestampType"`
	LeaderEpoch   int32        `json:"leaderEpoch"`
	Key           []byte       `json:"key"`   // base64; null for a null key
	Value         []byte       `json:"value"` // base64; null for a tombstone
	KeySize       int          `json:"keySize"`
	ValueSize     int          `json:"valueSize"`
	Headers       []headerView `json:"headers"`
	Truncated     bool         `json:"truncated"` // cut to fit maxBytes
	size          int
}

type headerView struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type cursorView struct {
	Partition      int32  `json:"partition"`
	LogStartOffset int64  `json:"logStartOffset"`
	HighWatermark  int64  `json:"highWatermark"`
	StartOffset    int64  `json:"startOffset"` // where the scan began
	NextOffset     int64  `json:"nextOffset"`  // where it would go on
	Error          string `json:"error,omitempty"`
}

type browseResult struct {
	Topic        string       `json:"topic"`
	Records      []recordView `json:"records"`
	Scanned      int64        `json:"scanned"` // records examined
	ScannedBytes int64        `json:"scannedBytes"`
	StoppedBy    string       `json:"stoppedBy"`
	Limit        int          `json:"limit"`
	MaxBytes     int          `json:"maxBytes"`
	Partitions   []cursorView `json:"partitions"`
}

func (c *Console) parseBrowse(q url.Values) (browseParams, error) {
	p := browseParams{partition: -1, start: "oldest", limit: defaultBrowseLimit, maxBytes: c.opts.MaxBytes}
	intParam := func(name string, dst *int64) error {
		s := q.Get(name)
		if s == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return badRequest("%s %q: not an integer", name, s)
		}
		*dst = n
		return nil
	}
	var part, limit, maxBytes int64 = -1, int64(p.limit), int64(p.maxBytes)
	for name, dst := range map[string]*int64{"partition": &part, "limit": &limit, "maxBytes": &maxBytes, "offset": &p.offset} {
		if err := intParam(name, dst); err != nil {
			return p, err
		}
	}
	if part < -1 || part > 1<<31-1 {
		return p, badRequest("partition %d: want -1 (all) or a partition number", part)
	}
	p.partition = int32(part)
	if limit < 1 {
		return p, badRequest("limit %d: want 1 or more", limit)
	}
	p.limit = int(min(limit, int64(c.opts.MaxRecords)))
	if maxBytes < 1 {
		return p, badRequest("maxBytes %d: want 1 or more", maxBytes)
	}
	p.maxBytes = int(min(maxBytes, int64(c.opts.MaxBytes)))
	if s := q.Get("start"); s != "" {
		p.start = s
	}
	switch p.start {
	case "oldest", "newest":
	case "offset":
		if q.Get("offset") == "" || p.offset < 0 {
			return p, badRequest("start=offset needs offset=N with N >= 0")
		}
	case "time":
		s := q.Get("time")
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
			p.timeMs = ms
		} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			p.timeMs = t.UnixMilli()
		} else {
			return p, badRequest("time %q: want milliseconds since the epoch or RFC 3339 (2026-12-04T15:04:05Z)", s)
		}
	default:
		return p, badRequest("start %q: want oldest, newest, offset or time", p.start)
	}
	if f := q.Get("filter"); f != "" {
		if len(f) > maxFilterLen {
			return p, badRequest("filter longer than %d bytes", maxFilterLen)
		}
		p.filter = bytes.ToLower([]byte(f))
	}
	return p, nil
}

// cursor is one partition's progress. Forward scans read [pos, end); a scan from the
// newest reads windows backwards: [lo, hi), then the window before it, twice as large,
// until it has limit matches or reaches the log start.
type cursor struct {
	partition int32
	leader    int32
	logStart  int64
	end       int64 // the high watermark listed at the start: never read past it
	begin     int64 // where the scan began, for the answer
	pos       int64
	lo, hi    int64 // the window (from the newest)
	matches   int
	done      bool
	err       string
}

// browser holds one browse call's state: the cursors and the best records so far.
type browser struct {
	c        *Console
	topic    string
	topicID  [16]byte
	p        browseParams
	newest   bool
	multi    bool // all partitions: order by timestamp
	cursors  []*cursor
	kept     []recordView // at most p.limit, the best by order
	scanned  int64
	scanB    int64
	stopped  string
	decomp   kgo.Decompressor
	maxFetch int64
}

func (c *Console) browse(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	p, err := c.parseBrowse(r.URL.Query())
	if err != nil {
		return nil, err
	}
	t, err := c.topicDetail(ctx, name)
	if err != nil {
		return nil, err
	}
	b := &browser{c: c, topic: name, topicID: t.ID, p: p, newest: p.start == "newest", multi: p.partition < 0,
		decomp: kgo.DefaultDecompressor(), maxFetch: c.opts.MaxScanBytes}
	if err := b.init(ctx, t); err != nil {
		return nil, err
	}
	b.run(ctx)
	return b.result(), nil
}

func (b *browser) init(ctx context.Context, t kadm.TopicDetail) error {
	var parts []kadm.PartitionDetail
	for _, pd := range t.Partitions.Sorted() {
		if b.p.partition < 0 || pd.Partition == b.p.partition {
			parts = append(parts, pd)
		}
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partition %d: %w", b.topic, b.p.partition, kerr.UnknownTopicOrPartition)
	}
	adm := b.c.adm
	starts, err := adm.ListStartOffsets(ctx, b.topic)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", firstShardErr(err))
	}
	ends, err := adm.ListEndOffsets(ctx, b.topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", firstShardErr(err))
	}
	var byTime kadm.ListedOffsets
	if b.p.start == "time" {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, b.p.timeMs, b.topic); err != nil {
			return fmt.Errorf("list offsets after %d: %w", b.p.timeMs, firstShardErr(err))
		}
	}
	for _, pd := range parts {
		cu := &cursor{partition: pd.Partition, leader: pd.Leader, logStart: -1, end: -1}
		st, ok1 := starts.Lookup(b.topic, pd.Partition)
		en, ok2 := ends.Lookup(b.topic, pd.Partition)
		switch {
		case !ok1 || !ok2:
			cu.err, cu.done = "no offsets listed for this partition", true
		case st.Err != nil:
			cu.err, cu.done = st.Err.Error(), true
		case en.Err != nil:
			cu.err, cu.done = en.Err.Error(), true
		case pd.Leader < 0:
			cu.err, cu.done = "no leader", true
		}
		if cu.done {
			b.cursors = append(b.cursors, cu)
			continue
		}
		cu.logStart, cu.end = st.Offset, en.Offset
		switch b.p.start {
		case "oldest":
			cu.pos = cu.logStart
		case "newest":
			cu.lo, cu.hi = max(cu.logStart, cu.end-int64(b.p.limit)), cu.end
			cu.pos = cu.lo
		case "offset":
			cu.pos = max(cu.logStart, min(b.p.offset, cu.end))
		case "time":
			cu.pos = cu.end // no record at or after the time
			if o, ok := byTime.Lookup(b.topic, pd.Partition); ok && o.Err == nil && o.Offset >= 0 {
				cu.pos = max(cu.logStart, min(o.Offset, cu.end))
			}
		}
		cu.begin = cu.pos
		b.settle(cu)
		b.cursors = append(b.cursors, cu)
	}
	return nil
}

// settle marks a cursor done, or moves it to its next window, once its window is read.
func (b *browser) settle(cu *cursor) {
	if cu.done {
		return
	}
	if b.newest {
		if cu.pos < cu.hi {
			return
		}
		if cu.matches >= b.p.limit || cu.lo <= cu.logStart {
			cu.done = true
			return
		}
		size := max(2*(cu.hi-cu.lo), int64(b.p.limit))
		cu.hi = cu.lo
		cu.lo = max(cu.logStart, cu.lo-size)
		cu.pos = cu.lo
		cu.begin = cu.lo
		return
	}
	if cu.pos >= cu.end || cu.matches >= b.p.limit {
		cu.done = true
	}
}

// run fetches round after round, one request per leader, until every cursor is done or
// a budget is spent.
func (b *browser) run(ctx context.Context) {
	for {
		byLeader := map[int32][]*cursor{}
		for _, cu := range b.cursors {
			if !cu.done {
				byLeader[cu.leader] = append(byLeader[cu.leader], cu)
			}
		}
		if len(byLeader) == 0 {
			b.stop(stopEnd)
			return
		}
		for _, leader := range slices.Sorted(maps.Keys(byLeader)) {
			if b.scanB >= b.maxFetch {
				b.stop(stopScan)
				return
			}
			if err := b.fetch(ctx, leader, byLeader[leader]); err != nil {
				if ctx.Err() != nil {
					b.stop(stopDeadline)
					return
				}
				for _, cu := range byLeader[leader] {
					cu.err, cu.done = err.Error(), true
				}
			}
		}
	}
}

func (b *browser) stop(why string) {
	if b.stopped == "" {
		b.stopped = why
	}
}

// fetch reads one round from a leader for its cursors.
func (b *browser) fetch(ctx context.Context, leader int32, cs []*cursor) error {
	budget := b.maxFetch - b.scanB
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0 // everything read is below the high watermark: never wait
	req.MinBytes = 0
	req.MaxBytes = int32(min(budget, int64(len(cs))*partitionFetchBytes, 1<<30))
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = b.topic, b.topicID
	for _, cu := range cs {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = cu.partition
		rp.FetchOffset = cu.pos
		rp.PartitionMaxBytes = int32(min(budget, partitionFetchBytes))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.c.cl.Broker(int(leader)))
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	byPart := map[int32]*cursor{}
	for _, cu := range cs {
		byPart[cu.partition] = cu
	}
	seen := map[int32]bool{}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			rp := &resp.Topics[i].Partitions[j]
			cu := byPart[rp.Partition]
			if cu == nil || seen[rp.Partition] {
				continue
			}
			seen[rp.Partition] = true
			b.take(cu, rp)
		}
	}
	for _, cu := range cs {
		if !seen[cu.partition] && !cu.done {
			cu.err, cu.done = "the leader did not answer for this partition", true
		}
	}
	return nil
}

// take processes one partition's fetched batches.
func (b *browser) take(cu *cursor, rp *kmsg.FetchResponseTopicPartition) {
	b.scanB += int64(len(rp.RecordBatches))
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		if err == kerr.OffsetOutOfRange && rp.LogStartOffset > cu.pos {
			// Retention removed what was listed: go on from the new log start.
			cu.logStart, cu.pos = rp.LogStartOffset, rp.LogStartOffset
			cu.lo = max(cu.lo, cu.logStart)
			b.settle(cu)
			return
		}
		cu.err, cu.done = err.Error(), true
		return
	}
	limit := cu.end
	if b.newest {
		limit = cu.hi
	}
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: cu.pos, Topic: b.topic, Partition: cu.partition},
		rp, b.decomp, nil)
	for _, rec := range fp.Records {
		if rec.Offset >= limit {
			break
		}
		b.scanned++
		if !b.matches(rec) {
			continue
		}
		cu.matches++
		b.keep(b.view(rec))
		if !b.newest && cu.matches >= b.p.limit {
			// A forward scan needs no more of this partition than its limit: the rest of
			// the batch is not looked at (nor counted as scanned).
			next = rec.Offset + 1
			break
		}
	}
	if fp.Err != nil && len(fp.Records) == 0 {
		cu.err, cu.done = fp.Err.Error(), true
		return
	}
	if next <= cu.pos {
		// No progress: nothing more below the high watermark can be read here.
		cu.done = true
		return
	}
	cu.pos = min(next, limit)
	b.settle(cu)
}

func (b *browser) matches(r *kgo.Record) bool {
	f := b.p.filter
	if len(f) == 0 {
		return true
	}
	if containsFold(r.Key, f) || containsFold(r.Value, f) {
		return true
	}
	for _, h := range r.Headers {
		if containsFold([]byte(h.Key), f) || containsFold(h.Value, f) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-cased needle, ignoring ASCII and
// Unicode case.
func containsFold(s, lowerNeedle []byte) bool {
	if len(s) < len(lowerNeedle) {
		return false
	}
	return bytes.Contains(bytes.ToLower(s), lowerNeedle)
}

// view copies what is kept of a record, each part cut to maxBytes, so a kept record
// does not pin the fetch buffer it came from.
func (b *browser) view(r *kgo.Record) recordView {
	left := b.p.maxBytes
	cut := func(s []byte) ([]byte, bool) {
		if s == nil {
			return nil, false
		}
		n := min(len(s), left)
		left -= n
		return bytes.Clone(s[:n]), n < len(s)
	}
	v := recordView{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), LeaderEpoch: r.LeaderEpoch,
		KeySize: len(r.Key), ValueSize: len(r.Value), Headers: []headerView{}, TimestampType: "create"}
	if r.Attrs.TimestampType() == 1 {
		v.TimestampType = "log-append"
	}
	var t1, t2 bool
	v.Key, t1 = cut(r.Key)
	v.Value, t2 = cut(r.Value)
	v.Truncated = t1 || t2
	for _, h := range r.Headers {
		hv, t := cut(h.Value)
		if hv == nil && h.Value != nil {
			hv = []byte{}
		}
		v.Headers = append(v.Headers, headerView{Key: h.Key, Value: hv})
		v.Truncated = v.Truncated || t
	}
	v.size = len(v.Key) + len(v.Value)
	for _, h := range v.Headers {
		v.size += len(h.Key) + len(h.Value)
	}
	return v
}

// less orders records as the answer shows them, oldest first.
func (b *browser) less(x, y *recordView) int {
	if b.multi {
		if c := cmp.Compare(x.Timestamp, y.Timestamp); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Partition, y.Partition); c != 0 {
			return c
		}
	}
	return cmp.Compare(x.Offset, y.Offset)
}

// keep adds a matching record and drops the worst beyond the limit: forward scans keep
// the oldest, scans from the newest the newest. A dropped record can never come back,
// since limit better ones are kept, so memory stays at limit records.
func (b *browser) keep(v recordView) {
	b.kept = append(b.kept, v)
	if len(b.kept) <= 2*b.p.limit {
		return
	}
	b.trim()
}

func (b *browser) trim() {
	slices.SortFunc(b.kept, func(x, y recordView) int { return b.less(&x, &y) })
	if len(b.kept) > b.p.limit {
		if b.newest {
			b.kept = slices.Delete(b.kept, 0, len(b.kept)-b.p.limit)
		} else {
			b.kept = b.kept[:b.p.limit:b.p.limit]
		}
		b.stop(stopLimit)
	}
}

func (b *browser) result() browseResult {
	b.trim()
	if b.newest {
		slices.Reverse(b.kept)
	}
	if len(b.kept) == b.p.limit && b.stopped == stopEnd {
		b.stopped = stopLimit
	}
	// The byte budget, in the order shown: the record that crosses it is cut to what is
	// left, and the rest dropped.
	left := b.p.maxBytes
	for i := range b.kept {
		v := &b.kept[i]
		if v.size <= left {
			left -= v.size
			continue
		}
		if i == 0 || left > 0 {
			shrink(v, left)
			b.kept = b.kept[:i+1]
		} else {
			b.kept = b.kept[:i]
		}
		b.stopped = stopBytes
		break
	}
	res := browseResult{Topic: b.topic, Records: b.kept, Scanned: b.scanned, ScannedBytes: b.scanB, StoppedBy: b.stopped,
		Limit: b.p.limit, MaxBytes: b.p.maxBytes, Partitions: []cursorView{}}
	if res.Records == nil {
		res.Records = []recordView{}
	}
	for _, cu := range b.cursors {
		res.Partitions = append(res.Partitions, cursorView{Partition: cu.partition, LogStartOffset: cu.logStart,
			HighWatermark: cu.end, StartOffset: cu.begin, NextOffset: cu.pos, Error: cu.err})
	}
	return res
}

// shrink cuts a record's key, value and headers to left bytes in all.
func shrink(v *recordView, left int) {
	cut := func(s []byte) []byte {
		if s == nil {
			return nil
		}
		n := min(len(s), left)
		left -= n
		return s[:n]
	}
	v.Key = cut(v.Key)
	v.Value = cut(v.Value)
	for i := range v.Headers {
		v.Headers[i].Value = cut(v.Headers[i].Value)
	}
	v.Truncated = true
}
