package handler

// Changes clients make, logged at INFO with who made them (client id and address):
// config changes (the keys and their new values; a secret's value never, shown as
// [hidden]), group deletions, offset deletions, and offsets committed outside a group
// generation. The last are how kafka-consumer-groups --reset-offsets and `vltava group
// reset-offsets` move a group (an admin client commits for the group with generation
// -1 and no member), but also how a consumer that assigns itself partitions commits:
// a connection's first such commit to a group is logged at INFO, the ones after it at
// DEBUG, so each reset (a tool's new connection) shows and a running consumer shows
// once. Topic creation, deletion and new partitions are logged by the broker.

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/logging"
)

const (
	// maxLoggedItems bounds the partitions or keys one line lists.
	maxLoggedItems = 20
	// maxCommitGroupsLogged bounds the groups a connection remembers having logged an
	// outside-generation commit for.
	maxCommitGroupsLogged = 16
)

func (r *Request) who() []any {
	return []any{"client_id", r.Header.ClientID, "client", r.Client.Addr}
}

// list joins items, at most maxLoggedItems of them, saying how many more there were.
func list(items []string) string {
	if len(items) > maxLoggedItems {
		return strings.Join(items[:maxLoggedItems], ", ") + fmt.Sprintf(" and %d more", len(items)-maxLoggedItems)
	}
	return strings.Join(items, ", ")
}

// logConfigChange logs a config change that was applied.
func (h *Handler) logConfigChange(r *Request, rtype int8, name string, changes []broker.ConfigChange, replace bool) {
	kind := "topic"
	if rtype == resourceBroker {
		kind = "broker"
		if name == "" {
			name = "(cluster default)"
		}
	}
	items := make([]string, 0, len(changes))
	for _, c := range changes {
		switch {
		case c.Value == nil:
			items = append(items, c.Key+" deleted")
		case config.Sensitive(c.Key):
			items = append(items, c.Key+"=[hidden]")
		default:
			items = append(items, c.Key+"="+*c.Value)
		}
	}
	attrs := append([]any{"resource", kind, "name", name, "changes", list(items)}, r.who()...)
	if replace {
		attrs = append(attrs, "replaced_all", true) // AlterConfigs: keys not named went back to their defaults
	}
	h.b.Logger().Info("config changed", attrs...)
}

// logGroupsDeleted logs the groups a DeleteGroups deleted.
func (h *Handler) logGroupsDeleted(r *Request, resp *kmsg.DeleteGroupsResponse) {
	for _, g := range resp.Groups {
		if g.ErrorCode == 0 {
			h.b.Logger().Info("group deleted", append([]any{"group", g.Group}, r.who()...)...)
		}
	}
}

// logOffsetsDeleted logs the partitions an OffsetDelete removed the group's offsets of.
func (h *Handler) logOffsetsDeleted(r *Request, req *kmsg.OffsetDeleteRequest, resp *kmsg.OffsetDeleteResponse) {
	if resp.ErrorCode != 0 {
		return
	}
	var items []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				items = append(items, fmt.Sprintf("%s-%d", t.Topic, p.Partition))
			}
		}
	}
	if len(items) > 0 {
		h.b.Logger().Info("group offsets deleted", append([]any{"group", req.Group, "partitions", list(items)}, r.who()...)...)
	}
}

// logOutsideCommit logs offsets committed outside a group generation (see the top).
func (h *Handler) logOutsideCommit(r *Request, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) {
	if req.Generation >= 0 || req.MemberID != "" {
		return
	}
	type item struct {
		topic     string
		partition int32
		offset    int64
	}
	var committed []item
	for i, t := range resp.Topics {
		for j, p := range t.Partitions {
			if p.ErrorCode == 0 && i < len(req.Topics) && j < len(req.Topics[i].Partitions) {
				name := t.Topic
				if name == "" { // v10 names topics by ID
					name = logging.TopicID(t.TopicID)
				}
				committed = append(committed, item{name, p.Partition, req.Topics[i].Partitions[j].Offset})
			}
		}
	}
	if len(committed) == 0 {
		return
	}
	// In topic and partition order, whatever order the client sent them in (clients
	// build the request from a map).
	slices.SortFunc(committed, func(a, b item) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	items := make([]string, len(committed))
	for i, c := range committed {
		items[i] = fmt.Sprintf("%s-%d=%d", c.topic, c.partition, c.offset)
	}
	level := slog.LevelInfo
	if !r.Client.firstOutsideCommit(req.Group) {
		level = slog.LevelDebug
	}
	h.b.Logger().Log(context.Background(), level, "group offsets committed outside a generation (an offset reset, or a consumer that assigns itself partitions)",
		append([]any{"group", req.Group, "offsets", list(items)}, r.who()...)...)
}

// firstOutsideCommit reports whether this is the connection's first outside-generation
// commit to group it logs (see the top).
func (c *Client) firstOutsideCommit(group string) bool {
	if _, ok := c.commitsLogged[group]; ok {
		return false
	}
	if len(c.commitsLogged) >= maxCommitGroupsLogged {
		return false
	}
	if c.commitsLogged == nil {
		c.commitsLogged = map[string]struct{}{}
	}
	c.commitsLogged[group] = struct{}{}
	return true
}
