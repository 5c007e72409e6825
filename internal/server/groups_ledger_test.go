package server_test

// Shared pieces of the consumer-group tests: a ledger of what every member consumed
// (checked by record content), a paced background producer, and a helper that waits
// for a condition on the ledger instead of sleeping.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumed is one delivery of a record to a group member.
type consumed struct {
	member    string
	partition int32
	offset    int64
	value     string
	// committed is whether the member's commit covering this record succeeded.
	// A record may be delivered again only if its other deliveries were not
	// committed: that is the whole allowance for duplicates.
	committed bool
}

// ledger records every delivery; it is safe for concurrent members.
type ledger struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every add
	all     []consumed
	byValue map[string][]consumed
	members map[string]int
}

func newLedger() *ledger {
	return &ledger{changed: make(chan struct{}), byValue: map[string][]consumed{}, members: map[string]int{}}
}

func (l *ledger) add(cs ...consumed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		l.all = append(l.all, c)
		l.byValue[c.value] = append(l.byValue[c.value], c)
		l.members[c.member]++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// addFetches records the records of one poll for member, with the outcome of the
// commit that followed it.
func (l *ledger) addFetches(member string, fs kgo.Fetches, committed bool) {
	var cs []consumed
	fs.EachRecord(func(r *kgo.Record) {
		cs = append(cs, consumed{member: member, partition: r.Partition, offset: r.Offset, value: string(r.Value), committed: committed})
	})
	if len(cs) > 0 {
		l.add(cs...)
	}
}

// distinctCommitted is how many different values have a committed delivery.
func (l *ledger) distinctCommittedLocked() int {
	n := 0
	for _, cs := range l.byValue {
		for _, c := range cs {
			if c.committed {
				n++
				break
			}
		}
	}
	return n
}

// waitFor blocks until cond holds on the ledger (checked after every add) or the
// timeout passes; it reports which.
func (l *ledger) waitFor(t *testing.T, what string, timeout time.Duration, cond func(l *ledger) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok := cond(l)
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			l.mu.Lock()
			got := l.distinctCommittedLocked()
			l.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s (%d distinct committed values so far)", timeout, what, got)
		}
	}
}

// waitCommitted waits until at least n distinct values have a committed delivery.
func (l *ledger) waitCommitted(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	l.waitFor(t, fmt.Sprintf("%d committed records", n), timeout, func(l *ledger) bool { return l.distinctCommittedLocked() >= n })
}

// waitAll waits until every value in want has a committed delivery.
func (l *ledger) waitAll(t *testing.T, want []string, timeout time.Duration) {
	t.Helper()
	l.waitFor(t, fmt.Sprintf("all %d records", len(want)), timeout, func(l *ledger) bool {
		for _, v := range want {
			ok := false
			for _, c := range l.byValue[v] {
				ok = ok || c.committed
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

// check asserts the exactly-once invariant by content: every wanted value was
// delivered, no value outside want was delivered, each value's deliveries all came
// from the one (partition, offset) it was produced at, and no value was delivered
// and committed twice: a redelivery is allowed only of a delivery whose commit
// failed. It returns how many such redeliveries there were.
func (l *ledger) check(t *testing.T, want []produced) (redelivered int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	wantAt := map[string]produced{}
	for _, p := range want {
		wantAt[p.value] = p
	}
	var problems []string
	for v, cs := range l.byValue {
		p, ok := wantAt[v]
		if !ok {
			problems = append(problems, fmt.Sprintf("value %q consumed but never produced", v))
			continue
		}
		commits := 0
		for _, c := range cs {
			if c.partition != p.partition || c.offset != p.offset {
				problems = append(problems, fmt.Sprintf("value %q produced at %d/%d but consumed at %d/%d", v, p.partition, p.offset, c.partition, c.offset))
			}
			if c.committed {
				commits++
			}
		}
		if commits > 1 {
			problems = append(problems, fmt.Sprintf("value %q delivered and committed %d times: %+v", v, commits, cs))
		}
		redelivered += len(cs) - 1
	}
	for _, p := range want {
		if len(l.byValue[p.value]) == 0 {
			problems = append(problems, fmt.Sprintf("value %q (%d/%d) never consumed", p.value, p.partition, p.offset))
		}
	}
	sort.Strings(problems)
	if len(problems) > 10 {
		problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
	}
	if len(problems) > 0 {
		t.Errorf("exactly-once violated:\n%s", strings.Join(problems, "\n"))
	}
	return redelivered
}

// perMember is how many deliveries each member had.
func (l *ledger) perMember() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.members {
		out[k] = v
	}
	return out
}

// produced is one acknowledged record.
type produced struct {
	partition int32
	offset    int64
	value     string
}

func values(ps []produced) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.value
	}
	return out
}

// produceN synchronously produces n records with values prefix-i, round robin over
// the topic's partitions, and returns them as acknowledged.
func produceN(t *testing.T, cl *kgo.Client, topic string, partitions int32, prefix string, n int) []produced {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(fmt.Sprintf("%s-%05d", prefix, i))}
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", prefix, err)
	}
	out := make([]produced, n)
	for i, r := range rs {
		out[i] = produced{partition: r.Partition, offset: r.Offset, value: string(r.Value)}
	}
	return out
}

// producerClient is a client whose records go to the partition they name.
func (n *node) producerClient() *kgo.Client {
	return n.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
}

// backgroundProducer produces batches of records until stop is called, so that
// membership changes happen while there is always more to consume. stop returns
// everything acknowledged.
func backgroundProducer(t *testing.T, cl *kgo.Client, topic string, partitions int32, prefix string) (stop func() []produced) {
	t.Helper()
	quit := make(chan struct{})
	done := make(chan struct{})
	var out []produced
	var failed error
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond) // paces production; nothing waits on it
		defer tick.Stop()
		for b := 0; ; b++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			rs := make([]*kgo.Record, 12)
			for i := range rs {
				rs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(fmt.Sprintf("%s-%04d-%02d", prefix, b, i))}
			}
			if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
				failed = err
				return
			}
			for _, r := range rs {
				out = append(out, produced{partition: r.Partition, offset: r.Offset, value: string(r.Value)})
			}
		}
	}()
	return func() []produced {
		close(quit)
		<-done
		if failed != nil {
			t.Fatalf("background produce: %v", failed)
		}
		return out
	}
}

// checkCommittedAtEnd asserts the group's committed offset of every partition of
// topic is the partition's log end offset: everything consumed was committed.
func checkCommittedAtEnd(t *testing.T, adm *kadm.Client, group, topic string) {
	t.Helper()
	ctx := ctxT(t)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := offs.Lookup(topic, e.Partition)
		if !ok || o.At != e.Offset {
			t.Errorf("group %s partition %d: committed %v (found %v), log end %d", group, e.Partition, o.At, ok, e.Offset)
		}
	})
}
