// groups.go is the consumer groups API: the list with states, members and total lag; one
// group's members, assignments and per-partition lag; and resetting its offsets.
//
// Lag is computed as kafka-consumer-groups and kadm compute it: the high watermark less
// the committed offset, or less the log start offset where nothing is committed, never
// below 0. Classic groups are described with DescribeGroups, KIP-848 groups (type
// "consumer") with ConsumerGroupDescribe, since a broker answers DescribeGroups for those
// as a dead group.
package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

type groupView struct {
	Name         string                      `json:"name"`
	Type         string                      `json:"type"` // classic, consumer (KIP-848), or empty when the broker does not say
	State        string                      `json:"state"`
	ProtocolType string                      `json:"protocolType"`
	Protocol     string                      `json:"protocol"` // the assignor
	Coordinator  int32                       `json:"coordinator"`
	Members      []memberView                `json:"members"`
	Offsets      []groupOffsetView           `json:"offsets"`
	TotalLag     int64                       `json:"totalLag"`
	Topics       []string                    `json:"topics"`
	Error        string                      `json:"error,omitempty"`
	assigned     map[string]map[int32]string // topic -> partition -> member ID
}

type memberView struct {
	ID         string           `json:"id"`
	InstanceID *string          `json:"instanceId"`
	ClientID   string           `json:"clientId"`
	Host       string           `json:"host"`
	Assignment []topicPartsView `json:"assignment"`
}

type topicPartsView struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type groupOffsetView struct {
	Topic          string  `json:"topic"`
	Partition      int32   `json:"partition"`
	Committed      *int64  `json:"committed"` // null: nothing committed
	LogStartOffset *int64  `json:"logStartOffset"`
	HighWatermark  *int64  `json:"highWatermark"`
	Lag            *int64  `json:"lag"` // null when it cannot be computed (see error)
	MemberID       *string `json:"memberId"`
	Error          string  `json:"error,omitempty"`
}

func (c *Console) listGroups(ctx context.Context, _ *http.Request) (any, error) {
	listed, err := c.adm.ListGroups(ctx)
	if err != nil && len(listed) == 0 {
		return nil, fmt.Errorf("list groups: %w", firstShardErr(err))
	}
	return c.describeGroups(ctx, listed)
}

func (c *Console) getGroup(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("group")
	g, err := c.group(ctx, name)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// group describes one group, or answers GROUP_ID_NOT_FOUND for a group the cluster does
// not list (kafka-consumer-groups: "Consumer group 'g' does not exist").
func (c *Console) group(ctx context.Context, name string) (*groupView, error) {
	listed, err := c.adm.ListGroups(ctx)
	if err != nil && len(listed) == 0 {
		return nil, fmt.Errorf("list groups: %w", firstShardErr(err))
	}
	lg, ok := listed[name]
	if !ok {
		return nil, fmt.Errorf("group %s does not exist: %w", name, kerr.GroupIDNotFound)
	}
	gs, err := c.describeGroups(ctx, kadm.ListedGroups{name: lg})
	if err != nil {
		return nil, err
	}
	return &gs[0], nil
}

// describeGroups describes the listed groups with their members, committed offsets and
// lag, sorted by name.
func (c *Console) describeGroups(ctx context.Context, listed kadm.ListedGroups) ([]groupView, error) {
	out := []groupView{}
	byName := map[string]*groupView{}
	var classic, consumer []string
	for _, lg := range listed.Sorted() {
		out = append(out, groupView{Name: lg.Group, Type: lg.GroupType, State: lg.State, ProtocolType: lg.ProtocolType,
			Coordinator: lg.Coordinator, Members: []memberView{}, Offsets: []groupOffsetView{}, Topics: []string{},
			assigned: map[string]map[int32]string{}})
		if lg.GroupType == "consumer" {
			consumer = append(consumer, lg.Group)
		} else {
			classic = append(classic, lg.Group)
		}
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	if len(out) == 0 {
		return out, nil
	}
	if len(classic) > 0 {
		described, err := c.adm.DescribeGroups(ctx, classic...)
		if err != nil && len(described) == 0 {
			return nil, fmt.Errorf("describe groups: %w", firstShardErr(err))
		}
		for _, d := range described {
			g := byName[d.Group]
			if g == nil {
				continue
			}
			if d.Err != nil {
				g.Error = kafkaErr(d.Err, d.ErrMessage).Error()
				continue
			}
			g.State, g.ProtocolType, g.Protocol, g.Coordinator = d.State, d.ProtocolType, d.Protocol, d.Coordinator.NodeID
			for _, m := range d.Members {
				mv := memberView{ID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: []topicPartsView{}}
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range a.Topics {
						mv.Assignment = append(mv.Assignment, topicPartsView{t.Topic, slices.Sorted(slices.Values(t.Partitions))})
					}
				}
				g.addMember(mv)
			}
		}
	}
	if len(consumer) > 0 {
		described, err := c.adm.DescribeConsumerGroups(ctx, consumer...)
		if err != nil && len(described) == 0 {
			return nil, fmt.Errorf("describe consumer groups: %w", firstShardErr(err))
		}
		for _, d := range described {
			g := byName[d.Group]
			if g == nil {
				continue
			}
			if d.Err != nil {
				g.Error = d.Err.Error()
				continue
			}
			g.State, g.Protocol, g.Coordinator = d.State, d.AssignorName, d.Coordinator.NodeID
			if g.ProtocolType == "" {
				g.ProtocolType = "consumer"
			}
			for _, m := range d.Members {
				mv := memberView{ID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: []topicPartsView{}}
				for _, t := range m.Assignment.Sorted() {
					mv.Assignment = append(mv.Assignment, topicPartsView{t.Topic, t.Partitions})
				}
				g.addMember(mv)
			}
		}
	}

	names := make([]string, 0, len(out))
	for _, g := range out {
		names = append(names, g.Name)
	}
	fetched := c.adm.FetchManyOffsets(ctx, names...)
	topics := map[string]bool{}
	for _, g := range out {
		for t := range g.assigned {
			topics[t] = true
		}
		if f, ok := fetched[g.Name]; ok && f.Err == nil {
			for t := range f.Fetched {
				topics[t] = true
			}
		}
	}
	var starts, ends kadm.ListedOffsets
	if len(topics) > 0 {
		ts := slices.Sorted(maps.Keys(topics))
		// Missing partitions show as errors per row; only a total failure fails the call.
		var err error
		if starts, err = c.adm.ListStartOffsets(ctx, ts...); err != nil && len(starts) == 0 {
			return nil, fmt.Errorf("list start offsets: %w", firstShardErr(err))
		}
		if ends, err = c.adm.ListEndOffsets(ctx, ts...); err != nil && len(ends) == 0 {
			return nil, fmt.Errorf("list end offsets: %w", firstShardErr(err))
		}
	}
	for i := range out {
		g := &out[i]
		f, ok := fetched[g.Name]
		if !ok {
			if g.Error == "" {
				g.Error = "no answer to OffsetFetch"
			}
			continue
		}
		if f.Err != nil {
			if g.Error == "" && !errors.Is(f.Err, kerr.GroupIDNotFound) {
				g.Error = "fetch offsets: " + f.Err.Error()
			}
			f.Fetched = nil
		}
		g.lag(f.Fetched, starts, ends)
	}
	return out, nil
}

func (g *groupView) addMember(m memberView) {
	for _, a := range m.Assignment {
		if g.assigned[a.Topic] == nil {
			g.assigned[a.Topic] = map[int32]string{}
		}
		for _, p := range a.Partitions {
			g.assigned[a.Topic][p] = m.ID
		}
	}
	g.Members = append(g.Members, m)
}

// lag fills the offset rows: every partition committed to or assigned.
func (g *groupView) lag(committed kadm.OffsetResponses, starts, ends kadm.ListedOffsets) {
	rows := map[string]map[int32]*groupOffsetView{}
	row := func(t string, p int32) *groupOffsetView {
		if rows[t] == nil {
			rows[t] = map[int32]*groupOffsetView{}
		}
		if rows[t][p] == nil {
			rows[t][p] = &groupOffsetView{Topic: t, Partition: p}
		}
		return rows[t][p]
	}
	committed.Each(func(o kadm.OffsetResponse) {
		r := row(o.Topic, o.Partition)
		if o.Err != nil {
			r.Error = o.Err.Error()
		} else if o.At >= 0 {
			at := o.At
			r.Committed = &at
		}
	})
	for t, ps := range g.assigned {
		for p, m := range ps {
			id := m
			row(t, p).MemberID = &id
		}
	}
	topics := map[string]bool{}
	for t, ps := range rows {
		for p, r := range ps {
			if st, ok := starts.Lookup(t, p); ok && st.Err == nil {
				r.LogStartOffset = &st.Offset
			}
			en, ok := ends.Lookup(t, p)
			switch {
			case !ok:
				if r.Error == "" {
					r.Error = "no high watermark listed"
				}
			case en.Err != nil:
				if r.Error == "" {
					r.Error = en.Err.Error()
				}
			default:
				r.HighWatermark = &en.Offset
			}
			if r.Error == "" && r.HighWatermark != nil {
				lag := *r.HighWatermark
				if r.LogStartOffset != nil {
					lag -= *r.LogStartOffset
				}
				if r.Committed != nil {
					lag = *r.HighWatermark - *r.Committed
				}
				lag = max(lag, 0)
				r.Lag = &lag
				g.TotalLag += lag
			}
			topics[t] = true
			g.Offsets = append(g.Offsets, *r)
		}
	}
	slices.SortFunc(g.Offsets, func(a, b groupOffsetView) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	g.Topics = slices.Sorted(maps.Keys(topics))
}

// resetRequest is a reset of a group's committed offsets, as kafka-consumer-groups
// --reset-offsets: a dry run (the plan) unless Execute.
type resetRequest struct {
	Mode    string   `json:"mode"`   // earliest, latest, offset, time
	Offset  int64    `json:"offset"` // for offset: clamped to each partition's range
	TimeMs  int64    `json:"timeMs"` // for time: the first offset at or after it
	Topics  []string `json:"topics"` // empty: every topic the group has committed offsets for
	Execute bool     `json:"execute"`
}

type resetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   *int64 `json:"current"`
	New       int64  `json:"new"`
}

func (c *Console) resetOffsets(ctx context.Context, r *http.Request) (any, error) {
	group := r.PathValue("group")
	var req resetRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	switch req.Mode {
	case "earliest", "latest":
	case "offset":
		if req.Offset < 0 {
			return nil, badRequest("offset %d: want 0 or more", req.Offset)
		}
	case "time":
		if req.TimeMs < 0 {
			return nil, badRequest("timeMs %d: want milliseconds since the epoch", req.TimeMs)
		}
	default:
		return nil, badRequest("mode %q: want earliest, latest, offset or time", req.Mode)
	}
	// A live member would overwrite the new offsets with its next commit; Kafka's tool
	// refuses too. A group the cluster does not know has no members, and committing
	// creates it, as in Kafka.
	g, err := c.group(ctx, group)
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		g = &groupView{Name: group}
	case err != nil:
		return nil, err
	case g.Error != "":
		return nil, fmt.Errorf("describe group %s: %s", group, g.Error)
	case len(g.Members) > 0:
		return nil, conflict("GROUP_HAS_MEMBERS", "group %s has %d active members (state %s): stop them first", group, len(g.Members), g.State)
	}
	names := req.Topics
	if len(names) == 0 {
		names = g.Topics
	}
	if len(names) == 0 {
		return nil, badRequest("group %s has no committed offsets: name the topics", group)
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	starts, err := c.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", firstShardErr(err))
	}
	ends, err := c.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", firstShardErr(err))
	}
	var byTime kadm.ListedOffsets
	if req.Mode == "time" {
		if byTime, err = c.adm.ListOffsetsAfterMilli(ctx, req.TimeMs, names...); err != nil {
			return nil, fmt.Errorf("list offsets by time: %w", firstShardErr(err))
		}
	}
	current := map[string]map[int32]int64{}
	for _, o := range g.Offsets {
		if o.Committed != nil {
			if current[o.Topic] == nil {
				current[o.Topic] = map[int32]int64{}
			}
			current[o.Topic][o.Partition] = *o.Committed
		}
	}
	rows := []resetRow{}
	next := kadm.Offsets{}
	var errs []error
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", end.Topic, end.Partition, end.Err))
			return
		}
		start, _ := starts.Lookup(end.Topic, end.Partition)
		row := resetRow{Topic: end.Topic, Partition: end.Partition}
		if cur, ok := current[end.Topic][end.Partition]; ok {
			row.Current = &cur
		}
		var target int64
		switch req.Mode {
		case "earliest":
			target = start.Offset
		case "latest":
			target = end.Offset
		case "offset":
			target = req.Offset
		case "time":
			target = end.Offset
			if o, ok := byTime.Lookup(end.Topic, end.Partition); ok && o.Err == nil && o.Offset >= 0 {
				target = o.Offset
			}
		}
		row.New = max(start.Offset, min(target, end.Offset))
		next.AddOffset(end.Topic, end.Partition, row.New, -1)
		rows = append(rows, row)
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(rows, func(a, b resetRow) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	if req.Execute {
		resp, err := c.adm.CommitOffsets(ctx, group, next)
		if err != nil {
			return nil, fmt.Errorf("commit offsets: %w", err)
		}
		if err := resp.Error(); err != nil {
			return nil, fmt.Errorf("commit offsets: %w", err)
		}
		c.opts.Logger.Info("console reset group offsets", "group", group, "mode", req.Mode, "partitions", len(rows))
	}
	return map[string]any{"group": group, "executed": req.Execute, "offsets": rows}, nil
}
