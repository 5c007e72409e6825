// The produce path's check of a batch, Kafka's LogValidator for v2 batches: the framing,
// then every record, of compressed batches too, in one streaming pass.
package batch

import (
	"fmt"
)

// ValidateOptions are the checks ValidateFull adds to Validate.
type ValidateOptions struct {
	// MaxDecompressed bounds the decompressed size of a compressed batch (ErrTooLarge
	// beyond). Validation streams, so this bounds the work a batch can cause, not memory.
	MaxDecompressed int
	// RequireKeys refuses records with a null key (ErrInvalidRecord), as Kafka does for
	// compacted topics.
	RequireKeys bool
}

// Summary is what validation learned from the records.
type Summary struct {
	// MaxTimestamp is the largest record timestamp, never below -1 (NO_TIMESTAMP), as
	// Kafka's LogValidator computes the max timestamp it writes into the header.
	MaxTimestamp int64
	// MinTimestamp is the smallest record timestamp other than -1 (math.MaxInt64 if
	// none): Kafka checks message.timestamp.before.max.ms on every record but those.
	MinTimestamp int64
}

// ValidateFull is Validate that also walks the records of compressed batches, as Kafka's
// LogValidator does, optionally requires keys, and returns the records' timestamps.
// Uncompressed records are walked in place without allocating; compressed ones are
// streamed through a pooled window within opts.MaxDecompressed (stream.go), so the
// memory a batch costs does not grow with its decompressed size.
//
// For a LogAppendTime batch every record's timestamp is the header's max timestamp.
func ValidateFull(b []byte, opts ValidateOptions) (Summary, error) {
	return validateWindow(b, opts, defaultWindow)
}

// validateWindow is ValidateFull streaming through a window of the given size (tests
// use small ones to make records straddle and exceed it).
func validateWindow(b []byte, opts ValidateOptions, window int) (Summary, error) {
	if err := checkBatch(b); err != nil {
		return Summary{}, err
	}
	bb := Batch(b)
	n := bb.RecordCount()
	st := newRunState()
	if bb.Codec() == None {
		// One walk checks both what Validate checks and the keys. If it refuses the
		// records, the error is the one Validate would give, else the one about keys.
		data := b[HeaderSize:]
		used, ok := validRun(data, n, bb.LastOffsetDelta(), bb.BaseTimestamp(), true, opts.RequireKeys, false, &st)
		if !ok || st.i != n || used != len(data) {
			if err := walk(data, n, bb, nil, true, false); err != nil {
				return Summary{}, err
			}
			if err := walk(data, n, bb, nil, true, opts.RequireKeys); err != nil {
				return Summary{}, err
			}
			return Summary{}, fmt.Errorf("%w: records refused", ErrInvalidRecord)
		}
	} else {
		w := streamWalker{hdr: bb, count: n, codec: bb.Codec(), max: clampMax(opts.MaxDecompressed),
			strict: true, requireKeys: opts.RequireKeys, st: st}
		if err := w.stream(b[HeaderSize:], window); err != nil {
			return Summary{}, err
		}
		st = w.st
	}
	if bb.LogAppendTime() {
		ts := bb.MaxTimestamp()
		st.maxTS, st.minTS = max(ts, -1), ts
		if ts == -1 {
			st.minTS = noMinTimestamp
		}
	}
	return Summary{MaxTimestamp: st.maxTS, MinTimestamp: st.minTS}, nil
}
