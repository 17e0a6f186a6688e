package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins/plugintest"
	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/registry"
)

// TestPluginConformance runs the registry suite through the plugin boundary:
// micro-registry-consul built, started by the host's plugin manager (which
// validates the config against the schema), and called over gRPC.
func TestPluginConformance(t *testing.T) {
	a := startAgent(t)
	spec := plugintest.Spec(t, ".", "registry-consul", version)

	spec.Config = json.RawMessage(`{"address":"` + a.addr() + `","ttl":"2s"}`)
	if inst, err := plugintest.Start(t, spec); err == nil {
		inst.Stop()
		t.Fatal("the host started the plugin with an unknown config key; the schema must refuse it")
	}

	spec.Config = json.RawMessage(`{"address":"` + a.addr() + `","ttl_check":true,"deregister_critical_after":"90s"}`)
	inst, err := plugintest.Start(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	conformance.Registry(t, func(t *testing.T) registry.Registry { return inst.Registry() },
		conformance.TTL(2*time.Second), conformance.Timeout(15*time.Second))
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
