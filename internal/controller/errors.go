package controller

// Errors and their Kafka codes. Every decision returns errors made by errorf (a Kafka
// code with the message Kafka would send), and codeOf is the one place where the other
// errors this package meets (the quorum's, the metadata's, a context's) become codes.
// The handler's codeOf maps errorf's errors too: they unwrap to their *kerr.Error.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

// apiError is a Kafka error code with the message for the response's error_message.
type apiError struct {
	code *kerr.Error
	msg  string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.code }

// errorf returns an error with Kafka code code and a message.
func errorf(code *kerr.Error, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errNotController is what every API but the raft ones answers on a node that is not
// the active controller.
var errNotController = errorf(kerr.NotController, "this node is not the active controller")

// errExcessivelyLarge is Kafka's answer to a change of more than MaxBatchRecords records.
var errExcessivelyLarge = errorf(kerr.PolicyViolation, "Unable to perform excessively large batch operation.")

// errStale fails a write whose decision was made on a speculative image that an
// earlier write's failure invalidated; the writer skips it without proposing it.
var errStale = errors.New("controller: write decided on a state that was abandoned")

// codeOf maps an error to a Kafka error code (0 for nil).
func codeOf(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	var nl *quorum.NotLeaderError
	switch {
	case errors.As(err, &nl), errors.Is(err, quorum.ErrNotLeader), errors.Is(err, quorum.ErrClosed):
		return kerr.NotController.Code
	case errors.Is(err, quorum.ErrEntryTooLarge), errors.Is(err, metadata.ErrTooLarge):
		return kerr.PolicyViolation.Code
	case errors.Is(err, quorum.ErrProposalDropped), errors.Is(err, quorum.ErrConfChangeInProgress),
		errors.Is(err, quorum.ErrNotCaughtUp), errors.Is(err, errStale),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, quorum.ErrDuplicateVoter):
		return kerr.DuplicateVoter.Code
	case errors.Is(err, quorum.ErrVoterNotFound), errors.Is(err, quorum.ErrLastVoter):
		return kerr.VoterNotFound.Code
	case errors.Is(err, quorum.ErrAlreadyMember):
		return kerr.InvalidRequest.Code
	case errors.Is(err, config.ErrInvalid):
		return kerr.InvalidConfig.Code
	}
	return kerr.UnknownServerError.Code
}

// raftCodeOf is codeOf for the raft APIs (DescribeQuorum, AddRaftVoter,
// RemoveRaftVoter), which Kafka answers NOT_LEADER_OR_FOLLOWER off the leader.
func raftCodeOf(err error) int16 {
	if c := codeOf(err); c != kerr.NotController.Code {
		return c
	}
	return kerr.NotLeaderForPartition.Code
}

// errMsg is the error_message of a response: nil when there is no error.
func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
