package handler

// The one place where errors become Kafka error codes.

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/quorum"
)

// codeOf maps an error from any layer to a Kafka error code (0 for nil).
func codeOf(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	switch {
	case errors.Is(err, batch.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, batch.ErrCorrupt), errors.Is(err, batch.ErrUnsupportedMagic):
		return kerr.CorruptMessage.Code
	case errors.Is(err, batch.ErrInvalidRecord), errors.Is(err, partition.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, partition.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, partition.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, partition.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, partition.ErrUnknownProducerID):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, partition.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, partition.ErrUnknownLeaderEpoch):
		return kerr.UnknownLeaderEpoch.Code
	case errors.Is(err, partition.ErrClosed), errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrNotFollower),
		errors.Is(err, partition.ErrUnknownReplica), errors.Is(err, partition.ErrStaleBrokerEpoch):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, partition.ErrNotEnoughReplicasAfterAppend):
		return kerr.NotEnoughReplicasAfterAppend.Code
	case errors.Is(err, partition.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, partition.ErrAckTimeout), errors.Is(err, partition.ErrTooManyAckWaiters):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, log.ErrStorage):
		// A failed write or fsync took the log (and its log dir) offline.
		return kerr.KafkaStorageError.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrCorruptBelowRecoveryPoint):
		return kerr.KafkaStorageError.Code // a log recovery refused to open
	case errors.Is(err, config.ErrInvalid):
		return kerr.InvalidConfig.Code
	// The metadata quorum. A change proposed on a node that does not lead it, or whose
	// leader stepped down before it committed (it may commit anyway), or while the member
	// closes: NOT_CONTROLLER, which clients retry on the controller Metadata names.
	case errors.Is(err, quorum.ErrNotLeader), errors.Is(err, quorum.ErrClosed):
		return kerr.NotController.Code
	case errors.Is(err, quorum.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, quorum.ErrProposalDropped), errors.Is(err, quorum.ErrConfChangeInProgress),
		errors.Is(err, quorum.ErrNotCaughtUp):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, quorum.ErrDuplicateVoter):
		return kerr.DuplicateVoter.Code
	case errors.Is(err, quorum.ErrEntryTooLarge), errors.Is(err, quorum.ErrAlreadyMember):
		return kerr.InvalidRequest.Code
	case errors.Is(err, quorum.ErrVoterNotFound), errors.Is(err, quorum.ErrLastVoter):
		return kerr.VoterNotFound.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS),
		errors.Is(err, syscall.EDQUOT), errors.Is(err, metadata.ErrStorage):
		// The disk, not the request: Kafka's answer for a failing log directory.
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// errMsg is the message for a response's error_message field: nil when there is no error.
func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	// An error wrapping a Kafka error (fmt.Errorf("%w: ...", kerr.X)) renders the code's
	// name and generic description first; Kafka's error_message is only the detail,
	// and none when there is no more to say than the code does.
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if rest, ok := strings.CutPrefix(s, ke.Error()); ok {
			s = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
		}
		if s == "" {
			return nil
		}
	}
	return &s
}
