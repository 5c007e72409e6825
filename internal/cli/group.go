// group.go is `vltava group list|describe|delete` (reset-offsets is in group_reset.go): the consumer-group side of
// kafka-consumer-groups.sh, through kadm.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func groupCommands() []subcommand {
	return []subcommand{
		{name: "list", summary: "list consumer groups and their states", run: Env.groupList},
		{name: "describe", args: "[GROUP...]", summary: "state, members, committed offsets and lag per partition", run: Env.groupDescribe},
		{name: "delete", args: "GROUP...", summary: "delete groups that have no members", run: Env.groupDelete},
		{name: "reset-offsets", args: "GROUP", summary: "move committed offsets (a dry run unless --execute)", run: Env.groupResetOffsets},
	}
}

func (e Env) groupList(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("group list", "[flags]")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	groups, err := adm.ListGroups(ctx)
	// ListGroups asks every broker; groups from the brokers that answered are still worth
	// printing before the error.
	if err != nil && len(groups) == 0 {
		return fmt.Errorf("list groups: %w", c.reachErr(err))
	}
	if c.output.json() {
		type group struct {
			Group        string `json:"group"`
			State        string `json:"state"`
			ProtocolType string `json:"protocol_type"`
			Coordinator  int32  `json:"coordinator"`
		}
		out := []group{}
		for _, g := range groups.Sorted() {
			out = append(out, group{g.Group, g.State, g.ProtocolType, g.Coordinator})
		}
		if werr := writeJSON(e.Stdout, out); werr != nil {
			return werr
		}
		if err != nil {
			return fmt.Errorf("list groups (partial): %w", c.reachErr(err))
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
	for _, g := range groups.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, orDash(g.State), orDash(g.ProtocolType), g.Coordinator)
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("list groups (partial): %w", c.reachErr(err))
	}
	return nil
}

func (e Env) groupDescribe(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("group describe", "[GROUP...] [flags]")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	// With no names, kadm's Lag describes every group the cluster lists.
	lags, err := adm.Lag(ctx, names...)
	if err != nil && len(lags) == 0 {
		return fmt.Errorf("describe groups: %w", c.reachErr(err))
	}
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("describe groups: %w", err))
	}
	first := true
	out := []jsonGroup{}
	for _, l := range lags.Sorted() {
		gerr := l.Error()
		if (gerr == nil && l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0) || errors.Is(gerr, kerr.GroupIDNotFound) {
			// Kafka's answer for a group it does not know is the state Dead (some brokers
			// answer GROUP_ID_NOT_FOUND); kafka-consumer-groups says "Consumer group 'g'
			// does not exist."
			errs = append(errs, fmt.Errorf("group %s does not exist: %w", l.Group, kerr.GroupIDNotFound))
			continue
		}
		if gerr != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", l.Group, gerr))
			continue
		}
		if c.output.json() {
			out = append(out, groupJSON(l))
			continue
		}
		if !first {
			fmt.Fprintln(e.Stdout)
		}
		first = false
		if werr := writeGroup(e.Stdout, l); werr != nil {
			return werr
		}
	}
	if c.output.json() {
		if werr := writeJSON(e.Stdout, out); werr != nil {
			return werr
		}
	}
	return errors.Join(errs...)
}

// writeGroup prints one group as kafka-consumer-groups.sh --describe does: a partition per
// line with the committed offset, the log end offset, the lag and the member that owns it.
// The summary line is tab-separated like topic describe; the table is aligned for reading.
func writeGroup(out io.Writer, l kadm.DescribedGroupLag) error {
	protocol := orDash(l.ProtocolType)
	if l.Protocol != "" {
		protocol += "/" + l.Protocol
	}
	fmt.Fprintf(out, "Group: %s\tState: %s\tProtocol: %s\tCoordinator: %d\tMembers: %d\n",
		l.Group, orDash(l.State), protocol, l.Coordinator.NodeID, len(l.Members))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID\tHOST\tCLIENT-ID")
	for _, p := range l.Lag.Sorted() {
		current, end, lag := "-", "-", "-"
		if p.Commit.At >= 0 {
			current = strconv.FormatInt(p.Commit.At, 10)
		}
		if p.End.Err == nil {
			end = strconv.FormatInt(p.End.Offset, 10)
		}
		if p.Lag >= 0 {
			lag = strconv.FormatInt(p.Lag, 10)
		}
		member, host, client := "-", "-", "-"
		if p.Member != nil {
			member, host, client = p.Member.MemberID, p.Member.ClientHost, p.Member.ClientID
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s", p.Topic, p.Partition, current, end, lag, member, host, client)
		if p.Err != nil {
			fmt.Fprintf(w, "\terror: %v", p.Err)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func (e Env) groupDelete(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("group delete", "GROUP... [flags]")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fs.Fail(errors.New("want at least one group name"))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	rs, err := adm.DeleteGroups(ctx, names...)
	if err != nil && len(rs) == 0 {
		return fmt.Errorf("delete groups: %w", c.reachErr(err))
	}
	type deleted struct {
		Group string `json:"group"`
	}
	out := []deleted{}
	var errs []error
	for _, name := range names {
		r, ok := rs[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete group %s: no answer for the group (%v)", name, err))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("delete group %s: %w", name, kafkaErr(r.Err, r.ErrMessage)))
		case c.output.json():
			out = append(out, deleted{name})
		default:
			fmt.Fprintf(e.Stdout, "deleted group %s\n", name)
		}
	}
	if c.output.json() {
		if werr := writeJSON(e.Stdout, out); werr != nil {
			return werr
		}
	}
	return errors.Join(errs...)
}

// jsonGroup is one group of `group describe -o json`.
type jsonGroup struct {
	Group        string             `json:"group"`
	State        string             `json:"state"`
	ProtocolType string             `json:"protocol_type"`
	Protocol     string             `json:"protocol"`
	Coordinator  int32              `json:"coordinator"`
	Members      []jsonMember       `json:"members"`
	Offsets      []jsonGroupOffsets `json:"offsets"`
}

type jsonMember struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"instance_id"`
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
}

type jsonGroupOffsets struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Committed *int64  `json:"committed_offset"` // null: nothing committed
	End       *int64  `json:"log_end_offset"`
	Lag       *int64  `json:"lag"`
	MemberID  *string `json:"member_id"` // null: no member owns the partition
	Error     string  `json:"error,omitempty"`
}

func groupJSON(l kadm.DescribedGroupLag) jsonGroup {
	g := jsonGroup{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: []jsonMember{}, Offsets: []jsonGroupOffsets{}}
	for _, m := range l.Members {
		g.Members = append(g.Members, jsonMember{m.MemberID, m.InstanceID, m.ClientID, m.ClientHost})
	}
	for _, p := range l.Lag.Sorted() {
		o := jsonGroupOffsets{Topic: p.Topic, Partition: p.Partition}
		if p.Commit.At >= 0 {
			o.Committed = &p.Commit.At
		}
		if p.End.Err == nil {
			o.End = &p.End.Offset
		}
		if p.Lag >= 0 {
			o.Lag = &p.Lag
		}
		if p.Member != nil {
			o.MemberID = &p.Member.MemberID
		}
		if p.Err != nil {
			o.Error = p.Err.Error()
		}
		g.Offsets = append(g.Offsets, o)
	}
	return g
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
