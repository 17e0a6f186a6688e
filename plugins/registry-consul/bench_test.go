package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microhost/micro/host/plugins/plugintest"
	"github.com/microhost/micro/sdk/registry"
)

// BenchmarkLookup shows that a lookup on a request's path never waits on
// Consul: the host's cache in front of the registry-consul plugin answers as
// fast with Consul stopped as with it up. "consul-http" is the raw reference,
// asking Consul's health endpoint directly, as a client without a cache would.
func BenchmarkLookup(b *testing.B) {
	a := startAgent(b)
	spec := plugintest.Spec(b, ".", "registry-consul", version)
	spec.Config = json.RawMessage(`{"address":"` + a.addr() + `"}`)
	inst, err := plugintest.Start(b, spec)
	if err != nil {
		b.Fatal(err)
	}
	cache := registry.NewCache(inst.Registry())
	b.Cleanup(func() { _ = cache.Close() })

	ctx := context.Background()
	svc := &registry.Service{Name: "greeter", Version: "1.0.0"}
	for i := range 3 {
		svc.Nodes = append(svc.Nodes, &registry.Node{ID: fmt.Sprint("greeter-", i), Address: fmt.Sprint("127.0.0.1:", 9100+i)})
	}
	if err := cache.Register(ctx, svc, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	eventually(b, 15*time.Second, "greeter's 3 nodes in the cache", func() error {
		svcs, err := cache.Lookup(ctx, "greeter")
		if err != nil {
			return err
		}
		if n := nodes(svcs); n != 3 {
			return fmt.Errorf("%d nodes", n)
		}
		return nil
	})

	client, err := api.NewClient(&api.Config{Address: a.addr()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("consul-http", func(b *testing.B) {
		for b.Loop() {
			entries, _, err := client.Health().Service("greeter", "", true, nil)
			if err != nil || len(entries) != 3 {
				b.Fatalf("%d entries, %v", len(entries), err)
			}
		}
	})
	lookup := func(b *testing.B) {
		rr := registry.RoundRobin()
		b.ReportAllocs()
		for b.Loop() {
			svcs, err := cache.Lookup(ctx, "greeter")
			if err != nil {
				b.Fatal(err)
			}
			node, done, err := rr.Select(svcs)
			if err != nil || node == nil {
				b.Fatalf("select: %v", err)
			}
			done(nil)
		}
	}
	b.Run("cache/consul-up", lookup)
	a.stop()
	b.Run("cache/consul-stopped", lookup)
}

// nodes counts the nodes of svcs.
func nodes(svcs []*registry.Service) int {
	n := 0
	for _, s := range svcs {
		n += len(s.Nodes)
	}
	return n
}
