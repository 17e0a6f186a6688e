package host_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
	"github.com/microhost/micro/internal/syncbuf"
)

// reloading is a RunReloading host of a helloworld service, run by a test
// that rewrites its micro.hcl.
type reloading struct {
	t     *testing.T
	path  string
	logs  *syncbuf.Buffer
	ready chan *host.Host
	done  chan error
	mu    sync.Mutex
	cur   *host.Host
}

// startReloading writes first as micro.hcl and runs RunReloading on it until
// the test ends.
func startReloading(t *testing.T, first string) *reloading {
	r := &reloading{t: t, path: filepath.Join(t.TempDir(), "micro.hcl"), logs: &syncbuf.Buffer{},
		ready: make(chan *host.Host, 4), done: make(chan error, 1)}
	r.write(first)
	logger := hclog.New(&hclog.LoggerOptions{Output: r.logs, Level: hclog.Info})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.done <- host.RunReloading(ctx, logger, host.WithConfigFile(r.path), host.WithLogger(logger),
			host.WithDefaultHandler("helloworld", new(greeter.Greeter)),
			host.OnReady(func(h *host.Host) { r.ready <- h }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("RunReloading: %v", err)
		}
	})
	return r
}

// write replaces micro.hcl; a distinct size makes the change visible even
// within one mtime tick.
func (r *reloading) write(src string) {
	r.t.Helper()
	if err := os.WriteFile(r.path, []byte(src), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// wait waits for the next system to be ready and makes it the one called.
func (r *reloading) wait(what string) {
	r.t.Helper()
	select {
	case h := <-r.ready:
		r.mu.Lock()
		r.cur = h
		r.mu.Unlock()
	case err := <-r.done:
		r.done <- err // for the clean-up
		r.t.Fatalf("stopped while waiting for %s: %v\n%s", what, err, r.logs.String())
	case <-time.After(30 * time.Second):
		r.t.Fatalf("timed out waiting for %s\n%s", what, r.logs.String())
	}
}

// version calls helloworld on the current system and returns the version it
// is registered with.
func (r *reloading) version() string {
	r.t.Helper()
	r.mu.Lock()
	h := r.cur
	r.mu.Unlock()
	var rsp greeter.HelloResponse
	if err := h.Client().Call(context.Background(), "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: "Ada"}, &rsp); err != nil {
		r.t.Fatalf("call: %v", err)
	}
	svcs, _ := h.Registry().GetService(context.Background(), "helloworld")
	return svcs[0].Version
}

// TestReloadKeepsServingThroughABadConfig changes micro.hcl under a running
// host: a broken file is refused and the old system keeps serving; a good one
// replaces it.
func TestReloadKeepsServingThroughABadConfig(t *testing.T) {
	r := startReloading(t, "service \"helloworld\" {\n  version = \"1.0.0\"\n}\n")
	r.wait("the first system")
	if v := r.version(); v != "1.0.0" {
		t.Fatalf("version %s", v)
	}

	r.write("service \"helloworld\" {\n  version = 1.0.0.0\n  ttl = \"soon\"\n}\n")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.logs.String(), "the new config was refused") {
		if time.Now().After(deadline) {
			t.Fatalf("the bad config was not refused:\n%s", r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(r.logs.String(), "micro.hcl:2:") {
		t.Errorf("the refusal does not say where:\n%s", r.logs.String())
	}
	if v := r.version(); v != "1.0.0" {
		t.Fatalf("after a refused reload the old system should serve, got version %s", v)
	}

	r.write("service \"helloworld\" {\n  version = \"2.0.0\"\n}\n# reloaded\n")
	r.wait("the reloaded system")
	if v := r.version(); v != "2.0.0" {
		t.Fatalf("after the reload: version %s, want 2.0.0", v)
	}
}

// TestReloadThatFailsToStartGoesBack reloads a config that provisions but
// cannot start (its service's address is taken): the system of the previous
// config comes back instead of nothing serving.
func TestReloadThatFailsToStartGoesBack(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	r := startReloading(t, "service \"helloworld\" {\n  version = \"1.0.0\"\n}\n")
	r.wait("the first system")
	if v := r.version(); v != "1.0.0" {
		t.Fatalf("version %s", v)
	}

	r.write(fmt.Sprintf("service \"helloworld\" {\n  version = \"2.0.0\"\n  address = %q\n}\n", taken.Addr().String()))
	r.wait("the previous system to come back")
	if !strings.Contains(r.logs.String(), "the new config failed to start; going back to the previous one") {
		t.Errorf("the failed start is not logged:\n%s", r.logs.String())
	}
	if v := r.version(); v != "1.0.0" {
		t.Fatalf("after a reload that failed to start: version %s, want the previous 1.0.0", v)
	}

	r.write("service \"helloworld\" {\n  version = \"3.0.0\"\n}\n# fixed\n")
	r.wait("the fixed config")
	if v := r.version(); v != "3.0.0" {
		t.Fatalf("after the fix: version %s, want 3.0.0", v)
	}
}
