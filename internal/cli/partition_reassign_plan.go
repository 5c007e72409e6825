package cli

// The pure parts of `vltava partition reassign`: the JSON files of Kafka's
// kafka-reassign-partitions (topics to move, reassignment plans), the proposed
// assignment of --generate, the throttle lists of --execute --throttle and the status
// lines of --verify. They take and return plain values so they are tested without a
// cluster.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicPartition names one partition, printed as Kafka prints it: topic-partition.
type topicPartition struct {
	Topic     string
	Partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

func compareTP(a, b topicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// assignmentPlan is a reassignment plan: target replicas by partition.
type assignmentPlan map[topicPartition][]int32

// sorted returns the plan's partitions in topic, then partition order.
func (p assignmentPlan) sorted() []topicPartition {
	out := make([]topicPartition, 0, len(p))
	for tp := range p {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

// reassignmentFile is Kafka's reassignment JSON: {"version":1,"partitions":[...]}.
type reassignmentFile struct {
	Version    int                     `json:"version"`
	Partitions []reassignmentPartition `json:"partitions"`
}

type reassignmentPartition struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// parseReassignment reads a reassignment JSON as --execute, --verify and --cancel take
// it: each partition once, a non-empty replica list without repeats; log_dirs, if
// given, one per replica and all "any" (Vltava does not move replicas between its
// own log dirs).
func parseReassignment(data []byte) (assignmentPlan, error) {
	var f reassignmentFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("the reassignment JSON: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("the reassignment JSON has version %d; only version 1 is known", f.Version)
	}
	if len(f.Partitions) == 0 {
		return nil, errors.New("the reassignment JSON names no partitions")
	}
	plan := assignmentPlan{}
	for _, p := range f.Partitions {
		tp := topicPartition{p.Topic, p.Partition}
		if p.Topic == "" || p.Partition < 0 {
			return nil, fmt.Errorf("the reassignment JSON has a partition without a topic or with a negative number: %s", tp)
		}
		if _, dup := plan[tp]; dup {
			return nil, fmt.Errorf("the reassignment JSON names partition %s more than once", tp)
		}
		if len(p.Replicas) == 0 {
			return nil, fmt.Errorf("partition %s has an empty replica list", tp)
		}
		seen := map[int32]bool{}
		for _, r := range p.Replicas {
			if r < 0 || seen[r] {
				return nil, fmt.Errorf("partition %s: replica list %v has a negative or repeated broker", tp, p.Replicas)
			}
			seen[r] = true
		}
		if p.LogDirs != nil {
			if len(p.LogDirs) != len(p.Replicas) {
				return nil, fmt.Errorf("partition %s: %d log_dirs for %d replicas", tp, len(p.LogDirs), len(p.Replicas))
			}
			for _, d := range p.LogDirs {
				if d != "any" {
					return nil, fmt.Errorf("partition %s: log dir %q: moving replicas between log dirs is not supported; use \"any\"", tp, d)
				}
			}
		}
		plan[tp] = slices.Clone(p.Replicas)
	}
	return plan, nil
}

// formatReassignment writes plan as Kafka's tool writes it (log_dirs all "any").
func formatReassignment(plan assignmentPlan) string {
	f := reassignmentFile{Version: 1, Partitions: []reassignmentPartition{}}
	for _, tp := range plan.sorted() {
		rs := plan[tp]
		dirs := make([]string, len(rs))
		for i := range dirs {
			dirs[i] = "any"
		}
		f.Partitions = append(f.Partitions, reassignmentPartition{Topic: tp.Topic, Partition: tp.Partition, Replicas: rs, LogDirs: dirs})
	}
	b, _ := json.Marshal(f) // plain values: cannot fail
	return string(b)
}

// parseTopicsToMove reads --topics-to-move-json-file: {"version":1,"topics":[{"topic":"a"},...]}.
func parseTopicsToMove(data []byte) ([]string, error) {
	var f struct {
		Version int `json:"version"`
		Topics  []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("the topics JSON: %w", err)
	}
	var out []string
	for _, t := range f.Topics {
		if t.Topic == "" {
			return nil, errors.New("the topics JSON has an entry without a topic")
		}
		if slices.Contains(out, t.Topic) {
			return nil, fmt.Errorf("List of topics to reassign contains duplicate entries: %s", t.Topic)
		}
		out = append(out, t.Topic)
	}
	if len(out) == 0 {
		return nil, errors.New("the topics JSON names no topics")
	}
	return out, nil
}

// parseBrokerList reads --broker-list: comma-separated broker IDs, no repeats.
func parseBrokerList(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--broker-list: %q is not a broker ID", f)
		}
		if slices.Contains(out, int32(n)) {
			return nil, fmt.Errorf("Broker list contains duplicate entries: %d", n)
		}
		out = append(out, int32(n))
	}
	if len(out) == 0 {
		return nil, errors.New("--broker-list names no brokers")
	}
	return out, nil
}

// proposeAssignment spreads each topic's partitions over brokers with the topic's
// replication factor, as Kafka's assignment does: rack-unaware when racks is empty (the
// first replicas round robin from a start, the others shifted after them), else
// rack-aware (the brokers in an order alternating racks, and each further replica on
// the next broker of a rack and a broker not used yet, while there are such). The start
// and shift are derived from the topic name rather than random, so the same input gives
// the same plan.
func proposeAssignment(current assignmentPlan, brokers []int32, racks map[int32]string) (assignmentPlan, error) {
	byTopic := map[string][]int32{} // partitions, with the replication factor of each topic
	rf := map[string]int{}
	for tp, rs := range current {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		rf[tp.Topic] = max(rf[tp.Topic], len(rs))
	}
	if len(racks) > 0 {
		var err error
		if brokers, err = rackAlternated(brokers, racks); err != nil {
			return nil, err
		}
	}
	numRacks := len(slices.Compact(slices.Sorted(maps.Values(racks))))
	n := len(brokers)
	out := assignmentPlan{}
	for topic, parts := range byTopic {
		if rf[topic] > n {
			return nil, fmt.Errorf("topic %s has replication factor %d, more than the %d brokers given", topic, rf[topic], n)
		}
		slices.Sort(parts)
		h := fnv.New32a()
		h.Write([]byte(topic))
		start, shift := int(h.Sum32()%uint32(n)), int(h.Sum32()/uint32(n)%uint32(n))
		for i, p := range parts {
			if i > 0 && i%n == 0 {
				shift++
			}
			first := (i + start) % n
			rs := []int32{brokers[first]}
			next := func(j int) int32 { return brokers[(first+1+(shift+j)%(n-1))%n] }
			if len(racks) == 0 {
				for j := 0; j < rf[topic]-1; j++ {
					rs = append(rs, next(j))
				}
			} else {
				usedRacks := map[string]bool{racks[rs[0]]: true}
				for k, j := 0, 0; j < rf[topic]-1; k++ {
					b := brokers[(first+1+(shift*numRacks+k)%(n-1))%n]
					if (!usedRacks[racks[b]] || len(usedRacks) == numRacks) && (!slices.Contains(rs, b) || len(rs) == n) {
						rs = append(rs, b)
						usedRacks[racks[b]] = true
						j++
					}
				}
			}
			out[topicPartition{topic, p}] = rs
		}
	}
	return out, nil
}

// rackAlternated orders brokers so that consecutive ones are in different racks where
// possible (Kafka's getRackAlternatedBrokerList): racks in name order, each rack's
// brokers in ID order, taken one per rack in turn. Every broker must have a rack.
func rackAlternated(brokers []int32, racks map[int32]string) ([]int32, error) {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		r, ok := racks[b]
		if !ok || r == "" {
			return nil, fmt.Errorf("Not all brokers have rack information (broker %d has none); use --disable-rack-aware", b)
		}
		byRack[r] = append(byRack[r], b)
	}
	names := slices.Sorted(maps.Keys(byRack))
	for _, r := range names {
		slices.Sort(byRack[r])
	}
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range names {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, nil
}

// withOngoing adds the reassignments under way to a plan about to start, as Kafka's
// tool does before it writes the throttle lists (which it sets whole per topic, so a
// move under way keeps its throttle): a move under way goes from its original replicas
// (without the adding ones) to its target (without the removing ones); a partition the
// plan moves again keeps its original replicas as the source.
func withOngoing(plan, cur assignmentPlan, ongoing []kmsg.ListPartitionReassignmentsResponseTopic) (targets, sources assignmentPlan) {
	targets, sources = assignmentPlan{}, assignmentPlan{}
	for tp, rs := range plan {
		targets[tp], sources[tp] = rs, cur[tp]
	}
	for _, t := range ongoing {
		for _, p := range t.Partitions {
			tp := topicPartition{t.Topic, p.Partition}
			var orig, target []int32
			for _, r := range p.Replicas {
				if !slices.Contains(p.AddingReplicas, r) {
					orig = append(orig, r)
				}
				if !slices.Contains(p.RemovingReplicas, r) {
					target = append(target, r)
				}
			}
			sources[tp] = orig
			if _, again := plan[tp]; !again {
				targets[tp] = target
			}
		}
	}
	return targets, sources
}

// throttleLists returns, per topic, Kafka's leader.replication.throttled.replicas (every
// current replica of a moving partition: the ones that may send to a new replica) and
// follower.replication.throttled.replicas (the replicas being added) for the partitions
// of plan whose replicas change, and the brokers taking part.
func throttleLists(plan, current assignmentPlan) (leader, follower map[string]string, brokers []int32) {
	lead, follow := map[string][]string{}, map[string][]string{}
	for _, tp := range plan.sorted() {
		target, cur := plan[tp], current[tp]
		if slices.Equal(target, cur) {
			continue
		}
		for _, r := range cur {
			lead[tp.Topic] = append(lead[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, r))
			brokers = append(brokers, r)
		}
		for _, r := range target {
			if !slices.Contains(cur, r) {
				follow[tp.Topic] = append(follow[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, r))
			}
			brokers = append(brokers, r)
		}
	}
	leader, follower = map[string]string{}, map[string]string{}
	for t, l := range lead {
		leader[t] = strings.Join(l, ",")
	}
	for t, l := range follow {
		follower[t] = strings.Join(l, ",")
	}
	slices.Sort(brokers)
	return leader, follower, slices.Compact(brokers)
}

// verifyLines are --verify's status lines (Kafka's wording) and whether every
// reassignment of plan is done: none still under way (ongoing holds those that are).
func verifyLines(plan, current assignmentPlan, ongoing map[topicPartition]bool) ([]string, bool) {
	lines := []string{"Status of partition reassignment:"}
	done := true
	for _, tp := range plan.sorted() {
		switch cur, ok := current[tp]; {
		case ongoing[tp]:
			done = false
			lines = append(lines, fmt.Sprintf("Reassignment of partition %s is still in progress.", tp))
		case !ok:
			lines = append(lines, fmt.Sprintf("Partition %s does not exist.", tp))
		case slices.Equal(cur, plan[tp]):
			lines = append(lines, fmt.Sprintf("Reassignment of partition %s is completed.", tp))
		default:
			lines = append(lines, fmt.Sprintf("There is no active reassignment of partition %s, but replica set is %s rather than %s.",
				tp, joinIDs(cur), joinIDs(plan[tp])))
		}
	}
	return lines, done
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}
