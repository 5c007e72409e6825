package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// nemesis carries out a schedule's steps on the nodes of a run.
type nemesis struct {
	cfg   Config
	nodes []*Node
	disks map[int]*Disk
	fw    *Firewall
	rec   *Recorder
	// proxies are the CONTROLLER links of a cluster run with slow links,
	// by node id.
	proxies map[int]*Proxy
}

// settle is how long the nemesis waits after a kill before it reads the
// history to find what clients observed: acknowledgements and fetched
// records already in a client's socket when the node died are delivered
// within it. (A record observed later than that is reported as taken by the
// tear, not as lost by the broker.)
const settle = 300 * time.Millisecond

// hold waits d unless ctx ends.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (n *nemesis) node(id int) *Node { return n.nodes[id-1] }

// do injects one fault, holds it and heals it; the Fault says what was done
// and when.
func (n *nemesis) do(ctx context.Context, s Step) Fault {
	f := Fault{Kind: s.Kind, Nodes: s.Nodes, Start: n.rec.Now()}
	var err error
	if len(n.nodes) > 1 && (s.Kind == Kill || s.Kind == Pause || s.Kind == Slow) {
		f.Nodes = []int{n.target(ctx, s, &f)}
		f.Start = n.rec.Now()
	}
	if isRoleFault(s.Kind) {
		f.Nodes = []int{n.roleTarget(ctx, s, &f)}
		f.Start = n.rec.Now()
	}
	switch s.Kind {
	case Kill:
		nd := n.node(f.Nodes[0])
		if err = nd.Kill(); err == nil {
			hold(ctx, s.Hold)
			err = nd.Start(60 * time.Second)
		}
	case Pause:
		nd := n.node(f.Nodes[0])
		if err = nd.Pause(); err == nil {
			hold(ctx, s.Hold)
			err = nd.Resume()
		}
	case DiskFull:
		err = n.diskFull(ctx, s, &f)
	case TornTail, TornAcked:
		err = n.torn(ctx, s, &f)
	case Partition:
		mode := Drop
		if s.Pick%2 == 1 {
			mode = Reset
		}
		if len(s.Nodes) == 1 {
			// A lone node cut off: half the time the controller.
			f.Nodes = []int{n.target(ctx, s, &f)}
		}
		var side, rest []Endpoint
		var sideIDs, restIDs []int
		for _, nd := range n.nodes {
			e := Endpoint{Host: nd.Host, GID: nd.GID}
			if containsInt(f.Nodes, nd.ID) {
				side, sideIDs = append(side, e), append(sideIDs, nd.ID)
			} else {
				rest, restIDs = append(rest, e), append(restIDs, nd.ID)
			}
		}
		f.Detail = strings.TrimPrefix(fmt.Sprintf("%s; %s nodes %v from %v", f.Detail, mode, sideIDs, restIDs), "; ")
		f.Start = n.rec.Now()
		if err = n.fw.CutEndpoints(side, rest, mode); err == nil {
			hold(ctx, s.Hold)
			err = n.fw.Heal()
		}
	case Slow:
		err = n.slow(ctx, s, &f)
	case LeaderKill, LeaderPause, CoordKill:
		err = n.roleFault(ctx, s, &f)
	case Rolling:
		err = n.rolling(ctx, s, &f)
	default:
		err = fmt.Errorf("unknown fault %q", s.Kind)
	}
	if err != nil {
		f.Err = err.Error()
	}
	f.End = n.rec.Now()
	return f
}

// target picks the node a kill, pause, slow link or lone cut hits: half
// the time (by a bit of the step's pick) the controller, as Metadata names it at the
// time, which the schedule cannot know; otherwise the scheduled node.
func (n *nemesis) target(ctx context.Context, s Step, f *Fault) int {
	if (s.Pick>>4)%2 == 0 {
		if id := controllerID(ctx, n.nodes); id >= 1 && id <= len(n.nodes) {
			f.Detail = fmt.Sprintf("node %d, the controller", id)
			return id
		}
		f.Detail = "no controller known"
	}
	return s.Nodes[0]
}

// slowDelays are the one-way delays a slow link gets, chosen by the step's
// pick: about raft's heartbeat, then past the election timeout.
var slowDelays = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 600 * time.Millisecond, 1500 * time.Millisecond}

// slow delays every link into the node's CONTROLLER listener (its proxy)
// for the hold.
func (n *nemesis) slow(ctx context.Context, s Step, f *Fault) error {
	p := n.proxies[f.Nodes[0]]
	if p == nil {
		return errors.New("slow links need a cluster run, whose CONTROLLER listeners are reached through the link proxies")
	}
	d := slowDelays[(s.Pick>>8)%uint64(len(slowDelays))]
	f.Detail = strings.TrimPrefix(fmt.Sprintf("%s; %v each way on the links to node %d's controller listener", f.Detail, d, f.Nodes[0]), "; ")
	p.SetDelay(d)
	hold(ctx, s.Hold)
	p.SetDelay(0)
	return nil
}

// diskFull fills a node's tmpfs, holds, frees it and restarts the node if it
// halted meanwhile.
func (n *nemesis) diskFull(ctx context.Context, s Step, f *Fault) error {
	nd, d := n.node(s.Nodes[0]), n.disks[s.Nodes[0]]
	if d == nil {
		return fmt.Errorf("node %d has no tmpfs disk", nd.ID)
	}
	taken, err := d.Fill()
	f.Detail = fmt.Sprintf("filled %d of %d bytes (%d used)", taken, d.Size, d.Used())
	if err != nil {
		_ = d.Free()
		return err
	}
	hold(ctx, s.Hold)
	if err := d.Free(); err != nil {
		return err
	}
	if !nd.Running() {
		f.Detail += "; the node had halted: restarted"
		return nd.Start(60 * time.Second)
	}
	return nil
}

// torn kills a node, tears the active segment of one partition (chosen by
// the step's pick) and restarts it after the hold. The tear takes the
// partition's only copy with replication factor 1; with more, the checker
// does not yet tell one replica's loss from the partition's.
func (n *nemesis) torn(ctx context.Context, s Step, f *Fault) error {
	nd := n.node(s.Nodes[0])
	p := int32(s.Pick % uint64(n.cfg.Workload.Partitions))
	if len(n.nodes) > 1 {
		// In a cluster the partition lives on some nodes only: tear the
		// first of them from the scheduled node on.
		for i := range n.nodes {
			c := n.nodes[(s.Nodes[0]-1+i)%len(n.nodes)]
			if _, err := os.Stat(filepath.Join(c.DataDir, fmt.Sprintf("%s-%d", n.cfg.Workload.Topic, p))); err == nil {
				nd = c
				break
			}
		}
		f.Nodes = []int{nd.ID}
	}
	if err := nd.Kill(); err != nil {
		return err
	}
	hold(ctx, settle)
	observed := n.observed(p)
	seg, err := ActiveSegment(nd.DataDir, n.cfg.Workload.Topic, p)
	var t Torn
	if err == nil {
		if s.Kind == TornAcked {
			t, err = TearAcked(seg, observed, s.Pick)
		} else {
			t, err = TearTail(seg, observed, s.Pick)
		}
	}
	t.Node, t.Partition = nd.ID, p
	f.Torn = &t
	f.Detail = fmt.Sprintf("p%d %s %d bytes at %d (last observed offset %d, torn from offset %d)", p, t.Mode, t.Bytes, t.Cut, observed, t.FromOffset)
	hold(ctx, max(0, s.Hold-settle))
	return errors.Join(err, nd.Start(60*time.Second))
}

// observed is the highest offset of partition p a client has seen
// acknowledged or read (-1: none).
func (n *nemesis) observed(p int32) int64 {
	o := int64(-1)
	n.rec.Do(func(h *History) {
		for _, w := range h.Writes {
			if w.OK() && w.Partition == p {
				o = max(o, w.Offset)
			}
		}
		for _, pl := range h.Polls {
			if pl.Partition == p {
				for _, r := range pl.Records {
					o = max(o, r.Offset)
				}
			}
		}
	})
	return o
}

// healAll undoes whatever a fault may have left (a cut, a full disk, a
// paused or halted node) before the final read; it returns what it could
// not heal.
func (n *nemesis) healAll() []string {
	var notes []string
	if InSandbox() {
		if err := n.fw.Heal(); err != nil {
			notes = append(notes, "heal the firewall: "+err.Error())
		}
	}
	for _, p := range n.proxies {
		p.SetDelay(0)
	}
	for id, d := range n.disks {
		if err := d.Free(); err != nil {
			notes = append(notes, fmt.Sprintf("free node %d's disk: %v", id, err))
		}
	}
	for _, nd := range n.nodes {
		_ = nd.Resume()
		if !nd.Running() {
			notes = append(notes, fmt.Sprintf("node %d was not running after the workload: restarted", nd.ID))
			if err := nd.Start(60 * time.Second); err != nil {
				notes = append(notes, err.Error())
			}
		}
	}
	return notes
}

// teardown stops every node (killing what will not stop) and unmounts the
// disks; it runs on every return of Run.
func (n *nemesis) teardown(res *Result) {
	defer func() {
		for _, p := range n.proxies {
			p.Close()
		}
	}()
	for _, nd := range n.nodes {
		if nd.Running() {
			if err := nd.Stop(20 * time.Second); err != nil {
				res.Notes = append(res.Notes, err.Error())
			}
		}
	}
	for _, d := range n.disks {
		if err := d.Unmount(); err != nil {
			res.Notes = append(res.Notes, "unmount: "+err.Error())
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
