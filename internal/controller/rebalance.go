package controller

// The controller's periodic elections:
//
//   - Leader rebalance (auto.leader.rebalance.enable, default true): every
//     leader.imbalance.check.interval.seconds (300) the controller looks, per broker, at
//     the partitions whose preferred replica (the first) it is; when more than
//     leader.imbalance.per.broker.percentage (10) of them are led by another broker, it
//     elects the preferred replica of each of those where it may lead (in the ISR and
//     active), as Kafka's documentation describes it. (Kafka's KRaft controller elects
//     every such partition, whatever the percentage: 0 here does the same.) At most
//     maxElectionsPerImbalance changes per check; more wait for the next tick.
//   - Unclean elections of leaderless partitions whose topic allows them
//     (unclean.leader.election.enable, e.g. set after the partition lost its leader),
//     every unclean.leader.election.interval.ms (5 minutes), as Kafka's controller does.
//
// Both decisions are pure functions of the image, the settings and the time.

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vltava/vltava/internal/metadata"
)

// maxElectionsPerImbalance bounds the elections of one periodic check (Kafka's
// MAX_ELECTIONS_PER_IMBALANCE).
const maxElectionsPerImbalance = 1000

// rebalanceSettings are the broker's leader.imbalance.* settings.
type rebalanceSettings struct {
	enabled    bool
	interval   time.Duration
	percentage int
	// unclean is unclean.leader.election.interval.ms.
	unclean time.Duration
}

func rebalanceSettingsOf(values map[string]string) rebalanceSettings {
	rs := rebalanceSettings{enabled: true, interval: 300 * time.Second, percentage: 10, unclean: 5 * time.Minute}
	if v, err := strconv.ParseBool(strings.TrimSpace(values["auto.leader.rebalance.enable"])); err == nil {
		rs.enabled = v
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(values["leader.imbalance.check.interval.seconds"]), 10, 64); err == nil && v > 0 {
		rs.interval = time.Duration(v) * time.Second
	}
	if v, err := strconv.Atoi(strings.TrimSpace(values["leader.imbalance.per.broker.percentage"])); err == nil && v >= 0 {
		rs.percentage = v
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(values["unclean.leader.election.interval.ms"]), 10, 64); err == nil && v > 0 {
		rs.unclean = time.Duration(v) * time.Millisecond
	}
	return rs
}

// imbalancedBrokers returns the brokers whose share of preferred partitions led by
// another broker is above percentage, by ID.
func imbalancedBrokers(im *metadata.Image, percentage int) []int32 {
	type counts struct{ preferred, notLed int }
	by := map[int32]*counts{}
	for t := range im.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if len(p.Replicas()) == 0 {
				continue
			}
			pr := p.Replicas()[0]
			c := by[pr]
			if c == nil {
				c = &counts{}
				by[pr] = c
			}
			c.preferred++
			if p.Leader != pr {
				c.notLed++
			}
		}
	}
	var out []int32
	for id, c := range by {
		// notLed/preferred > percentage/100, in integers.
		if c.notLed > 0 && c.notLed*100 > percentage*c.preferred {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// rebalanceRecords returns the preferred-leader elections the rebalance makes on im: for
// the imbalanced brokers' partitions not led by them, where they may lead; at most limit.
func rebalanceRecords(im *metadata.Image, es electionSettings, percentage, limit int) []metadata.Record {
	brokers := imbalancedBrokers(im, percentage)
	if len(brokers) == 0 {
		return nil
	}
	acceptable := func(r int32) bool { return isActive(im.Broker(r)) }
	var out []metadata.Record
	for t := range im.Topics() {
		var te *topicElection
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if len(p.Replicas()) == 0 || p.Leader == p.Replicas()[0] || !slices.Contains(brokers, p.Replicas()[0]) {
				continue
			}
			if te == nil {
				r := es.topic(t)
				te = &r
			}
			ch := te.change(t, i, acceptable, es.elr)
			ch.preferred = true
			// Only a move to the preferred replica: the rebalance does nothing else.
			if rec := ch.build(); rec != nil && rec.Set&metadata.SetLeader != 0 && rec.Leader == p.Replicas()[0] {
				out = append(out, rec)
				if len(out) >= limit {
					return out
				}
			}
		}
	}
	return out
}

// uncleanRecords returns the unclean elections of leaderless partitions whose topic
// allows them, at most limit.
func uncleanRecords(im *metadata.Image, es electionSettings, limit int) []metadata.Record {
	acceptable := func(r int32) bool { return isActive(im.Broker(r)) }
	var out []metadata.Record
	for t := range im.Topics() {
		var te *topicElection
		for i := range t.Partitions {
			if t.Partitions[i].Leader != metadata.NoLeader {
				continue
			}
			if te == nil {
				r := es.topic(t)
				te = &r
			}
			if !te.unclean {
				continue
			}
			ch := te.change(t, i, acceptable, es.elr)
			if rec := ch.build(); rec != nil && rec.Set&metadata.SetLeader != 0 && rec.Leader != metadata.NoLeader {
				out = append(out, rec)
				if len(out) >= limit {
					return out
				}
			}
		}
	}
	return out
}

// periodicElections runs the checks that are due at now, on the active core.
func (c *core) periodicElections() {
	rs := rebalanceSettingsOf(c.cfg.Broker.Values)
	if c.nextRebalance.IsZero() {
		c.nextRebalance = c.now.Add(rs.interval)
	}
	if c.nextUnclean.IsZero() {
		c.nextUnclean = c.now.Add(rs.unclean)
	}
	if !c.now.Before(c.nextRebalance) {
		c.nextRebalance = c.now.Add(rs.interval)
		if rs.enabled {
			recs := rebalanceRecords(c.spec, c.electionSettings(), rs.percentage, maxElectionsPerImbalance)
			if len(recs) >= maxElectionsPerImbalance {
				c.nextRebalance = c.now // more at the next tick
			}
			c.submitElections("leader rebalance", recs)
		}
	}
	if !c.now.Before(c.nextUnclean) {
		c.nextUnclean = c.now.Add(rs.unclean)
		recs := uncleanRecords(c.spec, c.electionSettings(), maxElectionsPerImbalance)
		if len(recs) >= maxElectionsPerImbalance {
			c.nextUnclean = c.now
		}
		if len(recs) > 0 {
			c.logger.Error("controller: unclean leader election for offline partitions; acknowledged records may be lost", "partitions", len(recs))
		}
		c.submitElections("unclean election", recs)
	}
}

func (c *core) submitElections(what string, recs []metadata.Record) {
	if len(recs) == 0 {
		return
	}
	c.logger.Info("controller: "+what, "partitions", len(recs))
	c.submitSplit(recs, func(_ uint64, err error) {
		if err != nil {
			c.logger.Warn("controller: "+what+" failed", "err", err)
		}
	})
}
