package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

// errInjected is the failure flakyRegistry returns while switched off.
var errInjected = errors.New("injected registry failure")

// flakyRegistry delegates to a real registry and can be switched to fail, to
// inject outages; it counts GetService calls and can hold them in a hook.
type flakyRegistry struct {
	registry.Registry

	gets atomic.Int64

	mu       sync.Mutex
	failing  bool
	watchers []registry.Watcher
	afterGet func(name string) // runs after the delegate answered, before returning
}

func (f *flakyRegistry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	f.gets.Add(1)
	f.mu.Lock()
	failing, hook := f.failing, f.afterGet
	f.mu.Unlock()
	if failing {
		return nil, errInjected
	}
	svcs, err := f.Registry.GetService(ctx, name)
	if hook != nil {
		hook(name)
	}
	return svcs, err
}

func (f *flakyRegistry) Watch(ctx context.Context) (registry.Watcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return nil, errInjected
	}
	w, err := f.Registry.Watch(ctx)
	if err != nil {
		return nil, err
	}
	f.watchers = append(f.watchers, w)
	return &flakyWatcher{Watcher: w, f: f}, nil
}

// setFailing switches the outage on or off; switching on breaks open watches.
func (f *flakyRegistry) setFailing(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = on
	if on {
		for _, w := range f.watchers {
			w.Stop()
		}
		f.watchers = nil
	}
}

func (f *flakyRegistry) setAfterGet(hook func(string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afterGet = hook
}

// flakyWatcher turns the end of a watch broken by an outage into errInjected.
type flakyWatcher struct {
	registry.Watcher
	f *flakyRegistry
}

func (w *flakyWatcher) Next() (*registry.Event, error) {
	ev, err := w.Watcher.Next()
	if err != nil {
		w.f.mu.Lock()
		failing := w.f.failing
		w.f.mu.Unlock()
		if failing {
			return nil, fmt.Errorf("%w (%v)", errInjected, err)
		}
	}
	return ev, err
}

// newCache returns a memory registry behind a flaky wrapper behind a cache, all
// closed at the end of the test, with fast re-watch backoff.
func newCache(t *testing.T, opts ...registry.CacheOption) (*registry.Memory, *flakyRegistry, *registry.Cache) {
	t.Helper()
	m := newMemory(t)
	f := &flakyRegistry{Registry: m}
	c := registry.NewCache(f, append([]registry.CacheOption{registry.WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)...)
	t.Cleanup(func() { _ = c.Close() })
	return m, f, c
}

// readyCache is newCache after the cache's first watch is open.
func readyCache(t *testing.T, opts ...registry.CacheOption) (*registry.Memory, *flakyRegistry, *registry.Cache) {
	t.Helper()
	m, f, c := newCache(t, opts...)
	eventually(t, "the cache to be ready", c.Ready)
	return m, f, c
}

// registerApplied registers s in m and waits until c applied the event, so a
// later miss cannot race it (a racing answer is not stored, by design).
func registerApplied(t *testing.T, m registry.Registry, c *registry.Cache, s *registry.Service) {
	t.Helper()
	applied := c.Stats().Events
	mustRegister(t, m, s)
	if err := c.WaitApplied(testCtx(t), applied+1); err != nil {
		t.Fatal(err)
	}
}

// lookupIDs returns the cache's node IDs for name, failing the test on error.
func lookupIDs(t *testing.T, c *registry.Cache, name string) []string {
	t.Helper()
	svcs, err := c.Lookup(testCtx(t), name)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", name, err)
	}
	return nodeIDs(svcs)
}

func TestCacheMissThenHit(t *testing.T) {
	ctx := testCtx(t)
	m, f, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a", "b"))
	if c.Name() != "memory" {
		t.Fatalf("Name() = %q, want the inner name", c.Name())
	}

	first, err := c.Lookup(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Lookup(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(second); !slices.Equal(ids, []string{"v1/a", "v1/b"}) {
		t.Fatalf("nodes = %v", ids)
	}
	if &first[0] != &second[0] {
		t.Fatal("Lookup hits should share one snapshot")
	}
	if got := f.gets.Load(); got != 1 {
		t.Fatalf("inner GetService called %d times, want 1", got)
	}
}

func TestCacheGetServiceReturnsCopies(t *testing.T) {
	ctx := testCtx(t)
	m, _, c := newCache(t)
	mustRegister(t, m, svc("greeter", "v1", "a"))

	got, err := c.GetService(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	got[0].Nodes[0].ID = "mutated"
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("cache changed through a GetService copy: %v", ids)
	}
}

func TestCacheAppliesWatchEvents(t *testing.T) {
	ctx := testCtx(t)
	m, f, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a"))
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("warm-up nodes = %v", ids)
	}

	for _, st := range []struct {
		name string
		op   func() error
		want []string // nil: not found
	}{
		{"node added", func() error { return c.Register(ctx, svc("greeter", "v1", "b"), 0) }, []string{"v1/a", "v1/b"}},
		{"version added", func() error { return m.Register(ctx, svc("greeter", "v2", "c"), 0) }, []string{"v1/a", "v1/b", "v2/c"}},
		{"node removed", func() error { return c.Deregister(ctx, svc("greeter", "v1", "a")) }, []string{"v1/b", "v2/c"}},
		{"version removed", func() error { return m.Deregister(ctx, svc("greeter", "v1", "b")) }, []string{"v2/c"}},
		{"unrelated service", func() error { return m.Register(ctx, svc("users", "v1", "u"), 0) }, []string{"v2/c"}},
		{"last node removed", func() error { return m.Deregister(ctx, svc("greeter", "v2", "c")) }, nil},
	} {
		applied := c.Stats().Events
		if err := st.op(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if err := c.WaitApplied(ctx, applied+1); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		svcs, err := c.Lookup(ctx, "greeter")
		if st.want == nil {
			if !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("%s: Lookup = %v, %v; want ErrNotFound", st.name, nodeIDs(svcs), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if ids := nodeIDs(svcs); !slices.Equal(ids, st.want) {
			t.Fatalf("%s: nodes = %v, want %v", st.name, ids, st.want)
		}
	}
	if got := f.gets.Load(); got != 1 {
		t.Fatalf("inner GetService called %d times, want only the warm-up", got)
	}
}

func TestCacheNegativeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []registry.CacheOption
		wantCalls int64
	}{
		{"remembered for the negative ttl", nil, 1},
		{"forgotten once the ttl passed", []registry.CacheOption{registry.WithNegativeTTL(time.Nanosecond)}, 2},
		{"never remembered with ttl 0", []registry.CacheOption{registry.WithNegativeTTL(0)}, 2},
		{"never remembered with no room", []registry.CacheOption{registry.WithMaxNegative(0)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			_, f, c := readyCache(t, tc.opts...)
			for range 2 {
				if _, err := c.Lookup(ctx, "nobody"); !errors.Is(err, registry.ErrNotFound) {
					t.Fatalf("Lookup = %v, want ErrNotFound", err)
				}
			}
			if got := f.gets.Load(); got != tc.wantCalls {
				t.Fatalf("inner GetService called %d times, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestCacheNegativeAnswerDroppedOnEvent(t *testing.T) {
	ctx := testCtx(t)
	m, _, c := readyCache(t, registry.WithNegativeTTL(time.Hour))
	if _, err := c.Lookup(ctx, "greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup = %v, want ErrNotFound", err)
	}
	applied := c.Stats().Events
	mustRegister(t, m, svc("greeter", "v1", "a"))
	if err := c.WaitApplied(ctx, applied+1); err != nil {
		t.Fatal(err)
	}
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("nodes = %v", ids)
	}
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	m, f, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a"))
	release := make(chan struct{})
	f.setAfterGet(func(string) { <-release })

	const callers = 10
	ctx := testCtx(t)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			svcs, err := c.Lookup(ctx, "greeter")
			if err == nil && len(svcs) != 1 {
				err = fmt.Errorf("got %d versions", len(svcs))
			}
			errs <- err
		}()
	}
	eventually(t, "every caller to miss", func() bool { return c.Stats().Misses == callers })
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.gets.Load(); got != 1 {
		t.Fatalf("inner GetService called %d times for %d concurrent misses, want 1", got, callers)
	}
}

func TestCacheDoesNotStoreAnswerRacingAnEvent(t *testing.T) {
	ctx := testCtx(t)
	m, f, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a"))
	arrived, release := make(chan struct{}), make(chan struct{})
	f.setAfterGet(func(string) {
		close(arrived)
		<-release
	})
	stale := make(chan []string, 1)
	go func() {
		svcs, _ := c.Lookup(ctx, "greeter")
		stale <- nodeIDs(svcs)
	}()
	<-arrived // the fetch has read [a]; now b arrives before it returns
	applied := c.Stats().Events
	mustRegister(t, m, svc("greeter", "v1", "b"))
	if err := c.WaitApplied(ctx, applied+1); err != nil {
		t.Fatal(err)
	}
	f.setAfterGet(nil)
	close(release)
	if ids := <-stale; !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("racing lookup = %v, want the answer it fetched", ids)
	}
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a", "v1/b"}) {
		t.Fatalf("after the race nodes = %v, want the fresh answer", ids)
	}
}

func TestCacheServesStaleDataWhileInnerIsDown(t *testing.T) {
	ctx := testCtx(t)
	m, f, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a", "b"))
	if ids := lookupIDs(t, c, "greeter"); len(ids) != 2 {
		t.Fatalf("warm-up nodes = %v", ids)
	}

	f.setFailing(true)
	eventually(t, "the watch to fail", func() bool { return c.Stats().WatchFailures > 0 })
	// Changed behind the cache's back while it cannot watch.
	if err := m.Deregister(ctx, svc("greeter", "v1", "b")); err != nil {
		t.Fatal(err)
	}
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a", "v1/b"}) {
		t.Fatalf("stale nodes = %v, want the last known ones", ids)
	}
	if got, err := c.GetService(ctx, "greeter"); err != nil || len(got) != 1 {
		t.Fatalf("GetService while down = %v, %v", got, err)
	}
	if _, err := c.Lookup(ctx, "unknown"); !errors.Is(err, errInjected) {
		t.Fatalf("uncached Lookup while down = %v, want the inner error", err)
	}
	if !c.Ready() {
		t.Fatal("Ready should stay true while serving stale data")
	}
	if err := c.Stats().LastWatchError; !errors.Is(err, errInjected) {
		t.Fatalf("LastWatchError = %v", err)
	}

	watches := c.Stats().Watches
	f.setFailing(false)
	eventually(t, "the watch to reopen and resync", func() bool { return c.Stats().Watches > watches })
	eventually(t, "the resync to drop node b", func() bool {
		return slices.Equal(lookupIDs(t, c, "greeter"), []string{"v1/a"})
	})
}

func TestCacheClose(t *testing.T) {
	ctx := testCtx(t)
	m, _, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a"))
	lookupIDs(t, c, "greeter")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if ids := lookupIDs(t, c, "greeter"); !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("cached nodes after Close = %v", ids)
	}
	if _, err := c.Lookup(ctx, "users"); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("miss after Close = %v, want ErrClosed", err)
	}
}

func TestCacheLookupCanceled(t *testing.T) {
	m, f, c := readyCache(t)
	mustRegister(t, m, svc("greeter", "v1", "a"))
	release := make(chan struct{})
	f.setAfterGet(func(string) { <-release })
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := c.Lookup(ctx, "greeter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lookup with canceled ctx = %v, want context.Canceled", err)
	}
}

func TestCacheLookupSelectDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ctx := testCtx(t)
	m, _, c := readyCache(t)
	registerApplied(t, m, c, svc("greeter", "v1", "a", "b", "c"))
	rr := registry.RoundRobin()
	lookupIDs(t, c, "greeter")
	allocs := testing.AllocsPerRun(1000, func() {
		svcs, _ := c.Lookup(ctx, "greeter")
		_, done, _ := rr.Select(svcs)
		done(nil)
	})
	if allocs != 0 {
		t.Fatalf("Lookup+Select allocates %.1f times per call, want 0", allocs)
	}
}

func TestCachePassesThrough(t *testing.T) {
	ctx := testCtx(t)
	_, _, c := newCache(t)
	mustRegister(t, c, svc("greeter", "v1", "a"))
	list, err := c.ListServices(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListServices = %v, %v", list, err)
	}
	w, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	mustRegister(t, c, svc("greeter", "v1", "b"))
	if ev := next(t, w); ev.Type != registry.Update {
		t.Fatalf("passed-through watch event = %v", ev.Type)
	}
	if err := c.Register(ctx, svc("", "v1", "a"), 0); !errors.Is(err, registry.ErrInvalidService) {
		t.Fatalf("Register invalid = %v", err)
	}
}

// caseInsensitive answers lookups whatever the case of the name, as Consul's
// health and catalog lookups do, with the names the services registered.
type caseInsensitive struct{ registry.Registry }

func (r caseInsensitive) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	return r.Registry.GetService(ctx, strings.ToLower(name))
}

// A lookup answers only with the services registered under exactly the name
// asked for, even from a registry that ignores case: callers key policies and
// breakers by that name.
func TestCacheLookupMatchesTheNameExactly(t *testing.T) {
	m := newMemory(t)
	mustRegister(t, m, svc("users", "v1", "a"))
	c := registry.NewCache(caseInsensitive{m})
	t.Cleanup(func() { _ = c.Close() })
	if ids := lookupIDs(t, c, "users"); !slices.Equal(ids, []string{"v1/a"}) {
		t.Fatalf("users: %v", ids)
	}
	for _, name := range []string{"USERS", "Users"} {
		if svcs, err := c.Lookup(testCtx(t), name); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Lookup(%q) = %v, %v; want ErrNotFound, not the instances of users", name, nodeIDs(svcs), err)
		}
	}
}
