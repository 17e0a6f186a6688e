package plugins_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/microhost/micro/host/plugins"
)

// TestPluginEnvironment checks what a plugin process is started with: its
// share of the CPUs as GOMAXPROCS (half the host's unless the spec says), also
// logged, and none of the host's own environment.
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("MICRO_TEST_HOST_SECRET", "not for plugins")
	tests := []struct {
		name  string
		procs int
		want  string
	}{
		{"default", 0, strconv.Itoa(plugins.DefaultProcs())},
		{"from the spec", 3, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, logs := newManager(t)
			s := spec(t, "codec-msgpack")
			s.Procs = tt.procs
			inst, err := m.Start(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			env := processEnv(t, inst.Pid())
			if got := env["GOMAXPROCS"]; got != tt.want {
				t.Errorf("GOMAXPROCS = %q, want %q (variables: %v)", got, tt.want, slices.Sorted(maps.Keys(env)))
			}
			if line := `"gomaxprocs":` + tt.want; !strings.Contains(logs.String(), line) {
				t.Errorf("the start is not logged with %s:\n%s", line, logs)
			}
			if _, leaked := env["MICRO_TEST_HOST_SECRET"]; leaked {
				t.Errorf("the host's environment reached the plugin (variables: %v)", slices.Sorted(maps.Keys(env)))
			}
		})
	}
}

func TestDefaultProcsIsHalfTheHostsAtLeastOne(t *testing.T) {
	host := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(host) })
	for hostProcs, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 9: 4, 64: 32} {
		runtime.GOMAXPROCS(hostProcs)
		if got := plugins.DefaultProcs(); got != want {
			t.Errorf("with the host at GOMAXPROCS=%d, DefaultProcs() = %d, want %d", hostProcs, got, want)
		}
	}
}

// processEnv reads the environment a process was started with.
func processEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok {
			env[string(k)] = string(v)
		}
	}
	return env
}
