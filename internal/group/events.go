package group

// The group events an operator wants in the log at INFO, as Kafka's GroupCoordinator
// writes them: a member joining, a rebalance completing (classic: the generation, its
// members and how long the join phase took; KIP-848: the new group epoch, its members
// and the assignor), besides the session expiries and fencings logged where they
// happen. They are written under mu, like Kafka's, and are rare: one per membership
// change.

import (
	"time"
)

func (c *Coordinator) logMemberJoined(g *group, memberID, clientID, clientHost string, instanceID *string, members int) {
	attrs := []any{"group", g.id, "type", g.typ.String(), "member", memberID, "client_id", clientID, "client_host", clientHost, "members", members}
	if instanceID != nil {
		attrs = append(attrs, "group_instance_id", *instanceID)
	}
	c.cfg.Logger.Info("group member joined", attrs...)
}

// logRebalanced logs a classic group's join phase completing at generation g.generation;
// started is when the phase began.
func (c *Coordinator) logRebalanced(g *group, started time.Time) {
	c.cfg.Logger.Info("group rebalanced", "group", g.id, "type", g.typ.String(), "generation", g.generation,
		"members", len(g.members), "protocol", g.protocol, "leader", g.leader, "state", g.state.String(),
		"duration_ms", c.cfg.Now().Sub(started).Milliseconds())
}

// logTarget logs a KIP-848 group's new target assignment at a new group epoch. There
// is no join phase: members move to it one heartbeat at a time.
func (c *Coordinator) logTarget(g *group, took time.Duration) {
	c.cfg.Logger.Info("group rebalanced", "group", g.id, "type", g.typ.String(), "generation", g.cg.epoch,
		"members", len(g.cg.members), "assignor", g.cg.assignor, "assignment_ms", float64(took.Microseconds())/1000)
}
