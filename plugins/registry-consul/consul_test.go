package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// consulBinary returns the Consul binary scripts/testenv provides, building it on
// first use (so CI needs no setup step); MICRO_TESTENV=off skips instead.
func consulBinary(t testing.TB) string {
	t.Helper()
	if os.Getenv("MICRO_TESTENV") == "off" {
		t.Skip("!!! SKIPPED: MICRO_TESTENV=off — these tests need a real Consul (scripts/testenv install consul) !!!")
	}
	binOnce.Do(func() {
		script, err := filepath.Abs("../../scripts/testenv")
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command(script, "path", "consul")
		cmd.Stderr = os.Stderr // the first build takes minutes: show progress
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("%s path consul: %w", script, err)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// agent is a Consul dev agent on loopback ports of its own.
type agent struct {
	t       testing.TB
	bin     string
	dataDir string
	ports   []int // http, server, serf-lan, serf-wan
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
}

// startAgent starts a dev agent on free ports, waits for its leader, and stops
// it when the test ends.
func startAgent(t testing.TB) *agent {
	t.Helper()
	a := &agent{t: t, bin: consulBinary(t), dataDir: t.TempDir()}
	t.Cleanup(a.stop)
	// A port freePorts found free can be taken by another process before the
	// agent binds it: then the agent exits at once, and gets other ports.
	for attempt := 1; ; attempt++ {
		a.ports = freePorts(t, 4)
		err := a.tryStart()
		if err == nil {
			return a
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		a.stop()
	}
}

// addr is the agent's HTTP address.
func (a *agent) addr() string { return "127.0.0.1:" + strconv.Itoa(a.ports[0]) }

// start runs the agent and waits until it has a leader.
func (a *agent) start() {
	a.t.Helper()
	if err := a.tryStart(); err != nil {
		a.t.Fatal(err)
	}
}

// tryStart runs the agent and waits until it has a leader; it fails at once
// when the agent exits.
func (a *agent) tryStart() error {
	t := a.t
	t.Helper()
	log, err := os.OpenFile(filepath.Join(t.TempDir(), "consul.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.log = log
	p := func(i int) string { return strconv.Itoa(a.ports[i]) }
	a.cmd = exec.Command(a.bin, "agent", "-dev",
		"-node", "microhost-test", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-data-dir", a.dataDir,
		"-http-port", p(0), "-server-port", p(1), "-serf-lan-port", p(2), "-serf-wan-port", p(3),
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1", "-log-level", "info")
	a.cmd.Stdout, a.cmd.Stderr = log, log
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start consul: %v", err)
	}
	a.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(a.cmd, a.exited)

	client, err := api.NewClient(&api.Config{Address: a.addr()})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.exited:
			return fmt.Errorf("consul exited before it had a leader: %s", a.logTail())
		default:
		}
		leader, err := client.Status().Leader()
		if err == nil && leader != "" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("no leader yet")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul has no leader within 30s: %w", err)
		}
		<-tick.C
	}
}

// stop kills the agent and waits for it to exit.
func (a *agent) stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.t.Errorf("consul (pid %d) did not exit within 10s of SIGKILL", a.cmd.Process.Pid)
	}
	a.cmd = nil
	_ = a.log.Close()
	if a.t.Failed() {
		a.t.Logf("consul log:\n%s", a.logTail())
	}
}

// restart kills the agent and starts a new one on the same ports and data dir.
func (a *agent) restart() {
	a.t.Helper()
	a.stop()
	a.start()
}

// logTail returns the end of the agent's log.
func (a *agent) logTail() string {
	b, _ := os.ReadFile(a.log.Name())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// freePorts returns n distinct free loopback TCP ports (listened on at once,
// then released for the agent to take).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// newTestRegistry returns a registry configured for a, closed when the test ends.
func newTestRegistry(t *testing.T, a *agent) *consulRegistry {
	t.Helper()
	r := newRegistry(nil)
	if err := r.Configure(t.Context(), []byte(`{"address":"`+a.addr()+`"}`)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// eventually polls f until it returns nil, failing t with f's last error
// after within.
func eventually(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		<-tick.C
	}
}
