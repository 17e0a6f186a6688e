package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/sdk/registry"
)

// Watch tuning.
const (
	watchWait   = time.Minute            // longest a blocking query waits for a change
	watchQueue  = 4096                   // events held for a slow consumer before overflow
	backoffBase = 100 * time.Millisecond // first pause after a failed query
	backoffMax  = 5 * time.Second        // longest pause between failed queries
)

// watcher follows Consul with blocking queries: one on the catalog's list of
// services, and one per service on its passing instances. Each service's
// snapshot is diffed against the previous one into create/update/delete events.
// The state when Watch is called is the baseline: only later changes are events.
type watcher struct {
	client *api.Client
	log    hclog.Logger
	group  func([]*api.ServiceEntry) []*registry.Service
	errs   *atomic.Int64 // failed queries, counted for the registry
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	queue      []*registry.Event
	ready      chan struct{} // signalled (cap 1) when an event is queued or the watcher ends
	done       chan struct{} // closed when the watcher ends; err says why
	err        error
	overflowed bool
	stopOnCtx  func() bool
}

// serviceWatch is the blocking query on one service's instances.
type serviceWatch struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}                // closed when its goroutine returned
	state  map[string]*registry.Service // by version; owned by the goroutine until done
}

// startWatch reads the baseline (the catalog and every service in it) and starts
// following changes. It fails if Consul does not answer.
func startWatch(ctx context.Context, client *api.Client, log hclog.Logger, group func([]*api.ServiceEntry) []*registry.Service, errs *atomic.Int64) (*watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: watch: %w", err)
	}
	w := &watcher{client: client, log: log, group: group, errs: errs, ready: make(chan struct{}, 1), done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())

	names, meta, err := client.Catalog().Services((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		w.cancel()
		return nil, fmt.Errorf("consul: watch: list services: %w", err)
	}
	services := map[string]*serviceWatch{}
	indexes := map[string]uint64{}
	for name := range names {
		if !pathSafe(name) {
			continue // Consul would answer for another name: see pathSafe
		}
		entries, m, err := client.Health().Service(name, "", true, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			w.cancel()
			return nil, fmt.Errorf("consul: watch: read service %s: %w", name, err)
		}
		services[name] = &serviceWatch{name: name, state: byVersion(group(named(entries, name)))}
		indexes[name] = m.LastIndex
	}
	for name, sw := range services {
		w.startService(sw, indexes[name])
	}
	w.wg.Add(1)
	go w.followCatalog(services, meta.LastIndex)
	w.stopOnCtx = context.AfterFunc(ctx, func() { w.end(fmt.Errorf("registry: watch: %w", context.Cause(ctx))) })
	return w, nil
}

// Next implements registry.Watcher. After an overflow it first hands out the
// events queued before it.
func (w *watcher) Next() (*registry.Event, error) {
	for {
		w.mu.Lock()
		ended := w.err != nil
		if len(w.queue) > 0 && (!ended || w.overflowed) {
			ev := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return ev, nil
		}
		if ended {
			err := w.err
			w.mu.Unlock()
			return nil, err
		}
		w.mu.Unlock()
		select {
		case <-w.ready:
		case <-w.done:
		}
	}
}

// Stop implements registry.Watcher: it ends the queries and waits for them.
func (w *watcher) Stop() {
	w.end(registry.ErrWatcherStopped)
	w.wg.Wait()
}

// end stops the watcher once, recording why; it does not wait.
func (w *watcher) end(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = err
	close(w.done)
	w.cancel()
	if w.stopOnCtx != nil {
		w.stopOnCtx()
	}
}

// emit queues an event; a full queue ends the watcher with ErrWatcherOverflow.
func (w *watcher) emit(t registry.EventType, svc *registry.Service) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	if len(w.queue) >= watchQueue {
		w.overflowed = true
		w.mu.Unlock()
		w.end(fmt.Errorf("%w (queue of %d full)", registry.ErrWatcherOverflow, watchQueue))
		return
	}
	w.queue = append(w.queue, &registry.Event{Type: t, Service: svc, Timestamp: time.Now()})
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// followCatalog keeps one serviceWatch per service in the catalog: it starts
// one for a new name and, when a name goes away, stops it and reports the
// versions it still held as deleted.
func (w *watcher) followCatalog(services map[string]*serviceWatch, index uint64) {
	defer w.wg.Done()
	defer func() {
		for _, sw := range services {
			sw.cancel()
		}
	}()
	var bo backoff
	for w.ctx.Err() == nil {
		q := &api.QueryOptions{WaitIndex: index, WaitTime: watchWait}
		names, meta, err := w.client.Catalog().Services(q.WithContext(w.ctx))
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			w.errs.Add(1)
			w.log.Warn("watching Consul's catalog failed; retrying with backoff", "error", err, "attempt", bo.n+1)
			index = 0 // Consul may have restarted with a new index: read afresh
			if !bo.wait(w.ctx) {
				return
			}
			continue
		}
		bo.reset()
		index = nextIndex(index, meta.LastIndex)
		for name := range names {
			if services[name] == nil && pathSafe(name) { // see pathSafe
				sw := &serviceWatch{name: name}
				services[name] = sw
				w.startService(sw, 0) // new: its current state is all news
			}
		}
		for name, sw := range services {
			if _, ok := names[name]; ok {
				continue
			}
			sw.cancel()
			<-sw.done
			delete(services, name)
			for _, svc := range sortedVersions(sw.state) {
				w.emit(registry.Delete, svc)
			}
		}
	}
}

// startService runs sw's blocking query from index (0: no baseline, so the
// first answer's instances are created).
func (w *watcher) startService(sw *serviceWatch, index uint64) {
	ctx, cancel := context.WithCancel(w.ctx)
	sw.cancel, sw.done = cancel, make(chan struct{})
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(sw.done)
		w.followService(ctx, sw, index)
	}()
}

// followService diffs successive snapshots of one service's passing instances.
func (w *watcher) followService(ctx context.Context, sw *serviceWatch, index uint64) {
	var bo backoff
	for ctx.Err() == nil {
		q := &api.QueryOptions{WaitIndex: index, WaitTime: watchWait}
		entries, meta, err := w.client.Health().Service(sw.name, "", true, q.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.errs.Add(1)
			w.log.Debug("watching a Consul service failed; retrying", "service", sw.name, "error", err)
			index = 0
			if !bo.wait(ctx) {
				return
			}
			continue
		}
		bo.reset()
		index = nextIndex(index, meta.LastIndex)
		cur := byVersion(w.group(named(entries, sw.name)))
		w.diff(sw.state, cur)
		sw.state = cur
	}
}

// diff emits what changed from prev to cur, both one service's versions: a new
// version is created, a changed one updated, a vanished one deleted.
func (w *watcher) diff(prev, cur map[string]*registry.Service) {
	for _, svc := range sortedVersions(cur) {
		old, ok := prev[svc.Version]
		switch {
		case !ok:
			w.emit(registry.Create, svc.Clone())
		case !sameService(old, svc):
			w.emit(registry.Update, svc.Clone())
		}
	}
	for _, svc := range sortedVersions(prev) {
		if _, ok := cur[svc.Version]; !ok {
			w.emit(registry.Delete, svc.Clone())
		}
	}
}

// nextIndex is the WaitIndex for the next blocking query after an answer with
// index last. An index that went backwards (a snapshot restore, a new cluster)
// resets to 0 so the next read is fresh; 0 is never reused, so a query blocks.
func nextIndex(prev, last uint64) uint64 {
	switch {
	case last < prev:
		return 0
	case last == 0:
		return 1
	}
	return last
}

// byVersion indexes versions by their version string.
func byVersion(svcs []*registry.Service) map[string]*registry.Service {
	m := make(map[string]*registry.Service, len(svcs))
	for _, s := range svcs {
		m[s.Version] = s
	}
	return m
}

// sortedVersions returns m's versions in order, for a stable event order.
func sortedVersions(m map[string]*registry.Service) []*registry.Service {
	out := make([]*registry.Service, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sortByVersion(out)
	return out
}

// backoff spaces out retries of a failing query: exponential with jitter, capped.
type backoff struct{ n int }

// next is the pause before the coming retry.
func (b *backoff) next() time.Duration {
	d := min(backoffBase<<min(b.n, 10), backoffMax)
	return d/2 + rand.N(d/2+1)
}

// wait pauses before a retry; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	b.n++
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.n = 0 }
