package host_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
)

// TestStateFileIsPrivate leaves a stale, world-readable temporary state file
// behind (as a crashed host may): the state file, which holds the bridge's
// client credential, is still readable by its owner only.
func TestStateFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "micro.hcl")
	if err := os.WriteFile(cfgPath, []byte("service \"greeter\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, host.StateFile)
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state+".tmp", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state+".tmp", 0o644); err != nil {
		t.Fatal(err)
	}
	runHost(t, host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)))
	st, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", host.StateFile, mode)
	}
}
