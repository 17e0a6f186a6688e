package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

// warmCache returns a ready cache holding greeter with 3 nodes.
func warmCache(b *testing.B) *registry.Cache {
	b.Helper()
	ctx := context.Background()
	m := registry.NewMemory()
	b.Cleanup(func() { _ = m.Close() })
	c := registry.NewCache(m)
	b.Cleanup(func() { _ = c.Close() })
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(waitLimit); !c.Ready(); <-tick.C {
		if time.Now().After(deadline) {
			b.Fatal("cache not ready")
		}
	}
	if err := m.Register(ctx, svc("greeter", "v1", "a", "b", "c"), 0); err != nil {
		b.Fatal(err)
	}
	if err := c.WaitApplied(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "greeter"); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCacheLookupSelect is the client's hot path: cache lookup plus a
// round-robin pick on a warm cache with 3 nodes.
func BenchmarkCacheLookupSelect(b *testing.B) {
	c := warmCache(b)
	rr := registry.RoundRobin()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		svcs, err := c.Lookup(ctx, "greeter")
		if err != nil {
			b.Fatal(err)
		}
		node, done, err := rr.Select(svcs)
		if err != nil || node == nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

// BenchmarkCacheLookup is the cache's share of the hot path, without selection.
func BenchmarkCacheLookup(b *testing.B) {
	c := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if svcs, err := c.Lookup(ctx, "greeter"); err != nil || len(svcs) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapLookup is the raw reference: a map read under an RWMutex.
func BenchmarkMapLookup(b *testing.B) {
	var mu sync.RWMutex
	m := map[string][]*registry.Service{"greeter": {svc("greeter", "v1", "a", "b", "c")}}
	b.ReportAllocs()
	for b.Loop() {
		mu.RLock()
		svcs := m["greeter"]
		mu.RUnlock()
		if len(svcs) == 0 {
			b.Fatal("missing")
		}
	}
}

// BenchmarkCacheLookupSelectParallel is the hot path from every core at once.
func BenchmarkCacheLookupSelectParallel(b *testing.B) {
	c := warmCache(b)
	rr := registry.RoundRobin()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			svcs, _ := c.Lookup(ctx, "greeter")
			_, done, _ := rr.Select(svcs)
			done(nil)
		}
	})
}

// BenchmarkMapLookupParallel is the raw reference from every core at once.
func BenchmarkMapLookupParallel(b *testing.B) {
	var mu sync.RWMutex
	m := map[string][]*registry.Service{"greeter": {svc("greeter", "v1", "a", "b", "c")}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.RLock()
			svcs := m["greeter"]
			mu.RUnlock()
			_ = svcs
		}
	})
}
