package host_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
	"github.com/microhost/micro/host/plugins"
)

func quietLogger() hclog.Logger { return hclog.NewNullLogger() }

// runHost runs a host in the background until the test ends and returns it once
// ready.
func runHost(t *testing.T, opts ...host.Option) *host.Host {
	t.Helper()
	return startHost(t, append(opts, host.WithLogger(quietLogger()), host.GatewayListen("127.0.0.1:0"))...)
}

// startHost builds a host from opts, runs it until the test ends and returns
// it once ready.
func startHost(t *testing.T, opts ...host.Option) *host.Host {
	t.Helper()
	ready := make(chan struct{}, 1)
	h, err := host.New(context.Background(), append(opts, host.OnReady(func(*host.Host) { ready <- struct{}{} }))...)
	if err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, h, ready)
	return h
}

// runUntilReady runs h until the test ends (failing it if Run fails) and
// returns when ready fires.
func runUntilReady(t *testing.T, h *host.Host, ready <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("host Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("host stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("host not ready within 20s")
	}
}

func TestEmbeddedDefault(t *testing.T) {
	h := runHost(t, host.WithServiceHandler("helloworld", new(greeter.Greeter)))
	var rsp greeter.HelloResponse
	if err := h.Client().Call(context.Background(), "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: "Ada"}, &rsp); err != nil || rsp.Message != "Hello Ada" {
		t.Fatalf("call: %v %+v", err, rsp)
	}
	if h.Registry().Name() != "memory" || h.Broker().Name() != "memory" {
		t.Errorf("default components: %s %s", h.Registry().Name(), h.Broker().Name())
	}
}

func TestEmbeddedServiceWithoutHandlerIsRefused(t *testing.T) {
	_, err := host.New(context.Background(), host.WithLogger(quietLogger()))
	if err == nil || !strings.Contains(err.Error(), "helloworld") || !strings.Contains(err.Error(), "WithServiceHandler") {
		t.Fatalf("got %v, want a refusal naming the service and the fix", err)
	}
}

// TestRegistryPluginFromConfig runs a config whose registry is a plugin recorded
// in micro.lock.hcl; the service registers through the plugin process.
func TestRegistryPluginFromConfig(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "micro-registry-mem")
	if out, err := exec.Command("go", "build", "-o", bin, "./plugins/testdata/registry-memory").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "registry-mem", Version: "0.0.1", SHA256: sum, Path: bin})
	if err := lock.Write(filepath.Join(dir, plugins.LockFileName)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "micro.hcl")
	os.WriteFile(cfgPath, []byte(`
service "greeter" {}
registry "mem" {}
plugin "registry-mem" {
  version    = "0.0.1"
  gomaxprocs = 3
  config {
    zone = "eu"
  }
}
`), 0o644)

	h := runHost(t, host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)))
	if got := h.Registry().Name(); got != "registry-mem" {
		t.Fatalf("registry is %q, want the plugin", got)
	}
	svcs, err := h.Registry().GetService(context.Background(), "greeter")
	if err != nil || len(svcs) != 1 {
		t.Fatalf("the plugin registry does not have the service: %v %v", svcs, err)
	}
	var rsp greeter.HelloResponse
	if err := h.Client().Call(context.Background(), "greeter", "Greeter.Hello", &greeter.HelloRequest{Name: "Ada"}, &rsp); err != nil || rsp.Message != "Hello Ada" {
		t.Fatalf("call: %v %+v", err, rsp)
	}
	// The plugin process runs with the GOMAXPROCS the block gives it.
	pids := pluginPids(t, bin)
	if len(pids) != 1 {
		t.Fatalf("plugin processes: %v, want 1", pids)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if env := strings.Split(string(environ), "\x00"); !slices.Contains(env, "GOMAXPROCS=3") {
		t.Errorf("the plugin's environment has no GOMAXPROCS=3: %q", env)
	}

	// A version that does not match the lock is refused with the position.
	os.WriteFile(cfgPath, []byte("service \"greeter\" {}\nregistry \"mem\" {}\nplugin \"registry-mem\" {\n  version = \"9.9.9\"\n}\n"), 0o644)
	_, err = host.New(context.Background(), host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)), host.WithLogger(quietLogger()))
	if err == nil || !strings.Contains(err.Error(), "micro.hcl:4:") || !strings.Contains(err.Error(), "9.9.9") {
		t.Fatalf("version mismatch: %v", err)
	}
	// Config the plugin's schema rejects is refused.
	os.WriteFile(cfgPath, []byte("service \"greeter\" {}\nregistry \"mem\" {}\nplugin \"registry-mem\" {\n  version = \"0.0.1\"\n  config {\n    zone = 7\n  }\n}\n"), 0o644)
	_, err = host.New(context.Background(), host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)), host.WithLogger(quietLogger()))
	if err == nil || !strings.Contains(err.Error(), "rejected its config") || !strings.Contains(err.Error(), "micro.hcl:3:") {
		t.Fatalf("schema rejection: %v", err)
	}
	// A plugin that is not installed names the fix.
	os.WriteFile(cfgPath, []byte("service \"greeter\" {}\nregistry \"gone\" {}\nplugin \"registry-gone\" {\n  version = \"1.0.0\"\n}\n"), 0o644)
	_, err = host.New(context.Background(), host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)), host.WithLogger(quietLogger()))
	if err == nil || !strings.Contains(err.Error(), "not installed") || !strings.Contains(err.Error(), "micro plugin install") {
		t.Fatalf("missing plugin: %v", err)
	}
}

// TestPluginMissingFromPluginDir names the directory a plugin the lock file
// records was looked for in, and where that directory came from: a user who
// installed with $MICRO_PLUGIN_DIR set and ran without it sees why.
func TestPluginMissingFromPluginDir(t *testing.T) {
	dir := t.TempDir()
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "registry-mem", Version: "0.0.1", Source: "/opt/micro-registry-mem", SHA256: strings.Repeat("0", 64)})
	if err := lock.Write(filepath.Join(dir, plugins.LockFileName)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "micro.hcl")
	os.WriteFile(cfgPath, []byte("service \"greeter\" {}\nregistry \"mem\" {}\nplugin \"registry-mem\" {\n  version = \"0.0.1\"\n}\n"), 0o644)
	home, given, fromEnv := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct {
		name, env string
		opts      []host.Option
		dir, why  string
	}{
		{"default", "", nil, filepath.Join(home, ".micro", "plugins"), "(the default, as $MICRO_PLUGIN_DIR is not set)"},
		{"from the environment", fromEnv, nil, fromEnv, "(from $MICRO_PLUGIN_DIR)"},
		{"given to the host", fromEnv, []host.Option{host.WithPluginDir(given)}, given, "(the one the host was given)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(plugins.EnvPluginDir, tt.env)
			opts := append([]host.Option{host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)), host.WithLogger(quietLogger())}, tt.opts...)
			_, err := host.New(context.Background(), opts...)
			if err == nil {
				t.Fatal("a host started with its plugin missing")
			}
			for _, want := range []string{"micro.hcl:3:1: plugin registry-mem 0.0.1", "not in the plugin directory " + tt.dir + " " + tt.why, "micro plugin install /opt/micro-registry-mem", "$MICRO_PLUGIN_DIR"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nsays nothing of %q", err, want)
				}
			}
		})
	}
}

// TestNoPluginProcessAfterStop checks /proc for the plugin's pid after the host
// stopped.
func TestNoPluginProcessAfterStop(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "micro-registry-mem")
	if out, err := exec.Command("go", "build", "-o", bin, "./plugins/testdata/registry-memory").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum, _ := plugins.FileSHA256(bin)
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "registry-mem", Version: "0.0.1", SHA256: sum, Path: bin})
	lock.Write(filepath.Join(dir, plugins.LockFileName))
	cfgPath := filepath.Join(dir, "micro.hcl")
	os.WriteFile(cfgPath, []byte("service \"greeter\" {}\nregistry \"mem\" {}\nplugin \"registry-mem\" {\n  version = \"0.0.1\"\n}\n"), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pids []int
	h, err := host.New(context.Background(), host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)), host.WithLogger(quietLogger()),
		host.OnReady(func(*host.Host) { pids = pluginPids(t, bin); cancel() }))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 {
		t.Fatalf("plugin processes running while the host was up: %v, want 1", pids)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z") {
				t.Errorf("plugin process %d outlived the host", pid)
			}
		}
	}
}

// pluginPids finds running processes whose executable name is the plugin's.
func pluginPids(t *testing.T, bin string) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == filepath.Base(bin)[:min(15, len(filepath.Base(bin)))] {
			pids = append(pids, pid)
		}
	}
	return pids
}
