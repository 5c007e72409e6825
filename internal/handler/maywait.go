package handler

// Which requests may keep the connection busy for a while: a long-poll Fetch, a Produce
// waiting for its fsync or replicas, a JoinGroup waiting for the rebalance, a request
// that changes topics on disk... The connection flushes the responses it holds back
// before serving one of them, so a finished response never waits behind another
// request's wait (a Metadata response pipelined before a long poll leaves at once).
// Only requests answered from memory without waiting are listed as quick; anything
// else, including APIs added later, counts as one that may wait.

// MayWait reports whether a request with this API key may take long to answer.
func (h *Handler) MayWait(key int16) bool {
	switch key {
	case 10, // FindCoordinator
		12, // Heartbeat
		15, // DescribeGroups
		16, // ListGroups
		18, // ApiVersions
		32, // DescribeConfigs
		60, // DescribeCluster
		69: // ConsumerGroupDescribe
		return false
	}
	return true
}
