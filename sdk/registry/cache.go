package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the cache.
const (
	DefaultNegativeTTL  = time.Second            // how long "not found" is remembered
	DefaultMaxNegative  = 1024                   // how many "not found" answers are remembered
	DefaultFetchTimeout = 5 * time.Second        // bound on one GetService to the inner registry
	DefaultBackoffBase  = 100 * time.Millisecond // first delay before re-opening a failed watch
	DefaultBackoffMax   = 30 * time.Second       // cap of the re-watch delay
)

// Cache is the watch-fed cache in front of every registry, so the hot path never
// calls a plugin. It implements Registry: Register, Deregister, ListServices and
// Watch pass through; GetService and Lookup answer from memory.
//
// A miss asks the inner registry once (concurrent misses of one name share the
// call) and keeps the answer; a background watch applies every change; a failed
// watch is re-opened with capped, jittered exponential backoff and every cached
// name is then re-read (resync). While the inner registry is down, lookups keep
// answering with the last known data. "Not found" is remembered only briefly.
type Cache struct {
	inner        Registry
	negativeTTL  time.Duration
	maxNegative  int
	fetchTimeout time.Duration
	backoffBase  time.Duration
	backoffMax   time.Duration

	// entries is read without locking by Lookup and written only under mu.
	entries sync.Map // name → *cacheEntry

	mu        sync.Mutex
	calls     map[string]*fetchCall // misses in flight, by name
	epoch     uint64                // watches opened; a fetch begun in an older epoch is not stored
	negatives int                   // negative entries in entries
	applied   uint64                // watch events applied
	appliedCh chan struct{}         // closed and replaced whenever applied grows
	lastErr   error                 // why the watch last failed
	closed    bool

	ready         atomic.Bool
	misses        atomic.Uint64
	fetches       atomic.Uint64
	watches       atomic.Uint64
	watchFailures atomic.Uint64

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watch loop and fetches in flight
}

// cacheEntry is one name's answer: an immutable snapshot, or "not found" until
// expires.
type cacheEntry struct {
	services []*Service
	err      error // wraps ErrNotFound for a negative entry
	expires  time.Time
}

// answers reports whether the entry may still be served at now.
func (e *cacheEntry) answers(now time.Time) bool {
	return e.err == nil || now.Before(e.expires)
}

// fetchCall is one GetService to the inner registry shared by concurrent misses.
type fetchCall struct {
	done     chan struct{} // closed when services and err are set
	services []*Service
	err      error
	epoch    uint64
	dirty    bool // an event for the name arrived meanwhile: the answer may be stale
}

// CacheStats counts what a Cache did, for metrics and tests.
type CacheStats struct {
	Misses         uint64 // lookups not answered from memory
	Fetches        uint64 // GetService calls to the inner registry (misses and resyncs)
	Events         uint64 // watch events applied
	Watches        uint64 // watches opened
	WatchFailures  uint64 // watches that could not be opened, ended or failed to resync
	LastWatchError error  // why the watch last failed, nil if it never did
}

// CacheOption configures NewCache.
type CacheOption func(*Cache)

// WithNegativeTTL sets how long a "not found" answer is served from memory
// (default DefaultNegativeTTL; d <= 0 never remembers it).
func WithNegativeTTL(d time.Duration) CacheOption {
	return func(c *Cache) { c.negativeTTL = d }
}

// WithMaxNegative bounds how many "not found" answers are remembered, so lookups
// of made-up names cannot grow the cache without end (default DefaultMaxNegative).
func WithMaxNegative(n int) CacheOption {
	return func(c *Cache) { c.maxNegative = n }
}

// WithFetchTimeout bounds one GetService to the inner registry (default
// DefaultFetchTimeout).
func WithFetchTimeout(d time.Duration) CacheOption {
	return func(c *Cache) {
		if d > 0 {
			c.fetchTimeout = d
		}
	}
}

// WithBackoff sets the first and the largest delay before re-opening a failed
// watch (defaults DefaultBackoffBase, DefaultBackoffMax).
func WithBackoff(base, maxDelay time.Duration) CacheOption {
	return func(c *Cache) {
		if base > 0 {
			c.backoffBase = base
		}
		if maxDelay > 0 {
			c.backoffMax = maxDelay
		}
	}
}

// NewCache puts a cache in front of r and starts its watch loop; Close stops it.
// Closing the cache does not close r.
func NewCache(r Registry, opts ...CacheOption) *Cache {
	c := &Cache{
		inner:        r,
		negativeTTL:  DefaultNegativeTTL,
		maxNegative:  DefaultMaxNegative,
		fetchTimeout: DefaultFetchTimeout,
		backoffBase:  DefaultBackoffBase,
		backoffMax:   DefaultBackoffMax,
		calls:        make(map[string]*fetchCall),
		appliedCh:    make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	c.backoffMax = max(c.backoffMax, c.backoffBase)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run()
	return c
}

var _ Registry = (*Cache)(nil)

// Name returns the inner registry's name.
func (c *Cache) Name() string { return c.inner.Name() }

// Register passes through; the change reaches the cache through the watch.
func (c *Cache) Register(ctx context.Context, svc *Service, ttl time.Duration) error {
	return c.inner.Register(ctx, svc, ttl)
}

// Deregister passes through; the change reaches the cache through the watch.
func (c *Cache) Deregister(ctx context.Context, svc *Service) error {
	return c.inner.Deregister(ctx, svc)
}

// ListServices passes through: listing is rare and not cached.
func (c *Cache) ListServices(ctx context.Context) ([]*Service, error) {
	return c.inner.ListServices(ctx)
}

// Watch passes through: each watcher gets the inner registry's own stream.
func (c *Cache) Watch(ctx context.Context) (Watcher, error) {
	return c.inner.Watch(ctx)
}

// GetService returns deep copies of what Lookup returns; callers may modify them.
func (c *Cache) GetService(ctx context.Context, name string) ([]*Service, error) {
	svcs, err := c.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]*Service, len(svcs))
	for i, s := range svcs {
		out[i] = s.Clone()
	}
	return out, nil
}

// Lookup is the hot path: it returns name's versions from memory without
// allocating. The slice and everything it points to are a snapshot shared by
// every caller and replaced, never changed, on updates: callers must not modify
// them (use GetService for copies). A miss asks the inner registry.
func (c *Cache) Lookup(ctx context.Context, name string) ([]*Service, error) {
	if v, ok := c.entries.Load(name); ok {
		e := v.(*cacheEntry)
		if e.err == nil {
			return e.services, nil
		}
		if time.Now().Before(e.expires) {
			return nil, e.err
		}
	}
	return c.miss(ctx, name)
}

// Ready reports whether a watch has been opened and the cache resynced once. It
// stays true while a failed watch is re-opened, since lookups keep answering.
func (c *Cache) Ready() bool { return c.ready.Load() }

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{
		Misses:         c.misses.Load(),
		Fetches:        c.fetches.Load(),
		Events:         c.applied,
		Watches:        c.watches.Load(),
		WatchFailures:  c.watchFailures.Load(),
		LastWatchError: c.lastErr,
	}
}

// WaitApplied blocks until at least n watch events have been applied (see
// Stats().Events) or ctx ends. Tests use it instead of sleeping: read Events,
// change the registry, wait for Events+1.
func (c *Cache) WaitApplied(ctx context.Context, n uint64) error {
	for {
		c.mu.Lock()
		applied, ch := c.applied, c.appliedCh
		c.mu.Unlock()
		if applied >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("registry cache: waiting for %d events, %d applied: %w", n, applied, ctx.Err())
		}
	}
}

// Close stops the watch loop and waits for fetches in flight. Lookups then answer
// from what is cached; misses fail with ErrClosed.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// miss answers a lookup the cache could not: it joins the fetch in flight for
// name or starts one, then waits for it or for ctx.
func (c *Cache) miss(ctx context.Context, name string) ([]*Service, error) {
	c.misses.Add(1)
	c.mu.Lock()
	if e := c.loadLocked(name); e != nil && e.answers(time.Now()) {
		c.mu.Unlock() // stored while this lookup waited for the lock
		return e.services, e.err
	}
	call := c.calls[name]
	if call == nil {
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("registry cache: lookup %q: %w", name, ErrClosed)
		}
		call = &fetchCall{done: make(chan struct{}), epoch: c.epoch}
		c.calls[name] = call
		c.wg.Add(1)
		// The fetch outlives this caller's cancellation: others may share it.
		go c.fetch(context.WithoutCancel(ctx), name, call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.services, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("registry cache: lookup %q: %w", name, ctx.Err())
	}
}

// fetch runs one shared miss and stores its answer unless a watch event or a new
// watch made it possibly stale.
func (c *Cache) fetch(ctx context.Context, name string, call *fetchCall) {
	defer c.wg.Done()
	svcs, err := c.get(ctx, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.calls, name)
	call.services, call.err = svcs, err
	if !call.dirty && call.epoch == c.epoch {
		c.storeLocked(name, svcs, err)
	}
	close(call.done)
}

// get asks the inner registry for name, bounded by the fetch timeout and Close,
// and returns a sorted snapshot the cache owns.
func (c *Cache) get(ctx context.Context, name string) ([]*Service, error) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	c.fetches.Add(1)
	svcs, err := c.inner.GetService(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("registry cache: get %q from %s registry: %w", name, c.inner.Name(), err)
	}
	// Only services registered under exactly name answer for it: some
	// registries (Consul) also answer to other spellings of a name, and
	// callers key policies, breakers and metrics by the name they asked for.
	snap := make([]*Service, 0, len(svcs))
	for _, s := range svcs {
		if s != nil && s.Name == name {
			snap = append(snap, s.Clone())
		}
	}
	if len(snap) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	sortByVersion(snap)
	return snap, nil
}

// storeLocked keeps an answer from the inner registry: a snapshot, or "not found"
// for a while. Any other error keeps what is cached: stale beats nothing.
func (c *Cache) storeLocked(name string, svcs []*Service, err error) {
	switch {
	case err == nil:
		c.setLocked(name, &cacheEntry{services: svcs})
	case errors.Is(err, ErrNotFound):
		c.setNotFoundLocked(name, err)
	}
}

// loadLocked returns name's entry, or nil.
func (c *Cache) loadLocked(name string) *cacheEntry {
	if v, ok := c.entries.Load(name); ok {
		return v.(*cacheEntry)
	}
	return nil
}

// setLocked stores e for name (nil deletes it), keeping the negative count.
func (c *Cache) setLocked(name string, e *cacheEntry) {
	if old := c.loadLocked(name); old != nil && old.err != nil {
		c.negatives--
	}
	if e == nil {
		c.entries.Delete(name)
		return
	}
	if e.err != nil {
		c.negatives++
	}
	c.entries.Store(name, e)
}

// setNotFoundLocked remembers that name does not exist, for the negative TTL and
// within the negative bound; otherwise it forgets name.
func (c *Cache) setNotFoundLocked(name string, err error) {
	now := time.Now()
	if c.negativeTTL > 0 && c.negatives >= c.maxNegative {
		c.entries.Range(func(k, v any) bool {
			if e := v.(*cacheEntry); !e.answers(now) {
				c.setLocked(k.(string), nil)
			}
			return true
		})
	}
	if c.negativeTTL <= 0 || c.negatives >= c.maxNegative {
		c.setLocked(name, nil)
		return
	}
	c.setLocked(name, &cacheEntry{err: err, expires: now.Add(c.negativeTTL)})
}

// run keeps a watch open until Close, re-opening it with backoff when it fails.
func (c *Cache) run() {
	defer c.wg.Done()
	for attempt := 0; ; attempt++ {
		healthy := c.watch()
		if c.ctx.Err() != nil {
			return
		}
		c.watchFailures.Add(1)
		if healthy {
			attempt = 0
		}
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// watch opens one watch, resyncs, and applies its events until it fails. It
// reports whether the watch was healthy (delivered an event or lived long), which
// resets the backoff.
func (c *Cache) watch() (healthy bool) {
	w, err := c.inner.Watch(c.ctx)
	if err != nil {
		c.setWatchErr(fmt.Errorf("registry cache: watch %s registry: %w", c.inner.Name(), err))
		return false
	}
	stop := context.AfterFunc(c.ctx, w.Stop) // unblocks Next on Close even if w ignores ctx
	defer func() {
		stop()
		w.Stop()
	}()
	c.mu.Lock()
	c.epoch++
	c.mu.Unlock()
	c.watches.Add(1)
	// Events queue in w while resync runs; applied afterwards, they may briefly
	// replay older states but end at the current one.
	if err := c.resync(); err != nil {
		c.setWatchErr(err)
		return false
	}
	c.ready.Store(true)
	start := time.Now()
	for {
		ev, err := w.Next()
		if err != nil {
			c.setWatchErr(fmt.Errorf("registry cache: watch %s registry: %w", c.inner.Name(), err))
			return healthy || time.Since(start) >= c.backoffMax
		}
		healthy = true
		c.apply(ev)
	}
}

// resync re-reads every cached name after a watch opened, since events may have
// been missed while none was open. Negative entries are dropped, not re-read.
func (c *Cache) resync() error {
	var names []string
	c.mu.Lock()
	c.entries.Range(func(k, v any) bool {
		if v.(*cacheEntry).err != nil {
			c.setLocked(k.(string), nil)
		} else {
			names = append(names, k.(string))
		}
		return true
	})
	c.mu.Unlock()
	for _, name := range names {
		svcs, err := c.get(c.ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("registry cache: resync: %w", err)
		}
		c.mu.Lock()
		c.storeLocked(name, svcs, err)
		c.mu.Unlock()
	}
	return nil
}

// apply folds one watch event into the cache. Only cached names are touched; a
// negative entry is dropped so the next lookup asks again.
func (c *Cache) apply(ev *Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev != nil && ev.Service != nil {
		name := ev.Service.Name
		if call := c.calls[name]; call != nil {
			call.dirty = true
		}
		switch e := c.loadLocked(name); {
		case e == nil:
		case e.err != nil:
			c.setLocked(name, nil)
		default:
			if next := applyEvent(e.services, ev); len(next) > 0 {
				c.setLocked(name, &cacheEntry{services: next})
			} else {
				c.setNotFoundLocked(name, fmt.Errorf("%w: %q", ErrNotFound, name))
			}
		}
	}
	c.applied++
	close(c.appliedCh)
	c.appliedCh = make(chan struct{})
}

// setWatchErr records why the watch failed.
func (c *Cache) setWatchErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// backoff returns the delay before re-watch attempt n: base·2ⁿ capped at the
// maximum, then jittered to between half and all of it.
func (c *Cache) backoff(attempt int) time.Duration {
	d := c.backoffMax
	if attempt < 32 {
		if b := c.backoffBase << attempt; b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// applyEvent returns a new snapshot with ev applied to old; old is not changed,
// and unchanged services and nodes are shared with it.
func applyEvent(old []*Service, ev *Event) []*Service {
	svc := ev.Service
	i := slices.IndexFunc(old, func(s *Service) bool { return s.Version == svc.Version })
	switch ev.Type {
	case Create, Update:
		next := slices.Clone(old)
		if i >= 0 {
			next[i] = svc.Clone()
			return next
		}
		next = append(next, svc.Clone())
		sortByVersion(next)
		return next
	case Delete:
		if i < 0 {
			return old
		}
		if len(svc.Nodes) > 0 {
			left := slices.DeleteFunc(slices.Clone(old[i].Nodes), func(n *Node) bool {
				return slices.ContainsFunc(svc.Nodes, func(g *Node) bool { return g != nil && g.ID == n.ID })
			})
			if len(left) > 0 {
				kept := *old[i]
				kept.Nodes = left
				next := slices.Clone(old)
				next[i] = &kept
				return next
			}
		}
		return slices.Delete(slices.Clone(old), i, i+1)
	}
	return old
}
