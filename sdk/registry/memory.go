package registry

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Defaults of the memory registry.
const (
	// DefaultWatchBuffer is how many events a memory watcher queues before it is
	// closed with ErrWatcherOverflow.
	DefaultWatchBuffer = 1024
	// maxReapInterval caps the reaper interval derived from TTLs.
	maxReapInterval = time.Second
	// minReapInterval keeps a tiny TTL from turning the reaper into a busy loop.
	minReapInterval = time.Millisecond
)

// Memory is the built-in in-process registry (name "memory"): a map guarded by a
// mutex, per-node TTLs expired by a background reaper, and watchers fed in order.
//
// Watchers have a bounded queue (WithWatchBuffer): a watcher that falls further
// behind is closed and its Next returns ErrWatcherOverflow once the queued events
// are drained, so Register never blocks and the consumer knows to resync.
type Memory struct {
	now          func() time.Time
	fixedReap    time.Duration // WithReapInterval; 0 derives the interval from TTLs
	watchBuffer  int
	reaperStop   chan struct{} // closed by Close
	reaperKick   chan struct{} // wakes the reaper when its interval shrinks
	reaperExited sync.WaitGroup

	mu         sync.RWMutex
	services   map[string]map[string]*memService // name → version → entry
	watchers   map[*memWatcher]struct{}
	reapEvery  time.Duration // current reaper interval
	reaping    bool          // the reaper goroutine was started
	nextExpiry time.Time     // no node expires before this (zero: none can)
	closed     bool
}

// memService is one registered version: its header (no nodes) and its nodes.
type memService struct {
	header *Service // Name, Version, Metadata, Endpoints; Nodes always nil
	nodes  []memNode
}

// memNode is a node and the time it expires (zero: never).
type memNode struct {
	node    *Node
	expires time.Time
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithReapInterval fixes how often expired nodes are removed. By default it is a
// quarter of the shortest TTL registered, at most 1s.
func WithReapInterval(d time.Duration) MemoryOption {
	return func(m *Memory) {
		if d > 0 {
			m.fixedReap = d
		}
	}
}

// WithWatchBuffer sets how many events each watcher may queue before it is closed
// with ErrWatcherOverflow (default DefaultWatchBuffer, at least 1).
func WithWatchBuffer(n int) MemoryOption {
	return func(m *Memory) { m.watchBuffer = max(n, 1) }
}

// WithClock replaces time.Now for TTL bookkeeping, so tests can move time.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// NewMemory returns an empty memory registry. Call Close to stop its reaper and
// watchers.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		now:         time.Now,
		watchBuffer: DefaultWatchBuffer,
		reaperStop:  make(chan struct{}),
		reaperKick:  make(chan struct{}, 1),
		services:    make(map[string]map[string]*memService),
		watchers:    make(map[*memWatcher]struct{}),
		reapEvery:   maxReapInterval,
	}
	for _, o := range opts {
		o(m)
	}
	if m.fixedReap > 0 {
		m.reapEvery = m.fixedReap
	}
	return m
}

var _ Registry = (*Memory)(nil)

// Name returns "memory".
func (m *Memory) Name() string { return "memory" }

// Register adds svc's nodes to its (name, version), or refreshes them. Each node
// expires ttl after its latest registration (ttl <= 0: never). It emits Create for
// a new version and Update when nodes, metadata or endpoints changed; a pure TTL
// refresh emits nothing.
func (m *Memory) Register(ctx context.Context, svc *Service, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: register: %w", err)
	}
	if err := svc.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("registry: register %q: %w", svc.Name, ErrClosed)
	}
	now := m.now()
	var expires time.Time
	if ttl > 0 {
		expires = now.Add(ttl)
		if m.nextExpiry.IsZero() || expires.Before(m.nextExpiry) {
			m.nextExpiry = expires
		}
		m.startReaperLocked(ttl)
	}
	versions := m.services[svc.Name]
	if versions == nil {
		versions = make(map[string]*memService)
		m.services[svc.Name] = versions
	}
	e := versions[svc.Version]
	created := e == nil
	changed := false
	if created {
		e = &memService{header: header(svc)}
		versions[svc.Version] = e
	} else if !sameHeader(e.header, svc) {
		e.header = header(svc)
		changed = true
	}
	for _, n := range svc.Nodes {
		i := slices.IndexFunc(e.nodes, func(mn memNode) bool { return mn.node.ID == n.ID })
		switch {
		case i < 0:
			e.nodes = append(e.nodes, memNode{node: n.Clone(), expires: expires})
			changed = true
		case !sameNode(e.nodes[i].node, n):
			e.nodes[i] = memNode{node: n.Clone(), expires: expires}
			changed = true
		default:
			e.nodes[i].expires = expires
		}
	}
	switch {
	case created:
		m.emitLocked(Create, e.snapshot(), now)
	case changed:
		m.emitLocked(Update, e.snapshot(), now)
	}
	return nil
}

// Deregister removes the nodes listed in svc (matched by ID) from its version. It
// emits Update if nodes remain and Delete if the version is gone. Deregistering
// nodes that are not registered is not an error.
func (m *Memory) Deregister(ctx context.Context, svc *Service) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: deregister: %w", err)
	}
	if svc == nil || svc.Name == "" {
		return fmt.Errorf("%w: deregister needs a service name", ErrInvalidService)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("registry: deregister %q: %w", svc.Name, ErrClosed)
	}
	e := m.services[svc.Name][svc.Version]
	if e == nil {
		return nil
	}
	gone := e.remove(func(mn memNode) bool {
		return slices.ContainsFunc(svc.Nodes, func(n *Node) bool { return n != nil && n.ID == mn.node.ID })
	})
	m.afterRemovalLocked(e, gone, m.now())
	return nil
}

// GetService returns deep copies of every version of name, sorted by version, or
// an error wrapping ErrNotFound.
func (m *Memory) GetService(ctx context.Context, name string) ([]*Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: get %q: %w", name, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, fmt.Errorf("registry: get %q: %w", name, ErrClosed)
	}
	versions := m.services[name]
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	out := make([]*Service, 0, len(versions))
	for _, e := range versions {
		out = append(out, e.snapshot())
	}
	sortByVersion(out)
	return out, nil
}

// ListServices returns one entry per registered (name, version), sorted, with
// metadata and endpoints but without nodes.
func (m *Memory) ListServices(ctx context.Context) ([]*Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, fmt.Errorf("registry: list: %w", ErrClosed)
	}
	var out []*Service
	for _, versions := range m.services {
		for _, e := range versions {
			out = append(out, e.header.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}

// Watch returns a Watcher that yields every change from now on, in order, until
// ctx ends, Stop is called, the registry is closed or the watcher overflows.
func (m *Memory) Watch(ctx context.Context) (Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: watch: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("registry: watch: %w", ErrClosed)
	}
	w := &memWatcher{m: m, events: make(chan *Event, m.watchBuffer), done: make(chan struct{})}
	m.watchers[w] = struct{}{}
	w.stopOnCtx = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		w.closeLocked(fmt.Errorf("registry: watch: %w", context.Cause(ctx)))
	})
	return w, nil
}

// Close stops the reaper and every watcher; later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.reaperStop)
	for w := range m.watchers {
		w.closeLocked(ErrClosed)
	}
	m.mu.Unlock()
	m.reaperExited.Wait()
	return nil
}

// startReaperLocked starts the reaper on the first TTL and shortens its interval
// when a shorter TTL arrives.
func (m *Memory) startReaperLocked(ttl time.Duration) {
	if m.fixedReap == 0 {
		if d := min(max(ttl/4, minReapInterval), maxReapInterval); d < m.reapEvery {
			m.reapEvery = d
			select {
			case m.reaperKick <- struct{}{}:
			default:
			}
		}
	}
	if !m.reaping {
		m.reaping = true
		m.reaperExited.Add(1)
		go m.reap(m.reapEvery)
	}
}

// reap removes expired nodes every interval until Close.
func (m *Memory) reap(every time.Duration) {
	defer m.reaperExited.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.reaperStop:
			return
		case <-m.reaperKick:
			m.mu.RLock()
			every = m.reapEvery
			m.mu.RUnlock()
			t.Reset(every)
		case <-t.C:
			m.expire()
		}
	}
}

// expire removes every node whose TTL has passed and emits the matching events.
// It scans only when the earliest known expiry is due.
func (m *Memory) expire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.closed || m.nextExpiry.IsZero() || now.Before(m.nextExpiry) {
		return
	}
	m.nextExpiry = time.Time{}
	for _, name := range slices.Sorted(maps.Keys(m.services)) {
		versions := m.services[name]
		for _, v := range slices.Sorted(maps.Keys(versions)) {
			e := versions[v]
			gone := e.remove(func(mn memNode) bool {
				if mn.expires.IsZero() {
					return false
				}
				if now.Before(mn.expires) {
					if m.nextExpiry.IsZero() || mn.expires.Before(m.nextExpiry) {
						m.nextExpiry = mn.expires
					}
					return false
				}
				return true
			})
			m.afterRemovalLocked(e, gone, now)
		}
	}
}

// afterRemovalLocked drops an emptied version and emits Update or Delete for the
// nodes that went away.
func (m *Memory) afterRemovalLocked(e *memService, gone []*Node, now time.Time) {
	if len(gone) == 0 {
		return
	}
	if len(e.nodes) > 0 {
		m.emitLocked(Update, e.snapshot(), now)
		return
	}
	versions := m.services[e.header.Name]
	delete(versions, e.header.Version)
	if len(versions) == 0 {
		delete(m.services, e.header.Name)
	}
	deleted := e.header.Clone()
	deleted.Nodes = gone
	m.emitLocked(Delete, deleted, now)
}

// emitLocked queues a copy of the event on every watcher, in order, never blocking.
func (m *Memory) emitLocked(t EventType, svc *Service, now time.Time) {
	for w := range m.watchers {
		w.pushLocked(&Event{Type: t, Service: svc.Clone(), Timestamp: now})
	}
}

// remove drops the nodes matching gone and returns them.
func (e *memService) remove(gone func(memNode) bool) []*Node {
	var removed []*Node
	e.nodes = slices.DeleteFunc(e.nodes, func(mn memNode) bool {
		if gone(mn) {
			removed = append(removed, mn.node)
			return true
		}
		return false
	})
	return removed
}

// snapshot returns a deep copy of the version with its nodes.
func (e *memService) snapshot() *Service {
	s := e.header.Clone()
	s.Nodes = make([]*Node, len(e.nodes))
	for i, mn := range e.nodes {
		s.Nodes[i] = mn.node.Clone()
	}
	return s
}

// header copies svc without its nodes.
func header(svc *Service) *Service {
	h := *svc
	h.Nodes = nil
	return h.Clone()
}

// sameHeader reports whether a and b have equal metadata and endpoints.
func sameHeader(a, b *Service) bool {
	return maps.Equal(a.Metadata, b.Metadata) &&
		slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y *Endpoint) bool {
			if x == nil || y == nil {
				return x == y
			}
			return x.Name == y.Name && x.Request == y.Request && x.Response == y.Response &&
				maps.Equal(x.Metadata, y.Metadata)
		})
}

// sameNode reports whether a and b are the same node with the same data.
func sameNode(a, b *Node) bool {
	return a.ID == b.ID && a.Address == b.Address && maps.Equal(a.Metadata, b.Metadata)
}

// sortByVersion orders versions of one service by their version string.
func sortByVersion(s []*Service) {
	slices.SortFunc(s, func(a, b *Service) int { return cmp.Compare(a.Version, b.Version) })
}

// memWatcher is a Memory watcher: a bounded queue filled under the registry lock.
type memWatcher struct {
	m          *Memory
	events     chan *Event
	done       chan struct{} // closed when the watcher ends; err says why
	err        error
	closed     bool // guarded by m.mu
	overflowed bool // set before done is closed
	stopOnCtx  func() bool
}

// Next returns the next event. After Stop, ctx end or Close it returns the
// reason at once; after an overflow it first drains the queued events.
func (w *memWatcher) Next() (*Event, error) {
	select {
	case ev := <-w.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-w.events:
		return ev, nil
	case <-w.done:
		if w.overflowed {
			select {
			case ev := <-w.events:
				return ev, nil
			default:
			}
		}
		return nil, w.err
	}
}

// Stop ends the watcher; Next returns ErrWatcherStopped.
func (w *memWatcher) Stop() {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.closeLocked(ErrWatcherStopped)
}

// pushLocked queues ev, or closes the watcher with ErrWatcherOverflow when full.
func (w *memWatcher) pushLocked(ev *Event) {
	select {
	case w.events <- ev:
	default:
		w.overflowed = true
		w.closeLocked(fmt.Errorf("%w (queue of %d full)", ErrWatcherOverflow, cap(w.events)))
	}
}

// closeLocked ends the watcher once, recording why.
func (w *memWatcher) closeLocked(err error) {
	if w.closed {
		return
	}
	w.closed = true
	w.err = err
	close(w.done)
	delete(w.m.watchers, w)
	if w.stopOnCtx != nil {
		w.stopOnCtx()
	}
}
