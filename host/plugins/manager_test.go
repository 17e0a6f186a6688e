package plugins_test

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/registry"
)

func TestStartDescribeConfigure(t *testing.T) {
	m, _ := newManager(t)
	s := spec(t, "registry-memory")
	s.Config = json.RawMessage(`{"zone":"eu"}`)
	inst, err := m.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	info := inst.Info()
	if info.Name != "memory" || info.Kind != "registry" || info.Version != "0.0.1" {
		t.Fatalf("Describe = %+v", info)
	}
	if !processAlive(inst.Pid()) {
		t.Fatalf("plugin process %d is not running", inst.Pid())
	}
	r := inst.Registry()
	svc := &registry.Service{Name: "greeter", Version: "1.0.0", Metadata: map[string]string{"a": "b"},
		Nodes: []*registry.Node{{ID: "n1", Address: "127.0.0.1:1234"}}}
	if err := r.Register(context.Background(), svc, 0); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetService(context.Background(), "greeter")
	if err != nil || len(got) != 1 || got[0].Nodes[0].Address != "127.0.0.1:1234" || got[0].Metadata["a"] != "b" {
		t.Fatalf("GetService through the plugin = %+v, %v", got, err)
	}
	if _, err := r.GetService(context.Background(), "nobody"); !stderrors.Is(err, registry.ErrNotFound) {
		t.Fatalf("missing service through the plugin: %v, want ErrNotFound", err)
	}
}

func TestRefusals(t *testing.T) {
	m, _ := newManager(t, func(o *plugins.Options) { o.StartTimeout = 5 * time.Second })
	dir := t.TempDir()

	tampered := spec(t, "registry-memory")
	tamperedPath := filepath.Join(dir, "micro-registry-memory")
	copyBinary(t, tampered.Path, tamperedPath)
	tampered.Path = tamperedPath
	f, _ := os.OpenFile(tamperedPath, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()

	notPlugin := filepath.Join(dir, "micro-registry-fake")
	os.WriteFile(notPlugin, []byte("#!/bin/sh\necho 'I am not a plugin'\n"), 0o755)
	fakeSum, _ := plugins.FileSHA256(notPlugin)

	kindMismatch := spec(t, "broker-memory")
	kindMismatch.ID, kindMismatch.Kind = "registry-memory", "registry"

	badConfig := spec(t, "registry-memory")
	badConfig.Config = json.RawMessage(`{"zone": 5}`)

	unknownConfig := spec(t, "registry-memory")
	unknownConfig.Config = json.RawMessage(`{"zones": "eu"}`)

	cases := []struct {
		name string
		spec plugins.Spec
		want []string
	}{
		{"missing binary", plugins.Spec{ID: "registry-gone", Kind: "registry", Version: "1.0.0", Path: filepath.Join(dir, "nope"), SHA256: "00"},
			[]string{"registry-gone", "missing", "micro plugin install"}},
		{"no checksum", plugins.Spec{ID: "registry-memory", Kind: "registry", Path: tampered.Path},
			[]string{"registry-memory", "no sha256", "micro plugin install"}},
		{"tampered binary", tampered, []string{"registry-memory", "checksum mismatch", tampered.SHA256, "reinstall"}},
		{"not a plugin", plugins.Spec{ID: "registry-fake", Kind: "registry", Version: "1.0.0", Path: notPlugin, SHA256: fakeSum},
			[]string{"registry-fake", "not a Microhost plugin"}},
		{"old protocol", spec(t, "registry-oldproto"), []string{"registry-oldproto", "protocol version 0", "this host speaks version 1"}},
		{"kind mismatch", kindMismatch, []string{"registry-memory", "is a broker plugin", "as a registry"}},
		{"config of the wrong type", badConfig, []string{"registry-memory", "rejected its config", "zone"}},
		{"unknown config key", unknownConfig, []string{"registry-memory", "rejected its config", "zones"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := m.Start(context.Background(), tc.spec)
			if err == nil {
				inst.Stop()
				t.Fatal("started, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestChattyPluginStillStarts(t *testing.T) {
	m, logs := newManager(t)
	inst, err := m.Start(context.Background(), spec(t, "registry-chatty"))
	if err != nil {
		t.Fatalf("a plugin printing to stdout before Serve must still start: %v", err)
	}
	if _, err := inst.Registry().ListServices(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "hello from a chatty plugin") }, "the stray print in the host log")
}

func TestPanicReachesHostLogAndPluginRestarts(t *testing.T) {
	m, logs := newManager(t)
	inst, err := m.Start(context.Background(), spec(t, "registry-panicky"))
	if err != nil {
		t.Fatal(err)
	}
	firstPid := inst.Pid()
	r := inst.Registry()
	err = r.Register(context.Background(), &registry.Service{Name: "panic", Nodes: []*registry.Node{{ID: "x", Address: "127.0.0.1:1"}}}, 0)
	if errors.Code(err) != 503 {
		t.Fatalf("call that crashed the plugin: %v, want 503", err)
	}
	waitFor(t, func() bool { return inst.Restarts() == 1 && inst.Pid() != 0 }, "the plugin restarted")
	if inst.Pid() == firstPid {
		t.Fatal("restarted plugin has the old pid")
	}
	out := logs.String()
	for _, want := range []string{"registry-panicky was asked to panic", `"plugin":"registry-panicky"`, `"plugin_version":"0.0.1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("host log lacks %s:\n%s", want, out)
		}
	}
	if err := r.Register(context.Background(), &registry.Service{Name: "ok", Nodes: []*registry.Node{{ID: "x", Address: "127.0.0.1:1"}}}, 0); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// TestKill9WhileCallsInFlight kills a registry plugin with SIGKILL while 100 calls
// are in flight: calls fail fast or succeed, never hang; the plugin restarts; the
// cache in front is current again; nothing leaks, no process is left.
func TestKill9WhileCallsInFlight(t *testing.T) {
	baseline := runtime.NumGoroutine()
	m, _ := newManager(t)
	inst, err := m.Start(context.Background(), spec(t, "registry-memory"))
	if err != nil {
		t.Fatal(err)
	}
	cache := registry.NewCache(inst.Registry(), registry.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	waitFor(t, cache.Ready, "the cache's first watch")
	ctx := context.Background()
	node := func(name string) *registry.Service {
		return &registry.Service{Name: name, Version: "1", Nodes: []*registry.Node{{ID: name + "-1", Address: "127.0.0.1:9"}}}
	}
	if err := inst.Registry().Register(ctx, node("before"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s, err := cache.Lookup(ctx, "before"); return err == nil && len(s) == 1 }, "cache sees the first service")

	firstPid := inst.Pid()
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			results <- inst.Registry().Register(cctx, node(fmt.Sprintf("during-%d", i)), 0)
		}(i)
	}
	close(start)
	if err := syscall.Kill(firstPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil && errors.Code(err) != 503 {
			t.Errorf("a call during the crash returned %v, want success or 503", err)
		}
	}
	waitFor(t, func() bool { return inst.Restarts() >= 1 && inst.Pid() != 0 }, "the plugin restarted")
	if processAlive(firstPid) {
		t.Errorf("the killed plugin %d is still there", firstPid)
	}
	// The restarted memory registry starts empty: once the cache has re-watched
	// and resynced, it no longer serves the service the old process held, and a
	// new registration shows up.
	waitFor(t, func() bool {
		_, err := cache.Lookup(ctx, "before")
		return stderrors.Is(err, registry.ErrNotFound)
	}, "cache resynced after the restart")
	again := node("before")
	again.Nodes[0].Address = "127.0.0.1:10"
	if err := inst.Registry().Register(ctx, again, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s, err := cache.Lookup(ctx, "before")
		return err == nil && len(s) == 1 && s[0].Nodes[0].Address == "127.0.0.1:10"
	}, "cache current after the restart")

	secondPid := inst.Pid()
	cache.Close()
	m.Close()
	if processAlive(secondPid) {
		t.Errorf("plugin %d outlived the manager", secondPid)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= baseline+2 }, fmt.Sprintf("goroutines back to %d (now %d)", baseline, runtime.NumGoroutine()))
}

func copyBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
