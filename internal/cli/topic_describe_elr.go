// topic_describe_elr.go is where `vltava topic describe` gets KIP-966's eligible leader
// replicas and last known ELR: from DescribeTopicPartitions, which Kafka 3.8+ and Vltava
// serve, paged as Kafka's admin client pages it. kadm does not send it, so it goes raw.
package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionELR is one partition as DescribeTopicPartitions described it: its leader,
// replicas, ISR and offline replicas, and its eligible leader replicas and last known ELR.
type partitionELR struct {
	leader, leaderEpoch    int32
	replicas, isr, offline []int32
	elr, lastKnown         []int32
}

// topicsELR is the ELR of each described partition by topic and partition; a nil one
// means the cluster does not serve DescribeTopicPartitions, and a partition missing from
// a non-nil one was not described (Kafka's tools print N/A for it).
type topicsELR map[string]map[int32]partitionELR

func (e topicsELR) of(topic string, partition int32) (partitionELR, bool) {
	p, ok := e[topic][partition]
	return p, ok
}

// describeELR asks for topics' partitions with DescribeTopicPartitions, following
// NextCursor until the answer is whole. It returns nil and no error if the brokers'
// ApiVersions leave the API out (a cluster older than Kafka 3.8). Topics answered with
// an error are left out.
func describeELR(ctx context.Context, cl *kgo.Client, topics []string) (topicsELR, error) {
	if len(topics) == 0 { // an empty list would mean every topic
		return topicsELR{}, nil
	}
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, name := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	out := topicsELR{}
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			// kgo's words for an API the brokers' ApiVersions leaves out.
			if strings.Contains(err.Error(), "broker is too old") {
				return nil, nil
			}
			return nil, err
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 || rt.Topic == nil {
				continue
			}
			ps := out[*rt.Topic]
			if ps == nil {
				ps = map[int32]partitionELR{}
				out[*rt.Topic] = ps
			}
			for _, p := range rt.Partitions {
				ps[p.Partition] = partitionELR{leader: p.LeaderID, leaderEpoch: p.LeaderEpoch, replicas: p.Replicas,
					isr: p.ISR, offline: p.OfflineReplicas, elr: p.EligibleLeaderReplicas, lastKnown: p.LastKnownELR}
			}
		}
		next := resp.NextCursor
		if next == nil {
			return out, nil
		}
		// Pages move forward (topics sorted by name, partitions by index); a cursor that
		// does not would page forever.
		if c := req.Cursor; c != nil && (next.Topic < c.Topic || next.Topic == c.Topic && next.Partition <= c.Partition) {
			return nil, fmt.Errorf("DescribeTopicPartitions: the next cursor %s/%d does not move past %s/%d", next.Topic, next.Partition, c.Topic, c.Partition)
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: next.Topic, Partition: next.Partition}
	}
}

// overlay replaces the leader, replicas, ISR and offline replicas of every partition of
// topics that DescribeTopicPartitions described with what it said, so that a line shows
// one moment, not Metadata's beside a later ELR. A partition only Metadata listed (one
// created between the two requests) keeps Metadata's.
func (e topicsELR) overlay(topics kadm.TopicDetails) {
	for name, td := range topics {
		for i, pd := range td.Partitions {
			p, ok := e.of(name, i)
			if !ok {
				continue
			}
			pd.Leader, pd.LeaderEpoch, pd.Replicas, pd.ISR, pd.OfflineReplicas = p.leader, p.leaderEpoch, p.replicas, p.isr, p.offline
			td.Partitions[i] = pd
		}
	}
}

// elrIDs prints an ELR list as kafka-topics.sh 4.x does: comma-separated, empty for an
// empty list, N/A if the partition was not described.
func elrIDs(ids []int32, described bool) string {
	if !described {
		return "N/A"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}
