// partition.go is the list of `vltava partition` subcommands.

package cli

// partitionCommands are the tools that act on partitions' replicas: moving them
// (partition_reassign.go) and electing their leaders (partition_elect.go).
func partitionCommands() []subcommand {
	return []subcommand{
		{name: "reassign", summary: "move partition replicas between brokers: --generate, --execute, --verify, --cancel, --list (as kafka-reassign-partitions)", run: Env.partitionReassign},
		{name: "elect-leaders", summary: "elect preferred or unclean leaders (kafka-leader-election)", run: Env.partitionElectLeaders},
	}
}
