// Storage failures. The first failed write, fsync or directory sync of a log poisons it:
// the error is kept and every later append, flush and read answers it (wrapping
// ErrStorage, which the handler maps to KAFKA_STORAGE_ERROR) until the log is closed and
// opened again, when recovery rescans it from its recovery point. Nothing is retried:
// after a failed fsync Linux may already have dropped the dirty pages and will report
// success for the next fsync, so a retry would "cover" bytes that are gone; after a
// failed or short write the file holds bytes nobody published. etcd's WAL, pebble and
// Kafka all stop there. A poisoned log closes without fsyncs and without the
// clean-shutdown marker, so its next Open scans.
//
// Logs that share a log directory share a DirState: as Kafka's LogDirFailureChannel
// does, the first failure of any of them takes the whole directory offline, every log in
// it answers that error, and the DirState's owner (the broker) is told once.
package log

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrStorage marks the errors of a log whose storage failed (its own write, fsync or
// directory sync, or another log's in the same log directory).
var ErrStorage = errors.New("log storage failed")

// DirState is the health of one log directory, shared by the logs in it.
type DirState struct {
	path   string
	err    atomic.Pointer[error]
	onFail func(path string, err error)
}

// NewDirState returns the state of the log directory at path, online. onFail, if not
// nil, is called once, by the goroutine whose failure took the directory offline; it may
// be called with a log's locks held, so it must not block or call into a log.
func NewDirState(path string, onFail func(path string, err error)) *DirState {
	return &DirState{path: path, onFail: onFail}
}

// Path is the directory's path as given to NewDirState.
func (d *DirState) Path() string { return d.path }

// Err returns the error that took the directory offline, nil while it is online.
func (d *DirState) Err() error {
	if p := d.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Fail takes the directory offline with err unless it is already offline.
func (d *DirState) Fail(err error) {
	err = fmt.Errorf("%w: log dir %s is offline: %w", ErrStorage, d.path, err)
	if d.err.CompareAndSwap(nil, &err) && d.onFail != nil {
		d.onFail(d.path, err)
	}
}

// SetDirState makes l part of the log directory d: a failure of l takes d offline, and
// l answers d's failure. Call it before the log is shared.
func (l *Log) SetDirState(d *DirState) { l.dirState = d }

// Err returns the error that poisoned the log (its own first storage failure, or its log
// directory's), nil while it is healthy.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	if l.dirState != nil {
		return l.dirState.Err()
	}
	return nil
}

// fail poisons the log with err, a failed write, fsync or directory sync, unless it is
// poisoned already, and returns the error the log answers from now on.
func (l *Log) fail(err error) error {
	perr := fmt.Errorf("%w: log %s: %w", ErrStorage, l.dir, err)
	if l.failed.CompareAndSwap(nil, &perr) && l.dirState != nil {
		l.dirState.Fail(fmt.Errorf("log %s: %w", l.dir, err))
	}
	return l.Err()
}

// usableLocked returns why l cannot be written to: closed or poisoned. writeMu is held.
func (l *Log) usableLocked() error {
	if l.closed {
		return errClosed
	}
	return l.Err()
}
