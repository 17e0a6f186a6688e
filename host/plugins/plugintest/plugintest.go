// Package plugintest builds a plugin from source and starts it the way the host
// does, for tests of a plugin through the real boundary: checksum, Describe,
// config schema, Configure, gRPC with mutual TLS.
package plugintest

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/internal/syncbuf"
)

// Spec builds the plugin's main package pkg (a path, e.g. ".") and returns the
// spec to start it with: id ("<kind>-<name>"), kind, version and the binary's
// SHA-256 filled in, Config left to the caller.
func Spec(tb testing.TB, pkg, id, version string) plugins.Spec {
	tb.Helper()
	kind, _, err := plugins.SplitID(id)
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(tb.TempDir(), plugins.BinaryName(id))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return plugins.Spec{ID: id, Kind: kind, Version: version, Path: bin, SHA256: sum}
}

// Start starts spec through a plugin manager of its own; the plugin and the
// manager stop when tb ends. The error is the manager's refusal, if any. What
// the manager and the plugin log is shown when tb fails.
func Start(tb testing.TB, spec plugins.Spec) (*plugins.Instance, error) {
	tb.Helper()
	var logs syncbuf.Buffer
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("plugin %s log:\n%s", spec.ID, logs.String())
		}
	})
	log := hclog.New(&hclog.LoggerOptions{Name: "plugintest", Output: &logs, Level: hclog.Debug})
	m, err := plugins.NewManager(plugins.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { m.Close() })
	inst, err := m.Start(context.Background(), spec)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(inst.Stop)
	return inst, nil
}
