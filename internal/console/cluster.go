// cluster.go is GET /api/cluster: the brokers (DescribeCluster, or Metadata where the
// cluster does not answer it), what each leads and hosts, their log dirs' sizes, and the
// metadata quorum (DescribeQuorum, when the cluster answers it).
package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic is KRaft's metadata log, the partition DescribeQuorum describes.
const metadataTopic = "__cluster_metadata"

type clusterView struct {
	ClusterID  string       `json:"clusterId"`
	Controller int32        `json:"controller"` // -1: none known
	Brokers    []brokerView `json:"brokers"`
	// BrokersFrom says which API listed the brokers: DescribeCluster or Metadata.
	BrokersFrom string `json:"brokersFrom"`

	Quorum *quorumView `json:"quorum"`
	// QuorumUnavailable says why there is no quorum to show.
	QuorumUnavailable string `json:"quorumUnavailable,omitempty"`

	Topics          int    `json:"topics"`
	Partitions      int    `json:"partitions"`
	UnderReplicated int    `json:"underReplicated"` // ISR smaller than the replicas
	Offline         int    `json:"offline"`         // no leader
	SizeBytes       *int64 `json:"sizeBytes"`       // every replica in every log dir; null if unknown
	LogDirsError    string `json:"logDirsError,omitempty"`
	Version         string `json:"version"` // the console's
}

type brokerView struct {
	ID         int32        `json:"id"`
	Host       string       `json:"host"`
	Port       int32        `json:"port"`
	Rack       *string      `json:"rack"`
	Fenced     bool         `json:"fenced"`
	Controller bool         `json:"controller"`
	Leaders    int          `json:"leaders"`  // partitions this broker leads
	Replicas   int          `json:"replicas"` // partition replicas it hosts
	SizeBytes  *int64       `json:"sizeBytes"`
	LogDirs    []logDirView `json:"logDirs"`
}

type logDirView struct {
	Dir         string `json:"dir"`
	SizeBytes   int64  `json:"sizeBytes"`
	TotalBytes  int64  `json:"totalBytes"`  // the volume's size; -1 unreported
	UsableBytes int64  `json:"usableBytes"` // free space on the volume; -1 unreported
	Error       string `json:"error,omitempty"`
}

type quorumView struct {
	LeaderID      int32          `json:"leaderId"`
	LeaderEpoch   int32          `json:"leaderEpoch"`
	HighWatermark int64          `json:"highWatermark"`
	Voters        []quorumMember `json:"voters"`
	Observers     []quorumMember `json:"observers"`
}

type quorumMember struct {
	ID                    int32 `json:"id"`
	LogEndOffset          int64 `json:"logEndOffset"`
	Lag                   int64 `json:"lag"`                   // the high watermark less this replica's log end, at least 0
	LastFetchTimestamp    int64 `json:"lastFetchTimestamp"`    // ms; -1 unknown
	LastCaughtUpTimestamp int64 `json:"lastCaughtUpTimestamp"` // ms; -1 unknown
}

func (c *Console) getCluster(ctx context.Context, _ *http.Request) (any, error) {
	meta, err := c.adm.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	v := &clusterView{ClusterID: meta.Cluster, Controller: meta.Controller, BrokersFrom: "Metadata", Version: c.opts.Version}
	byID := map[int32]*brokerView{}
	add := func(b brokerView) {
		b.LogDirs = []logDirView{}
		v.Brokers = append(v.Brokers, b)
	}
	if dc, err := c.describeCluster(ctx); err == nil {
		v.BrokersFrom = "DescribeCluster"
		v.ClusterID, v.Controller = dc.ClusterID, dc.ControllerID
		for _, b := range dc.Brokers {
			add(brokerView{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.IsFenced})
		}
	} else {
		for _, b := range meta.Brokers {
			add(brokerView{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
	}
	slices.SortFunc(v.Brokers, func(a, b brokerView) int { return int(a.ID) - int(b.ID) })
	for i := range v.Brokers {
		b := &v.Brokers[i]
		b.Controller = b.ID == v.Controller
		byID[b.ID] = b
	}
	for _, t := range meta.Topics {
		if t.Err != nil {
			continue
		}
		v.Topics++
		for _, p := range t.Partitions {
			v.Partitions++
			if b := byID[p.Leader]; b != nil {
				b.Leaders++
			}
			if p.Leader < 0 {
				v.Offline++
			}
			if len(p.ISR) < len(p.Replicas) {
				v.UnderReplicated++
			}
			for _, r := range p.Replicas {
				if b := byID[r]; b != nil {
					b.Replicas++
				}
			}
		}
	}

	// Sizes are best effort: a cluster that refuses DescribeLogDirs still has brokers.
	dirs, err := c.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil && len(dirs) == 0 {
		v.LogDirsError = err.Error()
	} else {
		var total int64
		dirs.Each(func(d kadm.DescribedLogDir) {
			b := byID[d.Broker]
			if b == nil {
				return
			}
			ld := logDirView{Dir: d.Dir, TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes}
			if d.Err != nil {
				ld.Error = d.Err.Error()
			} else {
				ld.SizeBytes = d.Size()
				total += ld.SizeBytes
				size := ld.SizeBytes
				if b.SizeBytes != nil {
					size += *b.SizeBytes
				}
				b.SizeBytes = &size
			}
			b.LogDirs = append(b.LogDirs, ld)
		})
		for i := range v.Brokers {
			slices.SortFunc(v.Brokers[i].LogDirs, func(a, b logDirView) int { return strings.Compare(a.Dir, b.Dir) })
		}
		v.SizeBytes = &total
	}

	v.Quorum, v.QuorumUnavailable = c.describeQuorum(ctx)
	return v, nil
}

func (c *Console) describeCluster(ctx context.Context) (*kmsg.DescribeClusterResponse, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp, nil
}

// describeQuorum asks for the metadata partition's quorum; the string says why there is
// none when the cluster cannot answer (a ZooKeeper-era Kafka, or a broker such as today's
// Vltava that does not implement DescribeQuorum).
func (c *Console) describeQuorum(ctx context.Context) (*quorumView, string) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		if strings.Contains(err.Error(), "broker is too old") || errors.Is(err, kerr.UnsupportedVersion) {
			return nil, "This cluster does not answer DescribeQuorum (Kafka API key 55), so its metadata quorum cannot be shown"
		}
		return nil, "DescribeQuorum failed: " + err.Error()
	}
	return quorumFrom(resp)
}

// quorumFrom reads the metadata partition's quorum out of a DescribeQuorum answer.
func quorumFrom(resp *kmsg.DescribeQuorumResponse) (*quorumView, string) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, "DescribeQuorum: " + errWithMessage(err, resp.ErrorMessage)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, "DescribeQuorum: " + errWithMessage(err, p.ErrorMessage)
			}
			q := &quorumView{LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark,
				Voters: quorumMembers(p.CurrentVoters, p.HighWatermark), Observers: quorumMembers(p.Observers, p.HighWatermark)}
			return q, ""
		}
	}
	return nil, "DescribeQuorum answered without the metadata partition"
}

func quorumMembers(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, hw int64) []quorumMember {
	out := []quorumMember{}
	for _, r := range rs {
		out = append(out, quorumMember{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset, Lag: max(0, hw-r.LogEndOffset),
			LastFetchTimestamp: r.LastFetchTimestamp, LastCaughtUpTimestamp: r.LastCaughtUpTimestamp})
	}
	slices.SortFunc(out, func(a, b quorumMember) int { return int(a.ID) - int(b.ID) })
	return out
}

func errWithMessage(err error, msg *string) string {
	if msg != nil && *msg != "" {
		return err.Error() + " (" + *msg + ")"
	}
	return err.Error()
}
