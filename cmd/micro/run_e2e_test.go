package main

import (
	"bufio"
	"context"
	stderrors "errors"
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
	micro := goBuild(t, dir, "micro", ".")
	plug := goBuild(t, dir, "micro-registry-mem", "../../host/plugins/testdata/registry-memory")
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

	cmd, _, stderr := startMicroRun(t, micro, dir)
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

	stopMicroRun(ctx, t, cmd, stderr, started)
}

// TestKilledMicroRunLeavesNoBuilds kills `micro run` with SIGKILL, which gives
// it no chance to clean up: the service it built (a whole Go binary) and its
// child process do not outlive the next `micro run`, even one that builds
// nothing.
func TestKilledMicroRunLeavesNoBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	micro := goBuild(t, dir, "micro", ".")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // micro run's, and the next one's
	repo, _ := filepath.Abs("../..")
	builds := func() []string {
		t.Helper()
		found, err := filepath.Glob(filepath.Join(tmp, "microhost-services-*"))
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	killed := filepath.Join(dir, "killed")
	os.Mkdir(killed, 0o755)
	cfg := "service \"counter\" {\n  package = \"" + filepath.Join(repo, "examples/two-services/counter") + "\"\n}\n"
	if err := os.WriteFile(filepath.Join(killed, "micro.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _, _ := startMicroRun(t, micro, killed)
	started := childrenOf(cmd.Process.Pid)
	if got := builds(); len(got) != 1 || len(started) == 0 {
		t.Fatalf("micro run building a service: build directories %v and children %v, want one of each", got, started)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	next := filepath.Join(dir, "next")
	os.Mkdir(next, 0o755)
	if err := os.WriteFile(filepath.Join(next, "micro.hcl"), []byte("service \"helloworld\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, _, stderr := startMicroRun(t, micro, next)
	if got := builds(); len(got) != 0 {
		t.Errorf("the killed micro run's build directory outlived the next one's start: %v", got)
	}
	stopMicroRun(ctx, t, cmd, stderr, nil)
	// A child notices its host is gone within a second, then drains.
	for _, pid := range started {
		for alive(pid) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d started by the killed micro run is still there", pid)
		}
	}
}

// TestMicroCallOverTransportPlugin runs micro on a config whose transport is
// the ws plugin: the ready banner offers no curl line (the services do not
// speak plain HTTP), `micro call` reaches them through its own copy of the
// plugin, and the http transport's TLS flags are refused with the reason.
func TestMicroCallOverTransportPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	micro := goBuild(t, dir, "micro", ".")
	plug := goBuild(t, dir, "micro-transport-ws", "../../plugins/transport-ws")
	sum, _ := plugins.FileSHA256(plug)
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "transport-ws", Version: "0.1.0", SHA256: sum, Path: plug})
	if err := lock.Write(filepath.Join(dir, plugins.LockFileName)); err != nil {
		t.Fatal(err)
	}
	cfg := `
service "helloworld" {}
transport "ws" {}
plugin "transport-ws" {
  version = "0.1.0"
}
`
	if err := os.WriteFile(filepath.Join(dir, "micro.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, banner, stderr := startMicroRun(t, micro, dir)
	started := childrenOf(cmd.Process.Pid)
	text := strings.Join(banner, "\n")
	if !strings.Contains(text, "(transport ws)") || strings.Contains(text, "curl") || strings.Contains(text, "http://") {
		t.Errorf("ready banner for a ws service:\n%s\nwant its address marked (transport ws) and no http:// or curl line", text)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := exec.CommandContext(ctx, micro, "call", "helloworld", "Greeter.Hello", `{"name":"Ada"}`)
	call.Dir = dir
	out, err := call.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"message": "Hello Ada"`) {
		t.Fatalf("micro call over the ws plugin: %v\n%s\n%s", err, out, stderr.String())
	}
	call = exec.CommandContext(ctx, micro, "call", "--cert", "c.crt", "--key", "c.key", "helloworld", "Greeter.Hello")
	call.Dir = dir
	out, err = call.CombinedOutput()
	var exit *exec.ExitError
	if !stderrors.As(err, &exit) || exit.ExitCode() != exitUsage || !strings.Contains(string(out), `transport "ws" takes its TLS from its plugin's config`) {
		t.Errorf("micro call --cert over the ws plugin = %v\n%s\nwant exit %d naming the plugin's config", err, out, exitUsage)
	}
	stopMicroRun(ctx, t, cmd, stderr, started)
}

// goBuild builds pkg into dir/out and returns its path.
func goBuild(t *testing.T, dir, out, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, out)
	if b, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return bin
}

// startMicroRun starts `micro run` in dir and returns once its ready banner is
// printed, with the banner's lines; t.Cleanup kills it if it still runs.
func startMicroRun(t *testing.T, micro, dir string) (*exec.Cmd, []string, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(micro, "run")
	cmd.Dir = dir
	stdout, _ := cmd.StdoutPipe()
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, cmd)
	lines := bufio.NewScanner(stdout)
	var banner []string
	ready := false
	for lines.Scan() {
		line := lines.Text()
		if m := readyLine.FindStringSubmatch(line); m != nil {
			t.Logf("micro run: ready in %s", m[1])
			ready = true
		}
		if ready {
			banner = append(banner, line)
			if line == "press Ctrl-C to stop" {
				break
			}
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
	return cmd, banner, stderr
}

// stopAtCleanup stops a micro run the test did not stop itself as Ctrl-C
// would, so it removes what it built; one that does not stop within 10s is
// killed.
func stopAtCleanup(t *testing.T, cmd *exec.Cmd) {
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return // stopped and waited for
		}
		cmd.Process.Signal(syscall.SIGTERM)
		kill := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		defer kill.Stop()
		cmd.Wait()
	})
}

// stopMicroRun sends micro run SIGTERM, waits for it to exit cleanly, and
// checks that none of the processes it started is left.
func stopMicroRun(ctx context.Context, t *testing.T, cmd *exec.Cmd, stderr *strings.Builder, started []int) {
	t.Helper()
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
		cmd.Process.Kill()
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
