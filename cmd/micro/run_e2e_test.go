package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
)

var readyLine = regexp.MustCompile(`^ready in (\S+)`)

// TestMicroRunTwoServicesWithRegistryPlugin runs the real micro binary on a
// config with an embedded service, a child-process service and a registry
// served as a plugin; calls through `micro call`; then SIGTERMs micro and checks
// that no process it started is left.
func TestMicroRunTwoServicesWithRegistryPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	repo, _ := filepath.Abs("../..")
	build := func(out, pkg string) string {
		bin := filepath.Join(dir, out)
		if b, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return bin
	}
	micro := build("micro", ".")
	plug := build("micro-registry-mem", "../../host/plugins/testdata/registry-memory")
	sum, _ := plugins.FileSHA256(plug)
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "registry-mem", Version: "0.0.1", SHA256: sum, Path: plug})
	if err := lock.Write(filepath.Join(dir, plugins.LockFileName)); err != nil {
		t.Fatal(err)
	}
	cfg := `
service "helloworld" {}
service "counter" {
  package = "` + filepath.Join(repo, "examples/two-services/counter") + `"
}
registry "mem" {}
plugin "registry-mem" {
  version = "0.0.1"
}
`
	os.WriteFile(filepath.Join(dir, "micro.hcl"), []byte(cfg), 0o644)

	cmd := exec.Command(micro, "run")
	cmd.Dir = dir
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if m := readyLine.FindStringSubmatch(lines.Text()); m != nil {
			t.Logf("micro run: ready in %s", m[1])
			ready = true
			break
		}
	}
	if !ready {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("micro run never got ready:\n%s", stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	started := childrenOf(cmd.Process.Pid)
	if len(started) < 2 {
		t.Fatalf("micro run started %v, want the plugin and the child service", started)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := exec.CommandContext(ctx, micro, "call", "counter", "Counter.Greet", `{"name":"Ada"}`)
	call.Dir = dir
	out, err := call.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"message": "Hello Ada"`) || !strings.Contains(string(out), `"count": 1`) {
		t.Fatalf("micro call: %v\n%s\n%s", err, out, stderr.String())
	}
	list := exec.CommandContext(ctx, micro, "services")
	list.Dir = dir
	out, err = list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "counter") || !strings.Contains(string(out), "helloworld") {
		t.Fatalf("micro services: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("micro run exited with %v after SIGTERM:\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("micro run did not stop after SIGTERM")
	}
	for _, pid := range started {
		if alive(pid) {
			t.Errorf("process %d started by micro run is still there after it stopped", pid)
		}
	}
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok && strings.TrimSpace(v) == strconv.Itoa(pid) && alive(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// alive reports whether pid is a running, non-zombie process.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
