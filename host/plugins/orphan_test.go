package plugins_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
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
// to stop its plugins: the plugin notices its parent is gone and exits.
func TestNoOrphanWhenHostIsKilled(t *testing.T) {
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), "MICROHOST_TEST_HOST_PLUGIN="+binary(t, "registry-memory"))
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
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	waitFor(t, func() bool { return !processAlive(pid) }, fmt.Sprintf("plugin %d to exit after its host was killed", pid))
}
