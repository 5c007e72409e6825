package replication

// The thin part: a goroutine per source broker that asks its Fetcher for the next
// request, sends it over the Transport, and hands the answer back. A Manager keeps one
// Driver per source broker and moves partitions between them as leaders change.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transport sends a request to a broker over the inter-broker listener and returns its
// response (a kgo client's Broker(id).Request does this in the node).
type Transport interface {
	Request(ctx context.Context, broker int32, req kmsg.Request) (kmsg.Response, error)
}

// Releaser is a Transport whose responses may hold a buffer it reuses: the Driver calls
// Release with each response once it has applied it (or given it up). Nothing the
// Fetcher does keeps a slice of a response past Handle: the records are appended to
// the local log before it returns.
type Releaser interface {
	Release(broker int32, resp kmsg.Response)
}

// Driver runs one Fetcher. Its methods are safe for concurrent use.
type Driver struct {
	transport Transport
	now       func() time.Time

	mu   sync.Mutex
	f    *Fetcher
	wake chan struct{} // signalled when partitions change; buffered 1

	cancel context.CancelFunc
	done   chan struct{}
}

// NewDriver starts fetching from f's source broker over t; Close stops it.
func NewDriver(f *Fetcher, t Transport, now func() time.Time) *Driver {
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{transport: t, now: now, f: f, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go d.run(ctx)
	return d
}

// Add follows a partition (see Fetcher.Add).
func (d *Driver) Add(k Key, topicID [16]byte, local Local, leaderEpoch int32) {
	d.mu.Lock()
	d.f.Add(k, topicID, local, leaderEpoch)
	d.mu.Unlock()
	d.signal()
}

// Remove stops following a partition; once it returns, no response is applied to it.
func (d *Driver) Remove(k Key) {
	d.mu.Lock()
	d.f.Remove(k)
	d.mu.Unlock()
	d.signal()
}

// Len is how many partitions the driver's fetcher follows.
func (d *Driver) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Len()
}

// Status returns a partition's fetch state.
func (d *Driver) Status(k Key) (Status, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Status(k, d.now())
}

// Close stops the driver and waits for its goroutine; a request in flight is cancelled.
func (d *Driver) Close() {
	d.cancel()
	<-d.done
}

func (d *Driver) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Driver) release(source int32, resp kmsg.Response) {
	if r, ok := d.transport.(Releaser); ok && resp != nil {
		r.Release(source, resp)
	}
}

func (d *Driver) run(ctx context.Context) {
	defer close(d.done)
	for ctx.Err() == nil {
		d.mu.Lock()
		req, wakeAt := d.f.Next(d.now())
		source := d.f.Source()
		d.mu.Unlock()
		if req == nil {
			var timer *time.Timer
			var fire <-chan time.Time
			if !wakeAt.IsZero() {
				timer = time.NewTimer(wakeAt.Sub(d.now()))
				fire = timer.C
			}
			select {
			case <-ctx.Done():
			case <-d.wake:
			case <-fire:
			}
			if timer != nil {
				timer.Stop()
			}
			continue
		}
		resp, err := d.transport.Request(ctx, source, req)
		if ctx.Err() != nil {
			d.release(source, resp)
			return
		}
		d.mu.Lock()
		d.f.Handle(req, resp, err, d.now())
		d.mu.Unlock()
		d.release(source, resp)
	}
}

// Manager keeps a Driver per source broker (Kafka's ReplicaFetcherManager with
// num.replica.fetchers = 1) and the partition each follows where.
type Manager struct {
	cfg       Config
	transport Transport
	now       func() time.Time

	mu      sync.Mutex
	drivers map[int32]*Driver
	leader  map[Key]int32
}

// NewManager returns a manager whose fetchers use cfg and t.
func NewManager(cfg Config, t Transport, now func() time.Time) *Manager {
	return &Manager{cfg: cfg, transport: t, now: now, drivers: map[int32]*Driver{}, leader: map[Key]int32{}}
}

// Follow makes the partition fetch from leader in leaderEpoch (after BecomeFollower on
// it), moving it from the fetcher of a previous leader.
func (m *Manager) Follow(k Key, topicID [16]byte, local Local, leader, leaderEpoch int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.leader[k]; ok && prev != leader {
		m.removeLocked(k, prev)
	}
	d := m.drivers[leader]
	if d == nil {
		d = NewDriver(NewFetcher(m.cfg, leader), m.transport, m.now)
		m.drivers[leader] = d
	}
	m.leader[k] = leader
	d.Add(k, topicID, local, leaderEpoch)
}

// SetBrokerEpoch records this broker's epoch (its registration's) for the fetches from
// now on (KIP-903's ReplicaState); the leader checks it before it lets this broker join
// an ISR.
func (m *Manager) SetBrokerEpoch(epoch int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.BrokerEpoch == epoch {
		return
	}
	m.cfg.BrokerEpoch = epoch
	for _, d := range m.drivers {
		d.mu.Lock()
		d.f.SetBrokerEpoch(epoch)
		d.mu.Unlock()
	}
}

// Unfollow stops fetching the partition (it became leader, or was deleted).
func (m *Manager) Unfollow(k Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.leader[k]; ok {
		m.removeLocked(k, prev)
	}
}

func (m *Manager) removeLocked(k Key, source int32) {
	delete(m.leader, k)
	d := m.drivers[source]
	if d == nil {
		return
	}
	d.Remove(k)
	if d.Len() == 0 {
		d.Close()
		delete(m.drivers, source)
	}
}

// Status returns a partition's fetch state and the broker it fetches from.
func (m *Manager) Status(k Key) (Status, int32, bool) {
	m.mu.Lock()
	src, ok := m.leader[k]
	d := m.drivers[src]
	m.mu.Unlock()
	if !ok || d == nil {
		return Status{}, -1, false
	}
	s, ok := d.Status(k)
	return s, src, ok
}

// Close stops every fetcher.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, d := range m.drivers {
		d.Close()
		delete(m.drivers, id)
	}
	clear(m.leader)
}
