package host_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// TestGatewayServesHTTPS runs a gateway with a tls block: it answers over
// HTTPS with the configured certificate (checked against the CA), refuses
// plain HTTP, and a certificate file that cannot be read stops start-up at the
// block's position.
func TestGatewayServesHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t, dir, "ca")
	ca.issue("gateway", "spiffe://test/gateway")
	path := filepath.Join(dir, "micro.hcl")
	src := `service "helloworld" {}
gateway {
  listen = "127.0.0.1:0"
  tls {
    cert_file = "gateway.crt"
    key_file  = "gateway.key"
  }
  route "GET /hello/{name}" {
    service  = "helloworld"
    endpoint = "Greeter.Hello"
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h := runHost(t, host.WithConfigFile(path), host.WithServiceHandler("helloworld", new(greeter.Greeter)))
	url := h.GatewayURL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("GatewayURL = %q, want https://", url)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.Get(url + "/hello/Ada")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello Ada") {
		t.Fatalf("GET over HTTPS: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/hello/Ada"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP to the HTTPS gateway answered 200: %s", b)
		}
	}

	bad := strings.Replace(src, `"gateway.key"`, `"missing.key"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = host.New(context.Background(), host.WithConfigFile(path), host.WithLogger(quietLogger()),
		host.WithServiceHandler("helloworld", new(greeter.Greeter)))
	if err == nil || !strings.Contains(err.Error(), "micro.hcl:6:17") || !strings.Contains(err.Error(), "missing.key") {
		t.Fatalf("New with an unreadable key = %v; want an error at key_file (micro.hcl:6:17) naming missing.key", err)
	}
}
