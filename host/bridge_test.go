package host_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestDialRunning connects to the host running in a directory from its state
// file, and says why when none answers: no state file, a host process that is
// gone, or a process under its pid whose bridge does not answer (a killed host
// not yet reaped, or another process that took its pid).
func TestDialRunning(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "micro.hcl")
	if err := os.WriteFile(cfgPath, []byte("service \"greeter\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeState := func(t *testing.T, dir, bridge string, pid int) {
		t.Helper()
		state := filepath.Join(dir, host.StateFile)
		if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
			t.Fatal(err)
		}
		data := fmt.Sprintf(`{"bridge":%q,"tls":"","pid":%d}`, bridge, pid)
		if err := os.WriteFile(state, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name   string
		bridge string
		pid    int // 0: no state file
		want   []string
	}{
		{"no state file", "", 0, []string{"no host is running here", "is missing", "micro run"}},
		{"host process gone", closed, exited.Process.Pid, []string{"no host is running here", fmt.Sprintf("process %d, which is gone", exited.Process.Pid), "micro run"}},
		{"bridge does not answer", closed, os.Getpid(), []string{"no host answers here", "bridge " + closed + " does not answer", "connection refused", "micro run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.pid != 0 {
				writeState(t, dir, tt.bridge, tt.pid)
			}
			r, err := host.DialRunning(dir)
			if err == nil {
				r.Close()
				t.Fatal("DialRunning connected with no host running")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nsays nothing of %q", err, want)
				}
			}
		})
	}

	t.Run("running", func(t *testing.T) {
		runHost(t, host.WithConfigFile(cfgPath), host.WithHandler(new(greeter.Greeter)))
		r, err := host.DialRunning(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svcs, err := r.Registry.GetService(ctx, "greeter")
		if err != nil || len(svcs) != 1 {
			t.Fatalf("the running host's registry through its bridge: %v %v", svcs, err)
		}
	})
}
