package log

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// AppendBatches appends bs, whose offsets follow one another from LogEndOffset(), as
// Append would one by one, but each run of them that lands in one segment is written with
// one pwritev and published once: the batches of concurrent producers that queued behind a
// partition's lock reach the file together. It returns how many were appended (a prefix
// of bs: the first error stops it) and, if the flush policy asks for an fsync of those, a
// ticket for SyncThrough, with or without an error. A failed write or roll poisons the log.
func (l *Log) AppendBatches(bs []batch.Batch) (n int, ticket int64, err error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.appendBatchesLocked(bs, false)
}

// appendBatchesLocked is AppendBatches with writeMu held; gaps lets a batch start past its
// predecessor's end (a follower's append of a compacted leader's batches).
func (l *Log) appendBatchesLocked(bs []batch.Batch, gaps bool) (n int, ticket int64, err error) {
	if l.timings.Append != nil {
		defer l.timeAppend(time.Now())
	}
	defer func() {
		if m := l.cfg.FlushIntervalMessages; n > 0 && m > 0 && l.unflushedRecords >= m {
			ticket = l.appendSeq
		}
	}()
	for n < len(bs) {
		if err := l.usableLocked(); err != nil {
			return n, 0, err
		}
		if err := checkAppendAt(bs[n], l.logEndOffset.Load(), gaps); err != nil {
			return n, 0, err
		}
		if l.shouldRoll(l.active(), bs[n]) {
			if err := l.rollLocked(); err != nil {
				return n, 0, l.fail(err)
			}
		}
		s := l.active()
		run := l.runLen(s, bs[n:], gaps)
		if err := l.appendToSegment(s, bs[n:n+run]...); err != nil {
			return n, 0, l.fail(err)
		}
		for _, b := range bs[n : n+run] {
			l.unflushedRecords += int64(b.RecordCount())
		}
		l.appendSeq += int64(run)
		l.logEndOffset.Store(bs[n+run-1].LastOffset() + 1)
		if l.firstUnflushed.IsZero() {
			l.firstUnflushed = l.now()
		}
		n += run
	}
	return n, 0, nil
}

// runLen is how many of bs, the first already checked to fit, go into s without a roll
// and check as appendable.
func (l *Log) runLen(s *segment, bs []batch.Batch, gaps bool) int {
	size, nIdx, nTimes, rb := s.size+int64(len(bs[0])), s.nIndex+1, s.nTimes+1, s.rollBase()
	if s.size == 0 {
		rb = time.UnixMilli(bs[0].MaxTimestamp())
	}
	k := 1
	for ; k < len(bs); k++ {
		b := bs[k]
		// Every batch may add one entry to each index: count it so, to stay on the safe side.
		if checkAppendAt(b, bs[k-1].LastOffset()+1, gaps) != nil || l.shouldRollAt(s, size, nIdx, nTimes, rb, b) {
			break
		}
		size += int64(len(b))
		nIdx++
		nTimes++
	}
	return k
}

// writevAt writes bufs back to back at off: with one pwritev per up to maxIovecs buffers
// on an OS file; on others (the in-memory and fault-injecting files of tests) with one
// WriteAt of a copy, so that they see the same single write.
func writevAt(f vfs.File, bufs []batch.Batch, off int64) error {
	if len(bufs) == 1 {
		_, err := f.WriteAt(bufs[0], off)
		return err
	}
	osf, unpin, ok := vfs.PinOSFile(f, true)
	defer unpin()
	if !ok {
		var all []byte
		for _, b := range bufs {
			all = append(all, b...)
		}
		_, err := f.WriteAt(all, off)
		return err
	}
	rc, err := osf.SyscallConn()
	if err != nil {
		return err
	}
	rest := make([][]byte, len(bufs))
	for i, b := range bufs {
		rest[i] = b
	}
	for len(rest) > 0 {
		iov := rest[:min(len(rest), maxIovecs)]
		var n int
		var werr error
		if err := rc.Control(func(fd uintptr) { n, werr = unix.Pwritev(int(fd), iov, off) }); err != nil {
			return err
		}
		if werr != nil {
			return &os.PathError{Op: "pwritev", Path: osf.Name(), Err: werr}
		}
		off += int64(n)
		// A short write (rare on regular files): drop what went, go on with the rest.
		for n > 0 {
			if n >= len(rest[0]) {
				n -= len(rest[0])
				rest = rest[1:]
			} else {
				rest[0] = rest[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// maxIovecs is Linux's IOV_MAX.
const maxIovecs = 1024
