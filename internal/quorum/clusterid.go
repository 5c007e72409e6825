package quorum

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// rejected records that peer id answered this node's frames INCONSISTENT_CLUSTER_ID (its
// cluster is cluster). Once a majority of the configured voters (controller.quorum.voters)
// have, the node's data dir belongs to another cluster than the quorum it is configured
// for: it stops, as a Kafka node answered INCONSISTENT_CLUSTER_ID by its voters does. One
// peer alone is not enough, nor are nodes that are not configured voters: that peer may
// be the stray node (the quorum's members then reject it, not the other way round).
func (c *core) rejected(id uint64, cluster string) {
	if c.err != nil {
		return
	}
	if _, voter := c.cfg.Voters[id]; !voter || id == c.id {
		return
	}
	c.rejections[id] = cluster
	if 2*len(c.rejections) <= len(c.cfg.Voters) {
		return
	}
	ids := slices.Sorted(maps.Keys(c.rejections))
	clusters := make([]string, 0, len(ids))
	for _, v := range ids {
		if q := fmt.Sprintf("%q", c.rejections[v]); !slices.Contains(clusters, q) {
			clusters = append(clusters, q)
		}
	}
	c.fail(fmt.Errorf("%w: voters %v of controller.quorum.voters are of cluster %s, but this node's "+
		"metadata log in %s is of cluster %q: its data dir belongs to another cluster (start it on an "+
		"empty data dir to join this quorum, or point it at its own cluster's voters)",
		ErrInconsistentClusterID, ids, strings.Join(clusters, ", "), c.dir, c.cfg.ClusterID))
}
