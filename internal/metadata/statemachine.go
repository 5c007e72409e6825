package metadata

// StateMachine is the image as the state machine of a replicated metadata log: it has
// the methods internal/quorum drives (Apply, Snapshot, Restore), applies each committed
// entry, a batch, to the image and hands the new image and its delta to a publisher.
//
// Replay is deterministic and total. An entry that does not decode or whose batch
// validation refuses is skipped on every node alike: the image moves to the entry's
// offset unchanged and the refusal is logged (the controller validates before it
// proposes, so this is a bug's trace, not a normal path). Stopping instead would stop
// every node of the cluster on the same committed entry, for good. An entry of a record
// type or version this node cannot read is different: skipping it would leave this node
// with another image than the nodes that can, so Apply returns the error and the quorum
// member stops (it needs a newer Vltava).

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// StateMachine applies a replicated log's entries to the image. Apply, Snapshot and
// Restore are called one at a time (by the quorum member's loop); Image from anywhere.
type StateMachine struct {
	image   atomic.Pointer[Image]
	publish func(*Image, *Delta)
	logger  *slog.Logger
	refused atomic.Int64
}

// NewStateMachine returns a state machine at the empty image. publish, if not nil, is
// called with every new image and the delta to it, in log order, from the caller of
// Apply and Restore.
func NewStateMachine(publish func(*Image, *Delta), logger *slog.Logger) *StateMachine {
	if logger == nil {
		logger = slog.Default()
	}
	sm := &StateMachine{publish: publish, logger: logger}
	sm.image.Store(Empty())
	return sm
}

// Image returns the current image.
func (sm *StateMachine) Image() *Image { return sm.image.Load() }

// Refused returns how many entries were skipped as corrupt or invalid.
func (sm *StateMachine) Refused() int64 { return sm.refused.Load() }

// Apply applies the committed entry at index of term.
func (sm *StateMachine) Apply(index, term uint64, data []byte) error {
	im := sm.image.Load()
	off := Offset{Index: index, Term: term}
	if index <= im.offset.Index || term < im.offset.Term {
		return fmt.Errorf("metadata entry %d (term %d) does not follow the image at %d (term %d)", index, term, im.offset.Index, im.offset.Term)
	}
	rs, err := DecodeBatch(data)
	var next *Image
	var d *Delta
	if err == nil {
		next, d, err = im.Apply(off, rs)
	}
	var unsupported *UnsupportedError
	switch {
	case errors.As(err, &unsupported):
		return fmt.Errorf("metadata entry %d: %w", index, err)
	case err != nil:
		sm.refused.Add(1)
		sm.logger.Error("metadata entry skipped: it does not apply, on any node", "index", index, "term", term, "err", err)
		next = im.WithOffset(off)
		d = newDelta(im.offset)
		d.To = off
	}
	sm.image.Store(next)
	if sm.publish != nil {
		sm.publish(next, d)
	}
	return nil
}

// Snapshot returns the snapshot of the current image and its index.
func (sm *StateMachine) Snapshot() ([]byte, uint64, error) {
	im := sm.image.Load()
	b, err := AppendSnapshot(nil, im)
	return b, im.offset.Index, err
}

// Restore replaces the image with the snapshot's, as of index (empty data: the empty
// image), and publishes it with the delta from the image it replaces.
func (sm *StateMachine) Restore(data []byte, index uint64) error {
	next := Empty().WithOffset(Offset{Index: index})
	if len(data) > 0 {
		im, err := DecodeSnapshot(data)
		if err != nil {
			return fmt.Errorf("metadata snapshot at %d: %w", index, err)
		}
		if im.offset.Index != index {
			return fmt.Errorf("metadata snapshot at %d holds the image at %d", index, im.offset.Index)
		}
		next = im
	}
	old := sm.image.Swap(next)
	if sm.publish != nil {
		sm.publish(next, Diff(old, next))
	}
	return nil
}
