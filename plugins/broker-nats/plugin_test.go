package main

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/host/plugins/plugintest"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/conformance"
)

// startPlugin builds micro-broker-nats and starts it as the host does (checksum,
// config checked against its schema, Configure), stopped when tb ends.
func startPlugin(tb testing.TB, config map[string]any) *plugins.Instance {
	tb.Helper()
	spec := plugintest.Spec(tb, ".", "broker-nats", version)
	raw, err := json.Marshal(config)
	if err != nil {
		tb.Fatal(err)
	}
	spec.Config = raw
	inst, err := plugintest.Start(tb, spec)
	if err != nil {
		tb.Fatal(err)
	}
	return inst
}

// TestPluginConformance runs the broker suite through the plugin boundary, in
// JetStream mode against a real NATS server.
func TestPluginConformance(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	inst := startPlugin(t, map[string]any{
		"url":       s.ClientURL(),
		"reconnect": map[string]any{"wait_ms": 20},
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"conformance.>"}, "ack_wait_ms": 1000},
	})
	conformance.Broker(t, func(t *testing.T) broker.Broker { return inst.Broker() })
}

// TestPluginRefusesBadConfig checks the host refuses a config the plugin's
// schema does not allow, before the plugin is configured.
func TestPluginRefusesBadConfig(t *testing.T) {
	spec := plugintest.Spec(t, ".", "broker-nats", version)
	spec.Config = json.RawMessage(`{"url":"nats://127.0.0.1:1","jetstream":{"enabled":true}}`)
	if inst, err := plugintest.Start(t, spec); err == nil {
		inst.Stop()
		t.Fatal("the host started broker-nats with jetstream enabled and no subjects; the schema must refuse it")
	} else {
		t.Log(err)
	}
}
