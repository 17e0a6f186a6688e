package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	// Version n's routes /a and /b both add "version": n, and its CORS policy
	// exposes the header Version-n: within one answer the body and the header
	// must name the same version, and versions seen one after the other never
	// go back, whichever route answers.
	version := func(n int) gateway.Config {
		add := &gateway.Transform{Add: map[string]json.RawMessage{"version": json.RawMessage(strconv.Itoa(n))}}
		return gateway.Config{
			CORS: &gateway.CORS{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"Version-" + strconv.Itoa(n)}},
			Routes: []*gateway.Route{
				{Pattern: "GET /a/{id}", Service: "users", Endpoint: "Users.Get", Transform: add},
				{Pattern: "GET /b/{id}", Service: "users", Endpoint: "Users.Get", Transform: add},
			},
		}
	}
	g, base := startGateway(t, version(0), reg)

	stop := make(chan struct{})
	var served atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			last := 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/a/1"
				if i%2 == 1 {
					path = "/b/1"
				}
				r, err := send("GET", base+path, "", "Origin: https://app.example")
				if err != nil {
					errs <- err
					return
				}
				var body struct{ Version int }
				if r.status != 200 || json.Unmarshal([]byte(r.body), &body) != nil {
					errs <- fmt.Errorf("GET %s: %d %s", path, r.status, r.body)
					return
				}
				if exposed := r.header.Get("Access-Control-Expose-Headers"); exposed != "Version-"+strconv.Itoa(body.Version) {
					errs <- fmt.Errorf("GET %s mixed versions: body says %d, CORS exposes %q", path, body.Version, exposed)
					return
				}
				if body.Version < last {
					errs <- fmt.Errorf("GET %s went back from version %d to %d", path, last, body.Version)
					return
				}
				last = body.Version
				served.Add(1)
			}
		})
	}
	// Reload at least 30 times, and until requests were served meanwhile
	// (unless a request failed, or that takes too long).
	reloads := 0
	deadline := time.Now().Add(10 * time.Second)
	for (reloads < 30 || served.Load() < 200) && len(errs) == 0 && time.Now().Before(deadline) {
		reloads++
		if err := g.Reload(version(reloads), gateway.Registry(reg)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A bad config is refused and the routes in force stay.
	bad := gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /b/{id}", Service: "users"}}}
	if err := g.Reload(bad, gateway.Registry(reg)); err == nil {
		t.Fatal("a route without an endpoint was accepted")
	}
	if r := do(t, "GET", base+"/b/1", ""); r.status != 200 || !strings.Contains(r.body, `"version":`+strconv.Itoa(reloads)) {
		t.Fatalf("after a refused reload: %d %s", r.status, r.body)
	}
	if g.Config().Timeout != gateway.DefaultTimeout {
		t.Errorf("Config() lacks defaults: %+v", g.Config())
	}
}
