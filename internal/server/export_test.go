package server

// RequestBytesHeld is the request budget (queued.max.request.bytes) taken.
func RequestBytesHeld(s *Server) int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.max - s.budget.avail
}
