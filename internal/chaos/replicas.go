package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vltava/vltava/internal/batch"
)

// The final read goes through the Kafka API, and a client follows each
// partition to its leader whichever node it asks first: it reads the
// leader's copy only. Every replica's copy is read from the node's data dir
// once the nodes have stopped cleanly: each segment of each of the
// workload's partitions the node holds, batch by batch. The checker then
// requires every replica to hold, below the high watermark the final read
// went up to, exactly what the final read found (divergent-replica).

// maxReplicaBatch bounds one batch's decompressed size in the replica read.
const maxReplicaBatch = 64 << 20

// ReplicaLog is one node's copy of a partition as its segment files hold it
// after the run: offsets [Start, End), and Err when a segment could not be
// read to its end (the records before it are recorded).
type ReplicaLog struct {
	Node      int    `json:"node"`
	Partition int32  `json:"p"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	Err       string `json:"err,omitempty"`
}

// readReplicas reads every copy of the topic's partitions from the stopped
// nodes' data dirs into the history. A node without a partition's directory
// holds no copy of it.
func readReplicas(rec *Recorder, nodes []*Node, topic string, partitions int32) error {
	var errs []error
	for _, n := range nodes {
		for p := range partitions {
			dir := filepath.Join(n.DataDir, fmt.Sprintf("%s-%d", topic, p))
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				continue
			}
			l, reads, sums, err := readReplica(dir)
			l.Node, l.Partition = n.ID, p
			for i := range reads {
				reads[i].Node, reads[i].Partition = n.ID, p
			}
			for i := range sums {
				sums[i].Node, sums[i].Partition = n.ID, p
			}
			if err != nil {
				l.Err = err.Error()
				errs = append(errs, fmt.Errorf("node %d p%d: %w", n.ID, p, err))
			}
			rec.Do(func(h *History) {
				h.Replicas = append(h.Replicas, l)
				h.ReplicaReads = append(h.ReplicaReads, reads...)
				h.ReplicaBatches = append(h.ReplicaBatches, sums...)
			})
		}
	}
	return errors.Join(errs...)
}

// readReplica reads the segments of one partition directory in offset
// order: its records and its batches.
func readReplica(dir string) (ReplicaLog, []Read, []BatchSum, error) {
	l := ReplicaLog{Start: -1}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, nil, nil, err
	}
	var segs []string
	for _, e := range ents {
		if name := e.Name(); strings.HasSuffix(name, ".log") && len(name) == 24 {
			segs = append(segs, name)
		}
	}
	sort.Strings(segs) // 20 zero-padded digits sort as numbers
	var reads []Read
	var sums []BatchSum
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(dir, s))
		if err != nil {
			return l, reads, sums, err
		}
		spans := scanBatches(b)
		for _, sp := range spans {
			bt := batch.Batch(b[sp.Pos:sp.End])
			sums = append(sums, BatchSum{Base: sp.Base, Last: sp.Last, Epoch: bt.PartitionLeaderEpoch(), CRC: bt.CRC()})
			rs, err := batch.Records(bt, maxReplicaBatch)
			if err != nil {
				return l, reads, sums, fmt.Errorf("%s at %d: %w", s, sp.Pos, err)
			}
			for _, r := range rs {
				if l.Start < 0 {
					l.Start = r.Offset
				}
				reads = append(reads, Read{Record: Record{Offset: r.Offset, Value: valueKey(string(r.Value))}})
			}
			l.End = sp.Last + 1
		}
		if n := len(spans); n == 0 && len(b) > 0 || n > 0 && spans[n-1].End != int64(len(b)) {
			// A clean stop leaves no partial batch: what follows the
			// last whole one is damage the restart did not repair.
			return l, reads, sums, fmt.Errorf("%s: %d bytes after the last whole batch", s, int64(len(b))-lastEnd(spans))
		}
	}
	if l.Start < 0 {
		l.Start = l.End
	}
	return l, reads, sums, nil
}

func lastEnd(spans []batchSpan) int64 {
	if len(spans) == 0 {
		return 0
	}
	return spans[len(spans)-1].End
}

// checkReplicas: every replica read from disk holds, at each offset from
// its start up to the high watermark the final read went to, the value the
// final read found there.
func (c *checker) checkReplicas() {
	if len(c.h.Replicas) == 0 {
		return
	}
	final := map[pos]string{}
	for _, r := range c.h.Final {
		final[pos{r.Partition, r.Offset}] = r.Value
	}
	hw := map[int32]int64{}
	for _, e := range c.h.FinalEnds {
		hw[e.Partition] = max(hw[e.Partition], e.End)
	}
	type key struct {
		node int
		p    int32
	}
	disk := map[key]map[int64]string{}
	for _, r := range c.h.ReplicaReads {
		k := key{r.Node, r.Partition}
		if disk[k] == nil {
			disk[k] = map[int64]string{}
		}
		disk[k][r.Offset] = r.Value
	}
	for _, l := range c.h.Replicas {
		at := disk[key{l.Node, l.Partition}]
		var missing, differ []string
		var values []string
		for o := max(l.Start, 0); o < hw[l.Partition]; o++ {
			want, ok := final[pos{l.Partition, o}]
			if !ok {
				continue // the final read has nothing there (compacted, or its own anomaly)
			}
			got, has := at[o]
			switch {
			case !has:
				missing = append(missing, fmt.Sprint(o))
				values = append(values, want)
			case got != want:
				differ = append(differ, fmt.Sprintf("@%d %q (read %q)", o, got, want))
				values = append(values, want, got)
			}
		}
		if len(missing)+len(differ) == 0 {
			continue
		}
		c.add(Anomaly{Kind: DivergentReplica, Partition: l.Partition, Values: values,
			Detail: fmt.Sprintf("node %d's copy of p%d (offsets %d to %d, high watermark %d) lacks %d offsets %s and holds %d others otherwise %s",
				l.Node, l.Partition, l.Start, l.End, hw[l.Partition], len(missing), firstFew(missing), len(differ), firstFew(differ))})
	}
}

// firstFew shows up to five items.
func firstFew(ss []string) string {
	if len(ss) > 5 {
		return "[" + strings.Join(ss[:5], " ") + " ...]"
	}
	return "[" + strings.Join(ss, " ") + "]"
}
