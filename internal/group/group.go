package group

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupType is which protocol a group speaks. A group ID names one group of
// one type; an empty group (only offsets) may change type.
type groupType uint8

const (
	typeClassic  groupType = iota // JoinGroup/SyncGroup, and simple consumers that only commit
	typeConsumer                  // KIP-848 ConsumerGroupHeartbeat
)

func (t groupType) String() string {
	if t == typeConsumer {
		return "consumer"
	}
	return "classic"
}

// classicState is the classic group state machine of Kafka's ClassicGroup:
//
//	Empty --join--> PreparingRebalance --all joined or timeout--> CompletingRebalance
//	CompletingRebalance --leader's SyncGroup stored--> Stable
//	Stable/CompletingRebalance --join, leave, expiry--> PreparingRebalance
//	PreparingRebalance --nobody rejoined--> Empty
//
// Dead is only ever reported, for groups that do not exist (or were deleted).
type classicState uint8

const (
	stateEmpty classicState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s classicState) String() string {
	switch s {
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	case stateDead:
		return "Dead"
	default:
		return "Empty"
	}
}

// offsetCommit is one committed offset.
type offsetCommit struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
}

// group is one group, classic or consumer, with its committed offsets.
type group struct {
	id        string
	partition int32 // of __consumer_offsets
	typ       groupType
	offsets   map[string]map[int32]offsetCommit // topic -> partition -> offset
	// pendingTxn holds offsets staged by TxnOffsetCommit, by producer ID,
	// until CompleteTxn; see txn.go.
	pendingTxn map[int64]map[string]map[int32]offsetCommit

	// Classic protocol state.
	state        classicState
	stateTime    time.Time // when state was entered (Kafka's currentStateTimestamp)
	protocolType string
	protocol     string // selected for the current generation
	generation   int32
	leader       string
	members      map[string]*member
	joinOrder    []string          // member IDs in the order they joined; the leader is the first still present
	static       map[string]string // group.instance.id -> member ID
	pending      map[string]bool   // member IDs handed out with MEMBER_ID_REQUIRED, not yet joined
	joinSeq      uint64            // token of the armed join timer
	initialDelay *initialDelay     // set while the first join phase of an empty group is delayed
	syncing      bool              // the leader's assignment is being stored
	pendingSync  map[string]bool   // members of this generation that have not sent SyncGroup

	// KIP-848 state, nil for classic groups.
	cg *consumerGroup
}

// initialDelay tracks group.initial.rebalance.delay.ms: the join phase of a
// new group waits delay and, while new members keep arriving, waits again,
// up to the rebalance timeout in total.
type initialDelay struct {
	remaining time.Duration
	newMember bool
}

// member is a classic group member.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	joinCh      chan *kmsg.JoinGroupResponse // non-nil while awaiting the join phase's end
	joinVersion int16
	syncCh      chan *kmsg.SyncGroupResponse // non-nil while awaiting the leader's assignment
	syncVersion int16
	hbSeq       uint64 // token of the armed session timer
	lastSeen    time.Time
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether protos are exactly m's protocols, in order,
// with the same metadata: a rejoin that changes nothing need not rebalance.
func (m *member) sameProtocols(protos []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protos, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func (c *Coordinator) newClassicGroup(id string) *group {
	g := &group{
		id:        id,
		partition: c.PartitionFor(id),
		typ:       typeClassic,
		offsets:   make(map[string]map[int32]offsetCommit),
		state:     stateEmpty,
		stateTime: c.cfg.Now(),
		members:   make(map[string]*member),
		static:    make(map[string]string),
		pending:   make(map[string]bool),
	}
	c.groups[id] = g
	return g
}

func (g *group) setOffset(topic string, partition int32, o offsetCommit) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = make(map[int32]offsetCommit)
		g.offsets[topic] = ps
	}
	ps[partition] = o
}

func (g *group) deleteOffset(topic string, partition int32) {
	ps := g.offsets[topic]
	delete(ps, partition)
	if len(ps) == 0 {
		delete(g.offsets, topic)
	}
}

func (g *group) offsetTombstones() []Record {
	var recs []Record
	for t, ps := range g.offsets {
		for p := range ps {
			recs = append(recs, Record{Key: offsetKey(g.id, t, p)})
		}
	}
	return recs
}

func (g *group) addMember(m *member) {
	g.members[m.id] = m
	g.joinOrder = append(g.joinOrder, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" || g.members[g.leader] == nil {
		g.leader = m.id
	}
}

// isEmpty reports whether the group has no live members of either protocol.
func (g *group) isEmpty() bool {
	if g.typ == typeConsumer {
		return g.cg == nil || len(g.cg.members) == 0
	}
	return len(g.members) == 0
}

// stateString is the state ListGroups and the Describe APIs report.
func (g *group) stateString() string {
	if g.typ == typeConsumer {
		return g.cg.state().String()
	}
	return g.state.String()
}

func msTime(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
