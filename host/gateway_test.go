package host_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
)

// TestGatewayReloadSwapsRoutes runs a host with a gateway, then changes the
// file's routes: the gateway keeps its listener and serves the new routes.
func TestGatewayReloadSwapsRoutes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "micro.hcl")
	write := func(route string) {
		t.Helper()
		src := `service "helloworld" {}
gateway {
  listen = "127.0.0.1:0"
  route "` + route + `" {
    service  = "helloworld"
    endpoint = "Greeter.Hello"
  }
}
`
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("GET /hello/{name}")
	var mu sync.Mutex
	var current *host.Host
	ready := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- host.RunReloading(ctx, quietLogger(), host.WithConfigFile(path), host.WithLogger(quietLogger()),
			host.WithDefaultHandler("helloworld", new(greeter.Greeter)),
			host.OnReady(func(h *host.Host) { mu.Lock(); current = h; mu.Unlock(); ready <- struct{}{} }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunReloading: %v", err)
		}
	})
	wait := func() string {
		t.Helper()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("host stopped: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("host not ready")
		}
		mu.Lock()
		defer mu.Unlock()
		return current.Gateway().Addr()
	}
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	addr := wait()
	if code, body := get(addr, "/hello/Ada"); code != 200 || !strings.Contains(body, "Hello Ada") {
		t.Fatalf("before reload: %d %s", code, body)
	}
	write("GET /greet/{name}")
	if again := wait(); again != addr {
		t.Fatalf("the gateway moved from %s to %s on reload", addr, again)
	}
	if code, body := get(addr, "/greet/Bo"); code != 200 || !strings.Contains(body, "Hello Bo") {
		t.Fatalf("new route: %d %s", code, body)
	}
	if code, _ := get(addr, "/hello/Ada"); code != 404 {
		t.Fatalf("old route after reload: %d, want 404", code)
	}
	if code, _ := get(addr, "/ready"); code != 200 {
		t.Fatalf("ready after reload: %d", code)
	}
}
