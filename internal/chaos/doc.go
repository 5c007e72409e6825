// Package chaos is Vltava's fault battery: real faults against real broker
// processes, and a checker that proves nothing acknowledged is lost.
//
// A run (Run) starts N `vltava server` processes (Node), runs a workload of
// franz-go clients against them (workload.go: idempotent acks=all writers,
// an acks=1 contrast, a committing consumer group, a final read of every
// partition from every node), while the nemesis (nemesis.go) follows a
// Schedule, a pure function of the seed and the options: kill -9, SIGSTOP,
// a full tmpfs disk, torn segment tails (torn.go), and for clusters network
// cuts (netfault.go, nftables) and slow links (proxy.go). Everything the
// clients and the nemesis did is a History; Check finds the anomalies in it
// (checker.go, checker_consumer.go), Measure the throughput and outages
// (availability.go); Report and SVG show the run.
//
// With more than one node a run is a KRaft cluster (cluster.go): combined
// nodes of one static quorum, Kafka's keys, one loopback address and one
// group (for the firewall) per node. A metadata workload (metaworkload.go)
// creates and deletes topics through random nodes; after the heal each
// node's Metadata and the leader claims per epoch (the nodes' election log
// lines, DescribeQuorum) go into the history, and checker_meta.go finds
// lost metadata, divergent images and split brains.
//
// Faults that need root run in the sandbox (sandbox.go): a private mount
// namespace and a fresh network namespace that die with the battery, so no
// tmpfs or firewall rule outlives it.
//
// The checker is the part that must be right, so it is tested on its own:
// checker_test.go plants each anomaly in a clean history and requires that
// exactly that one is reported.
package chaos
