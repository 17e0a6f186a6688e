package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
)

// gatedRegistry holds every Watch until gate is closed, so the cache in front
// of it stays cold.
type gatedRegistry struct {
	registry.Registry
	gate chan struct{}
}

func (g *gatedRegistry) Watch(ctx context.Context) (registry.Watcher, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Registry.Watch(ctx)
}

func TestReadiness(t *testing.T) {
	reg := &gatedRegistry{Registry: registry.NewMemory(), gate: make(chan struct{})}
	g, err := gateway.New(gateway.Config{}, gateway.Registry(reg))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		<-done
	})
	base := "http://" + ln.Addr().String()

	if r := do(t, "GET", base+"/health", ""); r.status != 200 {
		t.Fatalf("health %d", r.status)
	}
	r := do(t, "GET", base+"/ready", "")
	if p := r.problem(t); r.status != 503 || !strings.Contains(p.Detail, "registry cache") {
		t.Fatalf("ready before the cache synced: %d %+v", r.status, p)
	}
	close(reg.gate)
	waitFor(t, "ready", func() bool { return do(t, "GET", base+"/ready", "").status == 200 })
	g.Drain()
	r = do(t, "GET", base+"/ready", "")
	if p := r.problem(t); r.status != 503 || !strings.Contains(p.Detail, "draining") {
		t.Fatalf("ready while draining: %d %+v", r.status, p)
	}
	if r := do(t, "GET", base+"/health", ""); r.status != 200 {
		t.Fatalf("health while draining %d", r.status)
	}
}

func TestReloadIsAtomic(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	route := func(version string) gateway.Config {
		return gateway.Config{Routes: []*gateway.Route{{
			Pattern: "GET /u/{id}", Service: "users", Endpoint: "Users.Get",
			Transform: &gateway.Transform{Add: map[string]json.RawMessage{"version": json.RawMessage(`"` + version + `"`)}},
		}}}
	}
	g, base := startGateway(t, route("a"), reg)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := do(t, "GET", base+"/u/1", "")
				if r.status != 200 || !(strings.Contains(r.body, `"version":"a"`) || strings.Contains(r.body, `"version":"b"`)) {
					errs <- r.body
					return
				}
			}
		}()
	}
	for i := range 20 {
		v := "a"
		if i%2 == 0 {
			v = "b"
		}
		if err := g.Reload(route(v), gateway.Registry(reg)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a request during reloads got %s", e)
	}
	// A bad config is refused and the routes in force stay.
	bad := gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /u/{id}", Service: "users"}}}
	if err := g.Reload(bad, gateway.Registry(reg)); err == nil {
		t.Fatal("a route without an endpoint was accepted")
	}
	if r := do(t, "GET", base+"/u/1", ""); r.status != 200 || !strings.Contains(r.body, `"version":"a"`) {
		t.Fatalf("after a refused reload: %d %s", r.status, r.body)
	}
	if g.Config().Timeout != gateway.DefaultTimeout {
		t.Errorf("Config() lacks defaults: %+v", g.Config())
	}
}
