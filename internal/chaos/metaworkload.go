package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The metadata workload runs beside the data workload on a cluster: a client
// creates topics through randomly chosen nodes (each node's client knows only
// that node and finds the controller through it, retrying as kadm does) and
// deletes some of those it created, recording every outcome; after the heal
// every node's Metadata is read, and the checker requires that every node
// holds every acknowledged creation, none holds an acknowledged deletion, and
// all agree on each topic's ID and partition count.

// MetaTopicPrefix names the metadata workload's topics.
const MetaTopicPrefix = "meta-"

// metaOpTimeout bounds one create or delete, retries included.
const metaOpTimeout = 8 * time.Second

// metaWorkload issues the topic changes of a run.
type metaWorkload struct {
	rate  float64 // operations per second
	seed  uint64
	nodes []*Node
	rec   *Recorder
	wg    sync.WaitGroup
}

func (mw *metaWorkload) start(ctx context.Context) error {
	if mw.rate <= 0 {
		return nil
	}
	var cls []*kgo.Client
	for _, n := range mw.nodes {
		cl, err := kgo.NewClient(clientOpts([]string{n.Addr()})...)
		if err != nil {
			for _, c := range cls {
				c.Close()
			}
			return err
		}
		cls = append(cls, cl)
	}
	mw.wg.Add(1)
	go func() {
		defer mw.wg.Done()
		defer func() {
			for _, c := range cls {
				c.Close()
			}
		}()
		mw.run(ctx, cls)
	}()
	return nil
}

func (mw *metaWorkload) stop() { mw.wg.Wait() }

// run creates and deletes topics one at a time at the rate until ctx ends:
// a third of the operations delete a topic whose creation was
// acknowledged.
func (mw *metaWorkload) run(ctx context.Context, cls []*kgo.Client) {
	rng := rand.New(rand.NewPCG(mw.seed, 0x6d657461)) // "meta"
	every := time.Duration(float64(time.Second) / mw.rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var live []string
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		i := rng.IntN(len(cls))
		op := MetaOp{Node: mw.nodes[i].ID, Invoke: mw.rec.Now()}
		octx, cancel := context.WithTimeout(ctx, metaOpTimeout)
		adm := kadm.NewClient(cls[i])
		if len(live) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(live))
			op.Op, op.Topic = "delete", live[j]
			live = append(live[:j], live[j+1:]...)
			r, err := adm.DeleteTopic(octx, op.Topic)
			if err == nil {
				err = r.Err
			}
			if err != nil {
				op.Err = err.Error()
			}
		} else {
			op.Op, op.Topic, op.Partitions = "create", fmt.Sprintf("%s%d", MetaTopicPrefix, seq), int32(1+rng.IntN(3))
			r, err := adm.CreateTopic(octx, op.Partitions, 1, nil, op.Topic)
			if err == nil {
				err = r.Err
			}
			if err != nil {
				op.Err = err.Error()
			} else {
				op.TopicID = r.ID.String()
				live = append(live, op.Topic)
			}
		}
		cancel()
		if ctx.Err() != nil && op.Err != "" {
			// Cut short by the end of the run: the outcome is unknown
			// and says nothing about the cluster's availability.
			op.Err = "run ended: " + op.Err
		}
		op.Complete = mw.rec.Now()
		mw.rec.Do(func(h *History) { h.MetaOps = append(h.MetaOps, op) })
	}
}

// metaViews reads every node's view of the metadata workload's topics after
// the heal, again until every node holds every acknowledged creation and no
// acknowledged deletion and all agree (a node catching up on the quorum's
// log may lag a moment), or ctx ends; the last views are recorded.
func metaViews(ctx context.Context, rec *Recorder, nodes []*Node) error {
	want := map[string]bool{}
	rec.Do(func(h *History) { want = expectedTopics(h.MetaOps) })
	var views []TopicView
	var errs []error
	for {
		views, errs = views[:0], errs[:0]
		for _, n := range nodes {
			v, err := nodeTopics(ctx, n)
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", n.ID, err))
				continue
			}
			views = append(views, v...)
		}
		if len(errs) == 0 && viewsSettled(views, want, len(nodes)) {
			break
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			errs = append(errs, fmt.Errorf("node views did not settle: %w", ctx.Err()))
		case <-t.C:
			continue
		}
		break
	}
	rec.Do(func(h *History) {
		h.MetaViews = append(h.MetaViews, views...)
		for _, n := range nodes {
			h.MetaViewNodes = append(h.MetaViewNodes, n.ID)
		}
	})
	return errors.Join(errs...)
}

// expectedTopics maps each topic whose creation was acknowledged to whether
// it must exist after the heal: true unless a deletion of it was attempted
// (a failed one may have happened), false once that was acknowledged.
// Topics with an attempted but unacknowledged deletion are left out.
func expectedTopics(ops []MetaOp) map[string]bool {
	want := map[string]bool{}
	deleting := map[string]bool{}
	for _, op := range ops {
		switch {
		case op.Op == "create" && op.Err == "":
			want[op.Topic] = true
		case op.Op == "delete" && op.Err == "":
			want[op.Topic] = false
		case op.Op == "delete":
			deleting[op.Topic] = true
		}
	}
	for t := range deleting {
		if want[t] {
			delete(want, t)
		}
	}
	return want
}

// viewsSettled: every node holds every topic that must exist and none that
// must not, and every topic any node holds is held alike by all.
func viewsSettled(views []TopicView, want map[string]bool, nodes int) bool {
	by := map[string][]TopicView{}
	for _, v := range views {
		by[v.Topic] = append(by[v.Topic], v)
	}
	for t, must := range want {
		if must && len(by[t]) != nodes || !must && len(by[t]) != 0 {
			return false
		}
	}
	for _, vs := range by {
		if len(vs) != nodes {
			return false
		}
		for _, v := range vs[1:] {
			if v.TopicID != vs[0].TopicID || v.Partitions != vs[0].Partitions {
				return false
			}
		}
	}
	return true
}

// nodeTopics is one node's own Metadata answer for the workload's topics.
func nodeTopics(ctx context.Context, n *Node) ([]TopicView, error) {
	cl, err := kgo.NewClient(clientOpts([]string{n.Addr()})...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(rctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return nil, err
	}
	var out []TopicView
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic == nil || !strings.HasPrefix(*t.Topic, MetaTopicPrefix) {
			continue
		}
		if e := kerr.ErrorForCode(t.ErrorCode); e != nil {
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, e)
		}
		out = append(out, TopicView{Node: n.ID, Topic: *t.Topic, TopicID: kadm.TopicID(t.TopicID).String(), Partitions: int32(len(t.Partitions))})
	}
	return out, nil
}

// becameLeader is etcd raft's line when a node wins an election.
var becameLeader = regexp.MustCompile(`^time=(\S+) .*raft: (\d+) became leader at term (\d+)`)

// logLeaderClaims reads the "became leader at term" lines of a node's log
// (every run of it) as claims of the quorum's leadership.
func logLeaderClaims(path string, start time.Time) ([]LeaderClaim, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LeaderClaim
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := becameLeader.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		t, err1 := time.Parse(time.RFC3339Nano, m[1])
		id, err2 := strconv.Atoi(m[2])
		term, err3 := strconv.ParseInt(m[3], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		out = append(out, LeaderClaim{Node: id, Leader: id, Epoch: term, Time: t.Sub(start), Source: "log"})
	}
	return out, sc.Err()
}
