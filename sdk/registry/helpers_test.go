package registry_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

// waitLimit bounds every wait in these tests; nothing should come near it.
const waitLimit = 10 * time.Second

// testCtx returns a context that ends with the test or after waitLimit.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		<-tick.C
	}
}

// svc builds a service version with nodes named by ids.
func svc(name, version string, ids ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version}
	for i, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: fmt.Sprintf("10.0.0.%d:8080", i+1)})
	}
	return s
}

// newMemory returns a memory registry closed at the end of the test.
func newMemory(t *testing.T, opts ...registry.MemoryOption) *registry.Memory {
	t.Helper()
	m := registry.NewMemory(opts...)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// mustRegister registers s without expiry or fails the test.
func mustRegister(t *testing.T, r registry.Registry, s *registry.Service) {
	t.Helper()
	if err := r.Register(testCtx(t), s, 0); err != nil {
		t.Fatalf("Register(%s %s): %v", s.Name, s.Version, err)
	}
}

// nodeIDs lists the node IDs of svcs, as "version/id", sorted.
func nodeIDs(svcs []*registry.Service) []string {
	var ids []string
	for _, s := range svcs {
		for _, n := range s.Nodes {
			ids = append(ids, s.Version+"/"+n.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// next returns the watcher's next event or fails the test.
func next(t *testing.T, w registry.Watcher) *registry.Event {
	t.Helper()
	ev, err := w.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
