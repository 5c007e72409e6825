package group

// The classic protocol after the join phase: SyncGroup hands out the
// leader's assignment once it is stored, Heartbeat keeps a member's session
// and tells it about rebalances, LeaveGroup removes members.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup handles SyncGroup v0+. The leader's call stores the assignment
// and then answers every member; followers wait for that.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	c.mu.Lock()
	resp, ch, store := c.syncLocked(req)
	c.mu.Unlock()
	if resp != nil {
		return resp
	}
	if store != nil {
		store(ctx)
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
	case <-c.closed:
	}
	return syncError(req.Version, kerr.CoordinatorNotAvailable)
}

func syncError(version int16, err *kerr.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ErrorCode = err.Code
	return resp
}

func (c *Coordinator) syncLocked(req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, chan *kmsg.SyncGroupResponse, func(context.Context)) {
	fail := func(err *kerr.Error) (*kmsg.SyncGroupResponse, chan *kmsg.SyncGroupResponse, func(context.Context)) {
		return syncError(req.Version, err), nil, nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	if err := c.unavailableLocked(req.Group); err != nil {
		return fail(err)
	}
	g := c.groups[req.Group]
	if g == nil || g.typ != typeClassic {
		return fail(kerr.UnknownMemberID)
	}
	m, kerrr := g.validateMember(req.MemberID, req.InstanceID)
	if kerrr != nil {
		return fail(kerrr)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) ||
		(req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case stateStable:
		delete(g.pendingSync, m.id)
		c.armHeartbeat(g, m)
		return c.syncResponse(g, m, req.Version), nil, nil
	case stateCompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID)
	}

	delete(g.pendingSync, m.id)
	if m.syncCh != nil {
		m.syncCh <- syncError(m.syncVersion, kerr.RebalanceInProgress)
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.syncCh = ch
	m.syncVersion = req.Version
	c.armHeartbeat(g, m)
	if m.id != g.leader || g.syncing {
		return nil, ch, nil
	}

	// The leader's assignment: members it left out get an empty one.
	assigned := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assigned[a.MemberID] = a.MemberAssignment
	}
	for id, o := range g.members {
		o.assignment = assigned[id]
	}
	g.syncing = true
	gen := g.generation
	current := func() bool {
		return c.groups[g.id] == g && g.generation == gen && g.state == stateCompletingRebalance && g.syncing
	}
	store := func(ctx context.Context) {
		c.write(ctx, g.partition, func() []Record {
			if !current() {
				return nil
			}
			return []Record{g.classicGroupRecord()}
		}, func(recs []Record, err error) {
			if !current() {
				return
			}
			g.syncing = false
			if err != nil {
				c.failSyncs(g, kerr.CoordinatorNotAvailable)
				c.prepareRebalance(g)
				return
			}
			g.state = stateStable
			g.stateTime = c.cfg.Now()
			for _, o := range g.members {
				if o.syncCh != nil {
					o.syncCh <- c.syncResponse(g, o, o.syncVersion)
					o.syncCh = nil
				}
			}
		})
	}
	return nil, ch, store
}

func (c *Coordinator) syncResponse(g *group, m *member, version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat handles Heartbeat v0+.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeat(req).Code
	return resp
}

var errNone = &kerr.Error{Message: "NONE", Code: 0}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) *kerr.Error {
	if req.Group == "" {
		return kerr.InvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.unavailableLocked(req.Group); err != nil {
		return err
	}
	g := c.groups[req.Group]
	if g == nil || g.typ != typeClassic {
		return kerr.UnknownMemberID
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	switch g.state {
	case stateEmpty:
		return kerr.UnknownMemberID
	case statePreparingRebalance:
		c.armHeartbeat(g, m)
		return kerr.RebalanceInProgress
	default:
		c.armHeartbeat(g, m)
		return errNone
	}
}

// LeaveGroup handles LeaveGroup v0+ (v3+ leaves a batch of members, static
// ones by instance ID).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.unavailableLocked(req.Group); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	g := c.groups[req.Group]
	removed := false
	for _, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		rm.ErrorCode = c.leaveOne(g, l, &removed).Code
		resp.Members = append(resp.Members, rm)
	}
	if removed {
		switch g.state {
		case stateStable, stateCompletingRebalance:
			c.prepareRebalance(g)
			c.tryCompleteJoin(g)
		case statePreparingRebalance:
			c.tryCompleteJoin(g)
		}
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (c *Coordinator) leaveOne(g *group, l kmsg.LeaveGroupRequestMember, removed *bool) *kerr.Error {
	if g == nil || g.typ != typeClassic {
		return kerr.UnknownMemberID
	}
	if l.InstanceID == nil && g.pending[l.MemberID] {
		delete(g.pending, l.MemberID)
		c.sched.cancel(timerKey{timerPendingMember, g.id, l.MemberID})
		*removed = true
		return errNone
	}
	id := l.MemberID
	if l.InstanceID != nil {
		mapped, ok := g.static[*l.InstanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if id != "" && id != mapped {
			return kerr.FencedInstanceID
		}
		id = mapped
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID
	}
	c.removeMember(g, m, kerr.UnknownMemberID)
	*removed = true
	return errNone
}
