package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/conformance"
)

// buildDir holds the plugin binary the tests build; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "micro-broker-nats-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pluginBinary builds micro-broker-nats once per test binary run.
var pluginBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(buildDir, plugins.BinaryName("broker-nats"))
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build micro-broker-nats: %w\n%s", err, out)
	}
	return bin, nil
})

// startPlugin starts the built plugin through the host's plugin manager (which
// checks its checksum and validates config against its schema) and stops it
// when tb ends.
func startPlugin(tb testing.TB, config map[string]any) *plugins.Instance {
	tb.Helper()
	bin, err := pluginBinary()
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := json.Marshal(config)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := plugins.NewManager(plugins.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	inst, err := m.Start(context.Background(), plugins.Spec{
		ID: "broker-nats", Kind: "broker", Version: version, Path: bin, SHA256: sum, Config: raw,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(inst.Stop)
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
	bin, err := pluginBinary()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	m, err := plugins.NewManager(plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	inst, err := m.Start(context.Background(), plugins.Spec{
		ID: "broker-nats", Kind: "broker", Version: version, Path: bin, SHA256: sum,
		Config: json.RawMessage(`{"url":"nats://127.0.0.1:1","jetstream":{"enabled":true}}`),
	})
	if err == nil {
		inst.Stop()
		t.Fatal("the host started broker-nats with jetstream enabled and no subjects; the schema must refuse it")
	}
	t.Log(err)
}
