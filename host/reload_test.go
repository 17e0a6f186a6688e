package host_test

import (
	"bytes"
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
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReloadKeepsServingThroughABadConfig changes micro.hcl under a running
// host: a broken file is refused and the old system keeps serving; a good one
// replaces it.
func TestReloadKeepsServingThroughABadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "micro.hcl")
	write := func(src string) {
		t.Helper()
		// A distinct size makes the change visible even within one mtime tick.
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("service \"helloworld\" {\n  version = \"1.0.0\"\n}\n")

	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	var mu sync.Mutex
	var current *host.Host
	ready := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- host.RunReloading(ctx, logger, host.WithConfigFile(path), host.WithLogger(logger),
			host.WithDefaultHandler("helloworld", new(greeter.Greeter)),
			host.OnReady(func(h *host.Host) { mu.Lock(); current = h; mu.Unlock(); ready <- struct{}{} }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunReloading: %v", err)
		}
	})
	wait := func(what string) {
		t.Helper()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("stopped while waiting for %s: %v\n%s", what, err, logs.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
		}
	}
	call := func() string {
		t.Helper()
		mu.Lock()
		h := current
		mu.Unlock()
		var rsp greeter.HelloResponse
		if err := h.Client().Call(context.Background(), "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: "Ada"}, &rsp); err != nil {
			t.Fatalf("call: %v", err)
		}
		svcs, _ := h.Registry().GetService(context.Background(), "helloworld")
		return svcs[0].Version
	}
	wait("the first system")
	if v := call(); v != "1.0.0" {
		t.Fatalf("version %s", v)
	}

	write("service \"helloworld\" {\n  version = 1.0.0.0\n  ttl = \"soon\"\n}\n")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "the new config was refused") {
		if time.Now().After(deadline) {
			t.Fatalf("the bad config was not refused:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "micro.hcl:2:") {
		t.Errorf("the refusal does not say where:\n%s", logs.String())
	}
	if v := call(); v != "1.0.0" {
		t.Fatalf("after a refused reload the old system should serve, got version %s", v)
	}

	write("service \"helloworld\" {\n  version = \"2.0.0\"\n}\n# reloaded\n")
	wait("the reloaded system")
	if v := call(); v != "2.0.0" {
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
	dir := t.TempDir()
	path := filepath.Join(dir, "micro.hcl")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("service \"helloworld\" {\n  version = \"1.0.0\"\n}\n")

	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	ready := make(chan *host.Host, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- host.RunReloading(ctx, logger, host.WithConfigFile(path), host.WithLogger(logger),
			host.WithDefaultHandler("helloworld", new(greeter.Greeter)),
			host.OnReady(func(h *host.Host) { ready <- h }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunReloading: %v", err)
		}
	})
	wait := func(what string) *host.Host {
		t.Helper()
		select {
		case h := <-ready:
			return h
		case err := <-done:
			done <- err // for the clean-up
			t.Fatalf("stopped while waiting for %s: %v\n%s", what, err, logs.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
		}
		return nil
	}
	version := func(h *host.Host) string {
		t.Helper()
		var rsp greeter.HelloResponse
		if err := h.Client().Call(context.Background(), "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: "Ada"}, &rsp); err != nil {
			t.Fatalf("call: %v", err)
		}
		svcs, _ := h.Registry().GetService(context.Background(), "helloworld")
		return svcs[0].Version
	}
	if v := version(wait("the first system")); v != "1.0.0" {
		t.Fatalf("version %s", v)
	}

	write(fmt.Sprintf("service \"helloworld\" {\n  version = \"2.0.0\"\n  address = %q\n}\n", taken.Addr().String()))
	back := wait("the previous system to come back")
	if !strings.Contains(logs.String(), "the new config failed to start; going back to the previous one") {
		t.Errorf("the failed start is not logged:\n%s", logs.String())
	}
	if v := version(back); v != "1.0.0" {
		t.Fatalf("after a reload that failed to start: version %s, want the previous 1.0.0", v)
	}

	write("service \"helloworld\" {\n  version = \"3.0.0\"\n}\n# fixed\n")
	if v := version(wait("the fixed config")); v != "3.0.0" {
		t.Fatalf("after the fix: version %s, want 3.0.0", v)
	}
}
