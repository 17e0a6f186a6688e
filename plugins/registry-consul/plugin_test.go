package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/registry"
)

// TestPluginConformance runs the registry suite through the plugin boundary:
// micro-registry-consul built, started by the host's plugin manager (which
// validates the config against the schema), and called over gRPC.
func TestPluginConformance(t *testing.T) {
	a := startAgent(t)
	m, spec := pluginSpec(t)

	spec.Config = json.RawMessage(`{"address":"` + a.addr() + `","ttl":"2s"}`)
	if inst, err := m.Start(context.Background(), spec); err == nil {
		inst.Stop()
		t.Fatal("the host started the plugin with an unknown config key; the schema must refuse it")
	}

	spec.Config = json.RawMessage(`{"address":"` + a.addr() + `","ttl_check":true,"deregister_critical_after":"90s"}`)
	inst, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	conformance.Registry(t, func(t *testing.T) registry.Registry { return inst.Registry() },
		conformance.TTL(2*time.Second), conformance.Timeout(15*time.Second))
}

// pluginSpec builds micro-registry-consul and returns a plugin manager and the
// spec (no config yet) to start it with; both go away when tb ends.
func pluginSpec(tb testing.TB) (*plugins.Manager, plugins.Spec) {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), plugins.BinaryName("registry-consul"))
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := plugins.NewManager(plugins.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m, plugins.Spec{ID: "registry-consul", Kind: "registry", Version: version, Path: bin, SHA256: sum}
}

// TestConfigRejected checks parseConfig refuses what it cannot use and applies
// the defaults.
func TestConfigRejected(t *testing.T) {
	for _, cfg := range []string{`{}`, `{"address":"x","deregister_critical_after":"soon"}`, `{"address":"x","bogus":1}`} {
		if _, err := parseConfig(json.RawMessage(cfg)); err == nil {
			t.Errorf("parseConfig(%s) accepted it", cfg)
		}
	}
	o, err := parseConfig(json.RawMessage(`{"address":"127.0.0.1:8500"}`))
	if err != nil || !o.ttlCheck || o.deregisterAfter != defaultDeregisterAfter {
		t.Errorf("parseConfig(address only) = %+v, %v; want ttl_check on and deregister after %s", o, err, defaultDeregisterAfter)
	}
}
