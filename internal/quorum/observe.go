package quorum

// Broker-only nodes join as observers with no operator step. Kafka's observers need no
// membership change: they fetch the log from the leader. etcd raft's leader pushes the
// log instead, and only to the members of its configuration, so an observer must be a
// raft learner, which the leader has to add. Vltava's broker-only node therefore asks:
// while it is no member (or knows no leader), it sends every configured voter (controller.quorum.voters) a
// join request once per election timeout, and the leader adds it with the address it
// gave (its inter-broker listener, where it accepts the quorum's frames) as one
// membership change, as AddObserver does. The leader removes an observer it has not
// heard from for ObserverTimeout (broker.session.timeout.ms), so the learners of stopped
// brokers do not pile up; a broker that comes back simply asks again.
//
// A join request is a MsgHeartbeatResp from a node that is not a member, to a voter,
// whose context is an address list (snapformat.go) holding exactly the sender and its
// address. Raft itself never sends it (a learner's heartbeat responses carry no context,
// and raft ignores responses from nodes it does not track), so the core takes it before
// raft sees it.

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// isMember reports whether id is a voter or an observer of the applied configuration.
func (c *core) isMember(id uint64) bool {
	voters, observers := members(c.conf)
	for _, v := range voters {
		if v == id {
			return true
		}
	}
	for _, o := range observers {
		if o == id {
			return true
		}
	}
	return false
}

// observeTick is called every tick: a node that is not a member asks to join, and a
// leader removes observers gone silent. Both act once per election timeout.
func (c *core) observeTick() {
	election, _ := c.cfg.ticks()
	if c.observeTicks++; c.observeTicks < election {
		return
	}
	c.observeTicks = 0
	// A member that knows no leader asks too: the leader may have removed it while it
	// was stopped (ObserverTimeout), which its own log cannot tell it.
	if addr := c.addr(); addr != "" && (!c.isMember(c.id) || c.leader.LeaderID == 0) {
		ctx := encodePeers(map[uint64]string{c.id: addr})
		var msgs []*raftpb.Message
		for id := range c.cfg.Voters {
			if id != c.id {
				msgs = append(msgs, &raftpb.Message{Type: raftpb.MsgHeartbeatResp.Enum(), To: &id, From: new(c.id), Context: ctx})
			}
		}
		c.log.Debug("metadata log: asking the voters to add this node as an observer", "addr", addr)
		c.tr.Send(msgs)
	}
	if c.state == raft.StateLeader && c.cfg.ObserverTimeout > 0 {
		c.expireObservers()
	}
}

// joinRequest handles m if it is a join request (and reports whether it was): the
// leader adds the sender as an observer; the others ignore it, the sender asking every
// voter.
func (c *core) joinRequest(m *raftpb.Message) bool {
	from := m.GetFrom()
	if m.GetType() != raftpb.MsgHeartbeatResp || len(m.GetContext()) == 0 {
		return false
	}
	if c.state != raft.StateLeader || c.isMember(from) {
		return true // a member hears from the leader anyway
	}
	peers, err := decodePeers(m.GetContext())
	addr, ok := peers[from]
	if err != nil || len(peers) != 1 || !ok {
		c.log.Warn("metadata log: ignoring a bad request to join the quorum", "from", from, "err", err)
		return true
	}
	c.log.Info("metadata log: adding a broker-only node as an observer at its request", "id", from, "addr", addr)
	c.propose(&proposal{cc: &confChangeOp{kind: addObserver, id: from, addr: addr}, done: func(_ uint64, err error) {
		if err != nil {
			c.log.Info("metadata log: adding an observer failed; it will ask again", "id", from, "err", err)
		}
	}})
	return true
}

// expireObservers removes one observer the leader has not heard from for
// ObserverTimeout. An observer it has no contact record for (added under another leader)
// is timed from now.
func (c *core) expireObservers() {
	_, observers := members(c.conf)
	for _, id := range observers {
		ct := c.contacts[id]
		if ct == nil {
			c.contacts[id] = &contact{last: c.now}
			continue
		}
		if ct.last.IsZero() {
			ct.last = c.now
		}
		if c.now.Sub(ct.last) <= c.cfg.ObserverTimeout {
			continue
		}
		c.log.Info("metadata log: removing an observer not heard from", "id", id, "for", c.now.Sub(ct.last).Round(1e6))
		ct.last = c.now // once per timeout, if the removal fails
		c.propose(&proposal{cc: &confChangeOp{kind: removeNode, id: id}, done: func(_ uint64, err error) {
			if err != nil {
				c.log.Info("metadata log: removing a silent observer failed", "id", id, "err", err)
			}
		}})
		return
	}
}
