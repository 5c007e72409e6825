package group

// KIP-848 consumer groups: ConsumerGroupHeartbeat and ConsumerGroupDescribe,
// following Kafka's GroupMetadataManager and CurrentAssignmentBuilder.
//
// The group has an epoch that advances whenever its membership, a member's
// subscription, or the partition count of a subscribed topic changes. The
// server-side assignor ("uniform" or "range") then computes a target
// assignment for that epoch. Each member moves towards its target through
// its heartbeats:
//
//   - partitions it owns but must give up are revoked first: the member is
//     told its assignment without them and keeps its epoch (state
//     unrevoked) until a heartbeat reports it no longer owns them; a member
//     that does not revoke within its rebalance timeout is removed;
//   - then it takes the target's epoch and those of its new partitions no
//     other member still owns; the rest follow in later heartbeats once
//     released (state unreleased).
//
// Subscriptions by regex use Go's regexp (RE2 syntax, which is what Kafka's
// RE2/J implements), matched against the whole topic name. Internal topics
// match too: Kafka 4's coordinator resolves a regex against every topic in the
// image, __consumer_offsets included (franz-go's integration tests rely on it).

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type consumerState uint8

const (
	consumerEmpty consumerState = iota
	consumerAssigning
	consumerReconciling
	consumerStable
)

func (s consumerState) String() string {
	return [...]string{"Empty", "Assigning", "Reconciling", "Stable"}[s]
}

type memberState uint8

const (
	memberStable     memberState = iota // has its target epoch and all it can have
	memberUnrevoked                     // must revoke partitions before moving on
	memberUnreleased                    // has the target epoch, waits for partitions others still own
)

// Epochs a ConsumerGroupHeartbeat carries with a meaning of their own.
const (
	epochJoin        int32 = 0
	epochLeave       int32 = -1
	epochStaticLeave int32 = -2
)

type consumerGroup struct {
	epoch           int32 // the group epoch
	assignmentEpoch int32 // the epoch target was computed for
	assignor        string
	members         map[string]*consumerMember
	static          map[string]string // group.instance.id -> member ID
	target          map[string]assignment
	// subscribed is the metadata of every topic some member subscribes to,
	// as of the last epoch bump: a change in it bumps the epoch.
	subscribed map[string]TopicInfo
}

type consumerMember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	topicNames       []string // sorted
	regexSource      string
	regex            *regexp.Regexp
	serverAssignor   string
	rebalanceTimeout time.Duration

	epoch         int32
	previousEpoch int32
	state         memberState
	assigned      assignment // what the member owns, or is told to own
	revoking      assignment // what it owns and must give up

	sessionSeq uint64
	revokeSeq  uint64
}

// subscribedTopics returns the names m subscribes to: its names, and the
// existing topics its regex matches.
func (m *consumerMember) subscribedTopics(topics map[string]TopicInfo) []string {
	names := slices.Clone(m.topicNames)
	if m.regex != nil {
		for name := range topics {
			if m.regex.MatchString(name) && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

func (c *Coordinator) newConsumerGroup(id string) *group {
	g := c.newClassicGroup(id)
	g.typ = typeConsumer
	g.cg = &consumerGroup{
		members: make(map[string]*consumerMember),
		static:  make(map[string]string),
		target:  make(map[string]assignment),
	}
	return g
}

func (cg *consumerGroup) state() consumerState {
	if len(cg.members) == 0 {
		return consumerEmpty
	}
	if cg.epoch != cg.assignmentEpoch {
		return consumerAssigning
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignmentEpoch || m.state != memberStable {
			return consumerReconciling
		}
	}
	return consumerStable
}

func (cg *consumerGroup) validateCommit(memberID string, epoch int32) *kerr.Error {
	if epoch < 0 && len(cg.members) == 0 {
		return nil // an admin tool or simple consumer
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

func (cg *consumerGroup) validateFetch(memberID string, epoch int32) *kerr.Error {
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// ConsumerGroupHeartbeat handles ConsumerGroupHeartbeat v0+. Member IDs are
// generated here for v0 joins; from v1 the client generates them.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, client Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if err, msg := c.validateConsumerHeartbeat(req); err != nil {
		resp.ErrorCode = err.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	topics := c.topics()
	c.write(ctx, c.PartitionFor(req.Group), func() []Record {
		recs, err := c.consumerHeartbeatLocked(client, req, resp, topics)
		if err != nil {
			resp.ErrorCode = err.Code
		}
		return recs
	}, func(_ []Record, err error) {
		if err != nil {
			// Memory moved ahead of the log; the member retries with the
			// epoch it has, which the epoch check accepts (previous epoch).
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Assignment = nil
		}
	})
	return resp
}

func (c *Coordinator) validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kerr.Error, string) {
	invalid := func(msg string) (*kerr.Error, string) { return kerr.InvalidRequest, msg }
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID, "GroupId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return invalid("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return invalid("RackId can't be empty.")
	case req.Version >= 1 && req.MemberID == "":
		return invalid("MemberId can't be empty.")
	case req.MemberEpoch != epochJoin && req.MemberID == "":
		return invalid("MemberId can't be empty.")
	case req.MemberEpoch < epochStaticLeave:
		return invalid("MemberEpoch is invalid.")
	case req.MemberEpoch == epochStaticLeave && req.InstanceID == nil:
		return invalid("InstanceId can't be null.")
	}
	if req.MemberEpoch == epochJoin {
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		case req.Topics == nil || len(req.Topics) > 0:
			return invalid("TopicPartitions must be empty when (re-)joining.")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		}
	}
	if req.ServerAssignor != nil && !slices.Contains(c.cfg.ConsumerAssignors, *req.ServerAssignor) {
		return kerr.UnsupportedAssignor, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: %s.", *req.ServerAssignor, strings.Join(c.cfg.ConsumerAssignors, ", "))
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := compileTopicRegex(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, err.Error()
		}
	}
	return nil, ""
}

func compileTopicRegex(src string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + src + ")$")
	if err != nil {
		return nil, fmt.Errorf("SubscribedTopicRegex %q is not a valid regular expression: %w", src, err)
	}
	return re, nil
}

// consumerHeartbeatLocked runs one heartbeat under mu and returns the
// records that make its changes durable.
func (c *Coordinator) consumerHeartbeatLocked(client Client, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, topics map[string]TopicInfo) ([]Record, *kerr.Error) {
	if err := c.unavailableLocked(req.Group); err != nil {
		return nil, err
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && req.MemberEpoch != epochJoin:
		return nil, kerr.UnknownMemberID
	case g == nil:
		g = c.newConsumerGroup(req.Group)
	case g.typ == typeClassic:
		if len(g.members) > 0 || g.state != stateEmpty {
			msg := fmt.Sprintf("Group %s is not a consumer group.", g.id)
			resp.ErrorMessage = &msg
			return nil, kerr.GroupIDNotFound
		}
		if req.MemberEpoch != epochJoin {
			return nil, kerr.UnknownMemberID
		}
		c.convertToConsumerLocked(g)
	}
	cg := g.cg
	resp.MemberID = kmsg.StringPtr(req.MemberID)

	switch req.MemberEpoch {
	case epochLeave, epochStaticLeave:
		m := cg.members[req.MemberID]
		if m == nil {
			return nil, kerr.UnknownMemberID
		}
		resp.MemberEpoch = req.MemberEpoch
		if req.MemberEpoch == epochStaticLeave && m.instanceID != nil {
			// The instance will be back: keep its place and partitions
			// until its session times out.
			m.previousEpoch, m.epoch = m.epoch, epochStaticLeave
			return []Record{c.consumerMemberRecord(g, m)}, nil
		}
		return c.removeConsumerMember(g, m, topics), nil
	}

	var recs []Record
	groupChanged := false
	var m *consumerMember
	if req.MemberEpoch == epochJoin {
		var err *kerr.Error
		m, recs, groupChanged, err = c.consumerJoinLocked(g, client, req)
		if err != nil {
			return nil, err
		}
	} else {
		m = cg.members[req.MemberID]
		if m == nil {
			return nil, kerr.UnknownMemberID
		}
		if err := m.checkEpoch(req.MemberEpoch, ownedFromRequest(req.Topics)); err != nil {
			return nil, err
		}
	}
	resp.MemberID = kmsg.StringPtr(m.id)
	before := memberSnapshot(m)
	if m.updateSubscription(req) {
		groupChanged = true
	}
	c.armConsumerSession(g, m)

	if meta := subscribedMetadata(cg, topics); groupChanged || !sameMetadata(meta, cg.subscribed) {
		cg.epoch++
		cg.subscribed = meta
		recs = append(recs, c.consumerGroupRecord(g))
	}
	if cg.epoch > cg.assignmentEpoch {
		start := time.Now()
		c.computeTarget(cg)
		c.logTarget(g, time.Since(start))
	}
	c.reconcile(g, m, ownedFromRequest(req.Topics))
	if after := memberSnapshot(m); !after.equal(before) || groupChanged {
		recs = append(recs, c.consumerMemberRecord(g, m))
	}

	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval.Milliseconds())
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if req.MemberEpoch == epochJoin || full || !before.assigned.equal(m.assigned) {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, t := range m.assigned.topicIDs() {
			rt := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			rt.TopicID = t
			rt.Partitions = slices.Clone(m.assigned[t])
			a.Topics = append(a.Topics, rt)
		}
		resp.Assignment = &a
	}
	return recs, nil
}

// consumerJoinLocked finds or creates the member of an epoch 0 heartbeat.
func (c *Coordinator) consumerJoinLocked(g *group, client Client, req *kmsg.ConsumerGroupHeartbeatRequest) (*consumerMember, []Record, bool, *kerr.Error) {
	cg := g.cg
	memberID := req.MemberID
	if memberID == "" {
		memberID = uuid.NewString()
	}
	var recs []Record
	m := cg.members[memberID]
	if req.InstanceID != nil {
		if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != memberID && cg.members[oldID] != nil {
			old := cg.members[oldID]
			if old.epoch != epochStaticLeave {
				return nil, nil, false, kerr.UnreleasedInstanceID
			}
			// The returning instance takes over the old member's
			// partitions under its new ID.
			c.cancelConsumerTimers(g, old)
			delete(cg.members, oldID)
			recs = append(recs, Record{Key: consumerMemberKey(g.id, oldID)})
			cg.target[memberID] = cg.target[oldID]
			delete(cg.target, oldID)
			old.id = memberID
			old.epoch, old.previousEpoch, old.state = 0, 0, memberStable
			cg.members[memberID] = old
			m = old
		}
	}
	changed := false
	switch {
	case m == nil:
		if c.cfg.MaxGroupSize > 0 && len(cg.members) >= c.cfg.MaxGroupSize {
			return nil, nil, false, kerr.GroupMaxSizeReached
		}
		m = &consumerMember{id: memberID, assigned: make(assignment), revoking: make(assignment)}
		cg.members[memberID] = m
		changed = true
		c.logMemberJoined(g, memberID, client.ID, client.Host, req.InstanceID, len(cg.members))
	case m.epoch == epochStaticLeave:
		m.epoch, m.previousEpoch, m.state = 0, 0, memberStable
	case len(recs) == 0:
		// A known member joining again has dropped all its partitions.
		c.cancelConsumerTimers(g, m)
		m.epoch, m.previousEpoch, m.state = 0, 0, memberStable
		m.assigned, m.revoking = make(assignment), make(assignment)
	}
	m.clientID = client.ID
	m.clientHost = client.Host
	m.instanceID = req.InstanceID
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
	return m, recs, changed, nil
}

// checkEpoch is Kafka's member epoch check: an epoch ahead of ours is
// fenced; one behind is accepted only if it is the previous epoch and the
// member owns nothing it was not given (our answer to it got lost).
func (m *consumerMember) checkEpoch(epoch int32, owned assignment) *kerr.Error {
	if epoch > m.epoch {
		return kerr.FencedMemberEpoch
	}
	if epoch < m.epoch {
		if epoch != m.previousEpoch {
			return kerr.FencedMemberEpoch
		}
		for t, ps := range owned {
			for _, p := range ps {
				if !m.assigned.has(t, p) {
					return kerr.FencedMemberEpoch
				}
			}
		}
	}
	return nil
}

// updateSubscription applies the subscription fields the request carries
// (null means unchanged) and reports whether the subscription changed.
func (m *consumerMember) updateSubscription(req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	changed := false
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeout = msDuration(req.RebalanceTimeoutMillis)
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topicNames) {
			m.topicNames = names
			changed = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regexSource {
		m.regexSource = *req.SubscribedTopicRegex
		m.regex = nil
		if m.regexSource != "" {
			m.regex, _ = compileTopicRegex(m.regexSource) // validated before
		}
		changed = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.serverAssignor {
		m.serverAssignor = *req.ServerAssignor
		changed = true
	}
	return changed
}

func ownedFromRequest(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	if ts == nil {
		return nil
	}
	a := make(assignment)
	for _, t := range ts {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

// subscribedMetadata is the metadata of every existing topic some member
// subscribes to.
func subscribedMetadata(cg *consumerGroup, topics map[string]TopicInfo) map[string]TopicInfo {
	meta := make(map[string]TopicInfo)
	for _, m := range cg.members {
		for _, name := range m.subscribedTopics(topics) {
			if t, ok := topics[name]; ok {
				meta[name] = t
			}
		}
	}
	return meta
}

func sameMetadata(a, b map[string]TopicInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for name, t := range a {
		if u, ok := b[name]; !ok || u.ID != t.ID || u.Partitions != t.Partitions {
			return false
		}
	}
	return true
}

// computeTarget runs the group's assignor for the current epoch. The group
// uses the assignor most of its members ask for, else the first configured.
func (c *Coordinator) computeTarget(cg *consumerGroup) {
	votes := make(map[string]int)
	for _, m := range cg.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	cg.assignor = c.cfg.ConsumerAssignors[0]
	for _, name := range c.cfg.ConsumerAssignors {
		if votes[name] > votes[cg.assignor] {
			cg.assignor = name
		}
	}
	spec := assignSpec{topics: make(map[[16]byte]int32), prev: cg.target}
	for _, t := range cg.subscribed {
		spec.topics[t.ID] = t.Partitions
	}
	for _, m := range cg.members {
		am := assignMember{id: m.id, topics: make(map[[16]byte]bool)}
		for _, name := range m.subscribedTopics(cg.subscribed) {
			if t, ok := cg.subscribed[name]; ok {
				am.topics[t.ID] = true
			}
		}
		spec.members = append(spec.members, am)
	}
	sort.Slice(spec.members, func(i, j int) bool { return spec.members[i].id < spec.members[j].id })
	if cg.assignor == assignorRange {
		cg.target = assignRange(spec)
	} else {
		cg.target = assignUniform(spec)
	}
	cg.assignmentEpoch = cg.epoch
}

// reconcile moves m towards its target assignment; owned is what the
// member's heartbeat says it owns (nil: not said).
func (c *Coordinator) reconcile(g *group, m *consumerMember, owned assignment) {
	cg := g.cg
	switch m.state {
	case memberStable:
		if m.epoch == cg.assignmentEpoch {
			return
		}
	case memberUnrevoked:
		if owned == nil {
			return
		}
		for t, ps := range m.revoking {
			for _, p := range ps {
				if owned.has(t, p) {
					return // still revoking
				}
			}
		}
		m.revoking = make(assignment)
		c.sched.cancel(timerKey{timerConsumerRevoke, g.id, m.id})
	case memberUnreleased:
	}

	target := cg.target[m.id]
	owners := make(map[topicPartition]bool)
	for _, o := range cg.members {
		if o == m {
			continue
		}
		for _, a := range []assignment{o.assigned, o.revoking} {
			for t, ps := range a {
				for _, p := range ps {
					owners[topicPartition{t, p}] = true
				}
			}
		}
	}
	kept, revoke, added := make(assignment), make(assignment), make(assignment)
	for t, ps := range m.assigned {
		for _, p := range ps {
			if target.has(t, p) {
				kept.add(t, p)
			} else {
				revoke.add(t, p)
			}
		}
	}
	unreleased := false
	for t, ps := range target {
		for _, p := range ps {
			switch {
			case m.assigned.has(t, p):
			case owners[topicPartition{t, p}]:
				unreleased = true
			default:
				added.add(t, p)
			}
		}
	}
	if revoke.size() > 0 {
		m.state = memberUnrevoked
		m.assigned = kept
		m.revoking = revoke
		c.armConsumerRevoke(g, m)
		return
	}
	for t, ps := range added {
		for _, p := range ps {
			kept.add(t, p)
		}
	}
	m.assigned = kept
	if m.epoch != cg.assignmentEpoch {
		m.previousEpoch, m.epoch = m.epoch, cg.assignmentEpoch
	}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
}

// removeConsumerMember takes m out of the group (it left, or was fenced),
// bumps the epoch and recomputes the target. It returns the records of it.
func (c *Coordinator) removeConsumerMember(g *group, m *consumerMember, topics map[string]TopicInfo) []Record {
	cg := g.cg
	c.cancelConsumerTimers(g, m)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	cg.subscribed = subscribedMetadata(cg, topics)
	start := time.Now()
	c.computeTarget(cg)
	c.logTarget(g, time.Since(start))
	if len(cg.members) == 0 {
		g.stateTime = c.cfg.Now()
	}
	return []Record{{Key: consumerMemberKey(g.id, m.id)}, c.consumerGroupRecord(g)}
}

func (c *Coordinator) armConsumerSession(g *group, m *consumerMember) {
	m.sessionSeq = c.nextSeq()
	c.armConsumerTimer(g, m, timerConsumerSession, c.cfg.ConsumerSessionTimeout, m.sessionSeq, func(m *consumerMember) uint64 { return m.sessionSeq })
}

func (c *Coordinator) armConsumerRevoke(g *group, m *consumerMember) {
	m.revokeSeq = c.nextSeq()
	d := m.rebalanceTimeout
	if d <= 0 {
		d = c.cfg.ConsumerSessionTimeout
	}
	c.armConsumerTimer(g, m, timerConsumerRevoke, d, m.revokeSeq, func(m *consumerMember) uint64 { return m.revokeSeq })
}

// armConsumerTimer arms a timer that removes m when it fires, unless the
// token current returns changed since (the member heartbeated or revoked).
func (c *Coordinator) armConsumerTimer(g *group, m *consumerMember, kind timerKind, d time.Duration, seq uint64, current func(*consumerMember) uint64) {
	gid, mid, p := g.id, m.id, g.partition
	c.sched.after(timerKey{kind, gid, mid}, d, func() {
		topics := c.topics()
		c.write(c.bgCtx, p, func() []Record {
			g := c.groups[gid]
			if g == nil || g.typ != typeConsumer {
				return nil
			}
			m := g.cg.members[mid]
			if m == nil || current(m) != seq {
				return nil
			}
			if kind == timerConsumerRevoke && m.state != memberUnrevoked {
				return nil
			}
			c.cfg.Logger.Info("consumer group member fenced", "group", gid, "member", mid, "session_expired", kind == timerConsumerSession)
			return c.removeConsumerMember(g, m, topics)
		}, func([]Record, error) {})
	})
}

func (c *Coordinator) cancelConsumerTimers(g *group, m *consumerMember) {
	c.sched.cancel(timerKey{timerConsumerSession, g.id, m.id})
	c.sched.cancel(timerKey{timerConsumerRevoke, g.id, m.id})
}

func (c *Coordinator) dropConsumerTimersLocked(g *group) {
	if g.cg == nil {
		return
	}
	for _, m := range g.cg.members {
		c.cancelConsumerTimers(g, m)
	}
}

func (c *Coordinator) restoreConsumerTimersLocked(g *group) {
	for _, m := range g.cg.members {
		c.armConsumerSession(g, m)
		if m.state == memberUnrevoked {
			c.armConsumerRevoke(g, m)
		}
	}
}

// convertToConsumerLocked turns an empty classic group (offsets only) into
// a consumer group, keeping its offsets.
func (c *Coordinator) convertToConsumerLocked(g *group) {
	for id := range g.pending {
		c.sched.cancel(timerKey{timerPendingMember, g.id, id})
	}
	g.typ = typeConsumer
	g.members = make(map[string]*member)
	g.static = make(map[string]string)
	g.pending = make(map[string]bool)
	g.joinOrder = nil
	g.cg = &consumerGroup{
		members: make(map[string]*consumerMember),
		static:  make(map[string]string),
		target:  make(map[string]assignment),
	}
}
