package plugins_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/microhost/micro/host/plugins"
)

// runTestHost is this test binary acting as a host process: it starts the plugin
// at path, prints the plugin's pid and waits to be killed.
func runTestHost(path string) {
	sum, err := plugins.FileSHA256(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	m, err := plugins.NewManager(plugins.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	inst, err := m.Start(context.Background(), plugins.Spec{ID: "registry-memory", Kind: "registry", Version: "0.0.1", Path: path, SHA256: sum})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("plugin", inst.Pid())
	select {}
}

// TestNoOrphanWhenHostIsKilled kills a host with SIGKILL, which gives it no chance
// to stop its plugins: the plugin notices its parent is gone and exits, and the
// next host removes the directory the dead one ran its plugin copies from,
// never a live host's.
func TestNoOrphanWhenHostIsKilled(t *testing.T) {
	plugin := binary(t, "registry-memory") // built before TMPDIR moves into this test's directory
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the test host's, and the next host's
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), "MICROHOST_TEST_HOST_PLUGIN="+plugin)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Process.Kill(); host.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("test host said nothing: %v", err)
	}
	pidText, ok := strings.CutPrefix(strings.TrimSpace(line), "plugin ")
	if !ok {
		t.Fatalf("test host: %s", line)
	}
	pid, _ := strconv.Atoi(pidText)
	if !processAlive(pid) {
		t.Fatalf("plugin %d is not running", pid)
	}
	hostDirs := workDirs(t, tmp)
	if len(hostDirs) != 1 {
		t.Fatalf("the test host's work directories: %v, want one", hostDirs)
	}
	startAndClose := func() {
		t.Helper()
		m, err := plugins.NewManager(plugins.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	startAndClose()
	if got := workDirs(t, tmp); !slices.Equal(got, hostDirs) {
		t.Fatalf("with the test host alive, another host left work directories %v, want %v", got, hostDirs)
	}

	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	waitFor(t, func() bool { return !processAlive(pid) }, fmt.Sprintf("plugin %d to exit after its host was killed", pid))
	startAndClose()
	if got := workDirs(t, tmp); len(got) != 0 {
		t.Fatalf("the killed host's work directory outlived the next host's start: %v", got)
	}
}

// workDirs lists the hosts' plugin work directories in dir.
func workDirs(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "microhost-plugins-*"))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

// A work directory without a lock file may belong to a host between making it
// and locking it (or to an older host): a starting host leaves it alone.
func TestWorkDirWithoutLockIsLeft(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	unlocked := filepath.Join(tmp, "microhost-plugins-123")
	if err := os.Mkdir(unlocked, 0o700); err != nil {
		t.Fatal(err)
	}
	m, err := plugins.NewManager(plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := workDirs(t, tmp); len(got) != 2 {
		t.Fatalf("work directories with a host running: %v, want the unlocked one and the host's", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := workDirs(t, tmp); !slices.Equal(got, []string{unlocked}) {
		t.Fatalf("after Close: %v, want only %s", got, unlocked)
	}
}
