package group

// The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// following Kafka's ClassicGroup and GroupMetadataManager: join and sync
// phases, generation IDs, KIP-394 member IDs handed out with
// MEMBER_ID_REQUIRED (JoinGroup v4+), protocol selection by vote among the
// protocols every member supports, the rebalance timeout (the longest of the
// members'), session timeouts, group.initial.rebalance.delay.ms for the
// first join phase of an empty group, and KIP-345 static membership.
//
// A JoinGroup call blocks until its join phase ends; a SyncGroup call blocks
// until the leader's assignment is stored. Each waiting member holds a
// buffered channel its answer is put on; the waiting happens outside mu.

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles JoinGroup v0+. It blocks until the member's join phase
// ends, ctx is cancelled (then COORDINATOR_NOT_AVAILABLE) or Close.
func (c *Coordinator) JoinGroup(ctx context.Context, client Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	c.mu.Lock()
	resp, ch := c.joinLocked(client, req)
	c.mu.Unlock()
	if resp != nil {
		return resp
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
	case <-c.closed:
	}
	return joinError(req, kerr.CoordinatorNotAvailable, req.MemberID)
}

func joinError(req *kmsg.JoinGroupRequest, err *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = err.Code
	resp.Generation = -1
	resp.MemberID = memberID
	if req.Version >= 7 {
		resp.ProtocolType = kmsg.StringPtr(req.ProtocolType)
	}
	return resp
}

// joinLocked returns either an immediate answer or the channel the answer
// will be put on when the join phase ends.
func (c *Coordinator) joinLocked(client Client, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	fail := func(err *kerr.Error) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
		return joinError(req, err, req.MemberID), nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	if err := c.unavailableLocked(req.Group); err != nil {
		return fail(err)
	}
	session := msDuration(req.SessionTimeoutMillis)
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol)
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && req.MemberID != "":
		return fail(kerr.UnknownMemberID)
	case g == nil:
		g = c.newClassicGroup(req.Group)
	case g.typ == typeConsumer:
		// Kafka can convert a live consumer group to classic members; we
		// only take over a consumer group that has no members left.
		if !g.isEmpty() {
			return fail(kerr.InconsistentGroupProtocol)
		}
		c.convertToClassicLocked(g)
	}
	if g.state != stateEmpty && !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	if req.MemberID == "" {
		return c.joinUnknownMember(g, client, req)
	}
	return c.joinKnownMember(g, client, req)
}

// supportsProtocols reports whether a member with these protocols can join
// the non-empty group: same protocol type, and at least one protocol every
// current member supports too.
func (g *group) supportsProtocols(protocolType string, protos []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protos {
		all := true
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (c *Coordinator) groupFull(g *group) bool {
	return c.cfg.MaxGroupSize > 0 && len(g.members)+len(g.pending) >= c.cfg.MaxGroupSize
}

func (c *Coordinator) joinUnknownMember(g *group, client Client, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	prefix := client.ID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	newID := prefix + "-" + uuid.NewString()
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok && g.members[oldID] != nil {
			return c.replaceStaticMember(g, g.members[oldID], newID, client, req)
		}
	}
	if c.groupFull(g) {
		return joinError(req, kerr.GroupMaxSizeReached, ""), nil
	}
	if req.InstanceID == nil && req.Version >= 4 {
		// KIP-394: hand out the ID and have the client come back with it,
		// so a client that never gets the answer leaves no member behind.
		g.pending[newID] = true
		gid := g.id
		c.sched.after(timerKey{timerPendingMember, gid, newID}, msDuration(req.SessionTimeoutMillis), func() {
			c.expirePendingMember(gid, newID)
		})
		return joinError(req, kerr.MemberIDRequired, newID), nil
	}
	return nil, c.addMemberAndRebalance(g, newID, client, req)
}

// expirePendingMember forgets a member ID handed out with MEMBER_ID_REQUIRED
// whose client never came back within its session timeout. Member IDs are
// never reused, so no token is needed.
func (c *Coordinator) expirePendingMember(groupID, memberID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	if g == nil || !g.pending[memberID] {
		return
	}
	delete(g.pending, memberID)
	c.tryCompleteJoin(g)
}

func (c *Coordinator) joinKnownMember(g *group, client Client, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	if g.pending[req.MemberID] {
		if c.cfg.MaxGroupSize > 0 && len(g.members) >= c.cfg.MaxGroupSize {
			delete(g.pending, req.MemberID)
			return joinError(req, kerr.GroupMaxSizeReached, req.MemberID), nil
		}
		return nil, c.addMemberAndRebalance(g, req.MemberID, client, req)
	}
	m, kerrr := g.validateMember(req.MemberID, req.InstanceID)
	if kerrr != nil {
		return joinError(req, kerrr, req.MemberID), nil
	}
	switch g.state {
	case statePreparingRebalance:
		return nil, c.updateMemberAndRebalance(g, m, req)
	case stateCompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// The member missed our answer (e.g. a timeout on its side):
			// answer again with the same generation.
			return c.joinResponse(g, m, req.Version, false), nil
		}
		return nil, c.updateMemberAndRebalance(g, m, req)
	case stateStable:
		if m.id == g.leader || !m.sameProtocols(req.Protocols) {
			// The leader rejoining is how clients ask for a new
			// assignment (e.g. a metadata change they noticed).
			return nil, c.updateMemberAndRebalance(g, m, req)
		}
		c.armHeartbeat(g, m)
		return c.joinResponse(g, m, req.Version, false), nil
	default:
		return joinError(req, kerr.UnknownMemberID, req.MemberID), nil
	}
}

// validateMember is Kafka's ClassicGroup.validateMember: a static member is
// known by its instance ID, and a request with the instance ID but another
// member ID comes from a fenced instance.
func (g *group) validateMember(memberID string, instanceID *string) (*member, *kerr.Error) {
	if instanceID != nil {
		mapped, ok := g.static[*instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID
		}
		if mapped != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

func (c *Coordinator) addMemberAndRebalance(g *group, id string, client Client, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	delete(g.pending, id)
	c.sched.cancel(timerKey{timerPendingMember, g.id, id})
	m := &member{
		id:         id,
		instanceID: req.InstanceID,
		clientID:   client.ID,
		clientHost: client.Host,
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.addMember(m)
	if g.initialDelay != nil {
		g.initialDelay.newMember = true
	}
	c.logMemberJoined(g, id, client.ID, client.Host, req.InstanceID, len(g.members))
	return c.updateMemberAndRebalance(g, m, req)
}

func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	m.sessionTimeout = msDuration(req.SessionTimeoutMillis)
	m.rebalanceTimeout = msDuration(req.RebalanceTimeoutMillis)
	if req.Version == 0 || m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = m.sessionTimeout
	}
	m.protocolType = req.ProtocolType
	m.protocols = slices.Clone(req.Protocols)
	if m.joinCh != nil {
		// A second JoinGroup while the first still waits: the first
		// will never be answered with the group, so end it now.
		m.joinCh <- joinError(&kmsg.JoinGroupRequest{Version: m.joinVersion}, kerr.RebalanceInProgress, m.id)
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	m.joinVersion = req.Version
	c.armHeartbeat(g, m)
	if g.state != statePreparingRebalance {
		c.prepareRebalance(g)
	}
	c.tryCompleteJoin(g)
	return ch
}

// replaceStaticMember handles a known group.instance.id joining with no
// member ID (a restarted static member): the new member ID takes over the
// old member's place and assignment, and the old one is fenced. A stable
// group does not rebalance unless the selected protocol would change.
func (c *Coordinator) replaceStaticMember(g *group, old *member, newID string, client Client, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	if old.joinCh != nil {
		old.joinCh <- joinError(&kmsg.JoinGroupRequest{Version: old.joinVersion}, kerr.FencedInstanceID, old.id)
		old.joinCh = nil
	}
	if old.syncCh != nil {
		old.syncCh <- syncError(old.syncVersion, kerr.FencedInstanceID)
		old.syncCh = nil
	}
	oldID := old.id
	c.sched.cancel(timerKey{timerHeartbeat, g.id, oldID})
	delete(g.members, oldID)
	m := old
	m.id = newID
	m.clientID = client.ID
	m.clientHost = client.Host
	g.members[newID] = m
	g.static[*req.InstanceID] = newID
	if i := slices.Index(g.joinOrder, oldID); i >= 0 {
		g.joinOrder[i] = newID
	}
	wasLeader := g.leader == oldID
	if wasLeader {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	oldProtocols := m.protocols
	switch g.state {
	case stateStable:
		m.protocols = slices.Clone(req.Protocols)
		if g.selectProtocol() == g.protocol {
			m.sessionTimeout = msDuration(req.SessionTimeoutMillis)
			if t := msDuration(req.RebalanceTimeoutMillis); t > 0 {
				m.rebalanceTimeout = t
			}
			c.armHeartbeat(g, m)
			c.persistGroupAsync(g)
			// KIP-814: a returning static leader learns the members but
			// must not assign again: the group keeps its assignment.
			return c.joinResponse(g, m, req.Version, wasLeader), nil
		}
		m.protocols = oldProtocols
		return nil, c.updateMemberAndRebalance(g, m, req)
	default:
		// In CompletingRebalance the leader may already be assigning with
		// the old member ID, so the new one would get nothing: rebalance.
		return nil, c.updateMemberAndRebalance(g, m, req)
	}
}

// joinResponse is the answer to m for the group's current generation. The
// leader gets every member's metadata for the selected protocol.
func (c *Coordinator) joinResponse(g *group, m *member, version int16, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.SkipAssignment = skipAssignment && version >= 9
	if m.id == g.leader {
		for _, id := range g.joinOrder {
			o := g.members[id]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			rm.InstanceID = o.instanceID
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// rebalanceTimeout is the longest of the members' rebalance timeouts: the
// longest the join phase waits for members to rejoin.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a join phase.
func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == stateCompletingRebalance {
		c.failSyncs(g, kerr.RebalanceInProgress)
	}
	c.sched.cancel(timerKey{timerSync, g.id, ""})
	g.pendingSync = nil
	g.syncing = false
	delay := g.rebalanceTimeout()
	if g.state == stateEmpty && c.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = &initialDelay{remaining: max(delay-c.cfg.InitialRebalanceDelay, 0)}
		delay = c.cfg.InitialRebalanceDelay
	}
	g.state = statePreparingRebalance
	g.stateTime = c.cfg.Now()
	c.armJoinTimer(g, delay)
}

func (c *Coordinator) armJoinTimer(g *group, d time.Duration) {
	g.joinSeq = c.nextSeq()
	seq, gid := g.joinSeq, g.id
	c.sched.after(timerKey{timerJoin, gid, ""}, d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[gid]
		if g == nil || g.joinSeq != seq || g.state != statePreparingRebalance {
			return
		}
		if d := g.initialDelay; d != nil && d.newMember && d.remaining > 0 {
			// Members are still arriving: wait another delay, bounded
			// by the rebalance timeout in total.
			next := min(c.cfg.InitialRebalanceDelay, d.remaining)
			d.remaining -= next
			d.newMember = false
			c.armJoinTimer(g, next)
			return
		}
		g.initialDelay = nil
		c.completeJoin(g)
	})
}

// failSyncs answers every waiting SyncGroup with err and drops the
// generation's assignment.
func (c *Coordinator) failSyncs(g *group, err *kerr.Error) {
	for _, m := range g.members {
		m.assignment = nil
		if m.syncCh != nil {
			m.syncCh <- syncError(m.syncVersion, err)
			m.syncCh = nil
		}
	}
}

func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state != statePreparingRebalance || g.initialDelay != nil || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase: members that did not rejoin are removed,
// the generation advances and every member gets its answer.
func (c *Coordinator) completeJoin(g *group) {
	started := g.stateTime // PreparingRebalance began
	defer c.logRebalanced(g, started)
	c.sched.cancel(timerKey{timerJoin, g.id, ""})
	g.joinSeq = c.nextSeq()
	g.initialDelay = nil
	for _, id := range slices.Clone(g.joinOrder) {
		if m := g.members[id]; m.joinCh == nil {
			c.removeMember(g, m, kerr.UnknownMemberID)
		}
	}
	g.generation++
	g.stateTime = c.cfg.Now()
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.state = stateEmpty
		c.persistGroupAsync(g)
		return
	}
	g.protocol = g.selectProtocol()
	g.state = stateCompletingRebalance
	g.pendingSync = make(map[string]bool, len(g.members))
	for _, id := range g.joinOrder {
		m := g.members[id]
		m.joinCh <- c.joinResponse(g, m, m.joinVersion, false)
		m.joinCh = nil
		g.pendingSync[id] = true
		c.armHeartbeat(g, m)
	}
	// Members that never send SyncGroup hold the group in
	// CompletingRebalance: remove them after the rebalance timeout.
	gen, gid := g.generation, g.id
	c.sched.after(timerKey{timerSync, gid, ""}, g.rebalanceTimeout(), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[gid]
		if g == nil || g.generation != gen || len(g.pendingSync) == 0 ||
			(g.state != stateCompletingRebalance && g.state != stateStable) {
			return
		}
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				c.removeMember(g, m, kerr.UnknownMemberID)
			}
		}
		c.prepareRebalance(g)
		c.tryCompleteJoin(g)
	})
}

// selectProtocol picks the protocol for the next generation: among those
// every member supports, the one most members prefer (first in their list);
// ties go to the earliest member's preference.
func (g *group) selectProtocol() string {
	if len(g.joinOrder) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range g.members[g.joinOrder[0]].protocols {
		all := true
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, p := range candidates {
		if best == "" || votes[p] > votes[best] {
			best = p
		}
	}
	return best
}

// removeMember takes m out of g, answering any request it has waiting with
// err. It does not start a rebalance; see removeMemberAndUpdate.
func (c *Coordinator) removeMember(g *group, m *member, err *kerr.Error) {
	if m.joinCh != nil {
		m.joinCh <- joinError(&kmsg.JoinGroupRequest{Version: m.joinVersion}, err, m.id)
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncError(m.syncVersion, err)
		m.syncCh = nil
	}
	c.sched.cancel(timerKey{timerHeartbeat, g.id, m.id})
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	g.joinOrder = slices.DeleteFunc(g.joinOrder, func(id string) bool { return id == m.id })
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.joinOrder) > 0 {
			g.leader = g.joinOrder[0]
		}
	}
}

// removeMemberAndUpdate removes m and moves the group on: a stable or
// syncing group rebalances, a joining group may now be complete.
func (c *Coordinator) removeMemberAndUpdate(g *group, m *member, err *kerr.Error) {
	c.removeMember(g, m, err)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalance(g)
		c.tryCompleteJoin(g)
	case statePreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

// armHeartbeat (re)starts m's session timer. A member waiting in a join or
// sync phase is kept alive: the phase's own timeout bounds it.
func (c *Coordinator) armHeartbeat(g *group, m *member) {
	m.hbSeq = c.nextSeq()
	m.lastSeen = c.cfg.Now()
	seq, gid, mid := m.hbSeq, g.id, m.id
	c.sched.after(timerKey{timerHeartbeat, gid, mid}, m.sessionTimeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[gid]
		if g == nil || g.typ != typeClassic {
			return
		}
		m := g.members[mid]
		if m == nil || m.hbSeq != seq {
			return
		}
		if m.joinCh != nil || m.syncCh != nil {
			c.armHeartbeat(g, m)
			return
		}
		c.cfg.Logger.Info("classic group member session expired", "group", gid, "member", mid)
		c.removeMemberAndUpdate(g, m, kerr.UnknownMemberID)
	})
}

// restoreTimersLocked arms the timers of a group rebuilt by Load: members
// of a restored classic group must heartbeat within their session timeout.
func (c *Coordinator) restoreTimersLocked(g *group) {
	switch g.typ {
	case typeClassic:
		for _, m := range g.members {
			c.armHeartbeat(g, m)
		}
	case typeConsumer:
		c.restoreConsumerTimersLocked(g)
	}
}

// persistGroupAsync writes the group's current state to the log in the
// background; it is for changes no request waits on (a group emptied by a
// timer, a static member replaced). The record is taken when the write
// starts, so the last write always carries the latest state.
func (c *Coordinator) persistGroupAsync(g *group) {
	gid, p := g.id, g.partition
	c.goAsync(func() {
		c.write(c.bgCtx, p, func() []Record {
			if cur := c.groups[gid]; cur == nil || cur.typ != typeClassic {
				return nil
			}
			return []Record{c.groups[gid].classicGroupRecord()}
		}, func([]Record, error) {})
	})
}

// convertToClassicLocked turns an empty consumer group (offsets only) into
// a classic one, as Kafka does when a classic member joins it.
func (c *Coordinator) convertToClassicLocked(g *group) {
	c.dropConsumerTimersLocked(g)
	g.typ = typeClassic
	g.cg = nil
	g.state = stateEmpty
	g.stateTime = c.cfg.Now()
	g.members = make(map[string]*member)
	g.static = make(map[string]string)
	g.pending = make(map[string]bool)
	g.joinOrder = nil
}
