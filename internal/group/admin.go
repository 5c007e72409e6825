package group

// Group administration: DescribeGroups, ListGroups, DeleteGroups.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups handles DescribeGroups v0+. A group that does not exist,
// or is not a classic group, is reported as Dead; from v6 (KIP-1043) also
// with GROUP_ID_NOT_FOUND. Member metadata and assignments are only shown
// for a Stable group, as Kafka does.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		if err := c.unavailableLocked(id); err != nil {
			rg.ErrorCode = err.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		g := c.groups[id]
		if g == nil || g.typ != typeClassic {
			rg.State = stateDead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := fmt.Sprintf("Group %s not found.", id)
				if g != nil {
					msg = fmt.Sprintf("Group %s is not a classic group.", id)
				}
				rg.ErrorMessage = &msg
			}
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State = g.state.String()
		rg.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			rg.Protocol = g.protocol
		}
		for _, mid := range g.joinOrder {
			m := g.members[mid]
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID = m.id
			rm.InstanceID = m.instanceID
			rm.ClientID = m.clientID
			rm.ClientHost = m.clientHost
			rm.ProtocolMetadata = []byte{}
			rm.MemberAssignment = []byte{}
			if stable {
				rm.ProtocolMetadata = m.metadataFor(g.protocol)
				if m.assignment != nil {
					rm.MemberAssignment = m.assignment
				}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// ListGroups handles ListGroups v0+: v4 filters by state, v5 by type
// ("classic", "consumer"), both case-insensitively as Kafka does.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.anyLoadingLocked() {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range c.groups {
		state, typ := g.stateString(), g.typ.String()
		if !matches(req.StatesFilter, state) || !matches(req.TypesFilter, typ) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.id
		lg.ProtocolType = g.protocolType
		if g.typ == typeConsumer {
			lg.ProtocolType = "consumer"
		}
		lg.GroupState = state
		lg.GroupType = typ
		resp.Groups = append(resp.Groups, lg)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// DeleteGroups handles DeleteGroups v0+: a group with members is not
// deleted (NON_EMPTY_GROUP); otherwise its offsets and its group record are
// tombstoned, and it is gone once that is durable.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		c.write(ctx, c.PartitionFor(id), func() []Record {
			if err := c.unavailableLocked(id); err != nil {
				rg.ErrorCode = err.Code
				return nil
			}
			g := c.groups[id]
			switch {
			case g == nil:
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				return nil
			case !g.isEmpty() || (g.typ == typeClassic && g.state != stateEmpty):
				rg.ErrorCode = kerr.NonEmptyGroup.Code
				return nil
			}
			return append(g.offsetTombstones(), g.tombstones()...)
		}, func(recs []Record, err error) {
			if err != nil {
				rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
				return
			}
			for _, r := range recs {
				c.applyExpiryRecord(r)
			}
		})
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}
