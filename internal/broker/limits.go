package broker

// Limits on what one node holds: open data files (vltava.log.max.open.files) and hosted
// partitions (vltava.max.broker.partitions), plus Kafka's bound on the records of one
// metadata change. Kafka has keys for none of the first two; they are Vltava's.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// maxRecordsPerChange is Kafka's QuorumController.MAX_RECORDS_PER_USER_OP: a request
// whose change would take more metadata records (a topic record, one per partition and
// one per config) is refused whole with POLICY_VIOLATION, as Kafka does.
const maxRecordsPerChange = 10000

// errExcessivelyLarge is Kafka's answer to such a request, word for word.
var errExcessivelyLarge = kafkaErr(kerr.PolicyViolation, "Unable to perform excessively large batch operation.")

// minOpenFiles is the least vltava.log.max.open.files resolves to: below it, files
// would be closed and reopened on nearly every operation.
const minOpenFiles = 64

// openFilesLimit resolves vltava.log.max.open.files: 0 is half of the soft open-file
// limit of the process (Go raises it to the hard limit at start), leaving the rest for
// sockets and files lent to sendfile.
func openFilesLimit(cfg config.Broker) int {
	n, _ := strconv.Atoi(cfg.Values["vltava.log.max.open.files"])
	if n <= 0 {
		n = int(min(processFileLimit()/2, 1<<30))
	}
	return max(n, minOpenFiles)
}

func maxBrokerPartitions(cfg config.Broker) int64 {
	n, err := strconv.ParseInt(cfg.Values["vltava.max.broker.partitions"], 10, 64)
	if err != nil || n <= 0 {
		return 20000
	}
	return n
}

// hostedPartitions counts the partitions im places on node.
func hostedPartitions(im *metadata.Image, node int32) int64 {
	var n int64
	for t := range im.Topics() {
		for i := range t.Partitions {
			if t.Partitions[i].HasReplica(node) {
				n++
			}
		}
	}
	return n
}

// checkPartitionBudget refuses adding more partitions than vltava.max.broker.partitions
// allows, counting those the image places on this node and those the change adds before.
func (b *Broker) checkPartitionBudget(im *metadata.Image, pending, more int64) error {
	limit := maxBrokerPartitions(b.cfg)
	if have := hostedPartitions(im, b.cfg.NodeID) + pending; have+more > limit {
		return kafkaErr(kerr.PolicyViolation, "this broker hosts %d partitions; %d more would pass vltava.max.broker.partitions=%d", have, more, limit)
	}
	return nil
}

func describeFileLimit(n int) string {
	return fmt.Sprintf("%d (process limit %d)", n, processFileLimit())
}
