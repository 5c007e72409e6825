package server

// QueuedRequests is the number of requests read and not yet being served, across the
// broker (the queued.max.requests slots taken).
func QueuedRequests(s *Server) int64 {
	s.queued.mu.Lock()
	defer s.queued.mu.Unlock()
	return s.queued.max - s.queued.avail
}

// RequestBytesHeld is the request budget (queued.max.request.bytes) taken.
func RequestBytesHeld(s *Server) int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.max - s.budget.avail
}

// OpenConnections is the number of client connections being served.
func OpenConnections(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
