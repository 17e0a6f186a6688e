package plugins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/plugins"
)

// TestNoOrphanWhenHandshakeTimesOut starts plugins that fork a helper and
// never complete the handshake: the failed start returns in time and kills the
// plugin's whole process group, helper included, whether or not the helper
// holds the plugin's output open.
func TestNoOrphanWhenHandshakeTimesOut(t *testing.T) {
	for name, redirect := range map[string]string{
		"detached helper":       " </dev/null >/dev/null 2>&1",
		"helper holding output": "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "helper.pid")
			script := fmt.Sprintf("#!/bin/sh\n/bin/sleep 60%s &\necho $! > %s\nexec /bin/sleep 60\n", redirect, pidFile)
			bin := filepath.Join(dir, plugins.BinaryName("registry-hang"))
			if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			sum, err := plugins.FileSHA256(bin)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := newManager(t, func(o *plugins.Options) { o.StartTimeout = 500 * time.Millisecond })
			errc := make(chan error, 1)
			go func() {
				_, err := m.Start(context.Background(), plugins.Spec{ID: "registry-hang", Kind: "registry", Version: "0.0.1", Path: bin, SHA256: sum})
				errc <- err
			}()
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("a plugin that never handshakes was started")
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Start did not return after the handshake timed out")
			}
			data, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("the plugin did not start its helper: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			waitFor(t, func() bool { return !processAlive(pid) }, fmt.Sprintf("helper %d of a plugin that failed to start to exit", pid))
		})
	}
}

// onceWriter calls f the first time a log line contains match.
type onceWriter struct {
	match string
	f     func()
	once  sync.Once
}

func (w *onceWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.match)) {
		w.once.Do(w.f)
	}
	return len(p), nil
}

// TestStartDuringCloseLeavesNoPlugin closes the manager while a plugin is
// starting: the plugin must not outlive the manager.
func TestStartDuringCloseLeavesNoPlugin(t *testing.T) {
	var m *plugins.Manager
	w := &onceWriter{match: "plugin started", f: func() { m.Close() }}
	m, err := plugins.NewManager(plugins.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: w, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	inst, err := m.Start(context.Background(), spec(t, "registry-memory"))
	if err == nil {
		pid := inst.Pid()
		t.Cleanup(inst.Stop)
		t.Fatalf("Start succeeded on a closed manager; plugin pid %d alive: %v", pid, processAlive(pid))
	}
	if !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("error %q does not say the host is shutting down", err)
	}
}

// TestOnlyUnplannedExitsAreErrors describes, starts and closes a plugin: the
// processes the host ends on purpose are not logged as errors, while one killed
// behind its back is; every exit line keeps the plugin's id as its tag.
func TestOnlyUnplannedExitsAreErrors(t *testing.T) {
	m, logs := newManager(t)
	s := spec(t, "registry-memory")
	if _, err := m.Describe(context.Background(), s.Path, s.SHA256); err != nil {
		t.Fatal(err)
	}
	inst, err := m.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(inst.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return inst.Restarts() == 1 }, "the plugin restarted")
	m.Close()

	var exits, errorExits int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["@message"] != "plugin process exited" {
			continue
		}
		exits++
		if entry["@level"] == "error" {
			errorExits++
		}
		if tag, _ := entry["plugin"].(string); strings.Contains(tag, "/") {
			t.Errorf("exit line tagged with a path instead of the plugin id: %s", line)
		}
	}
	if exits != 3 || errorExits != 1 {
		t.Fatalf("%d exit lines, %d of them errors; want 3 (describe, kill, close) with 1 error (the kill):\n%s", exits, errorExits, logs.String())
	}
}

// TestPluginSocketsDoNotOutliveTheirProcess describes a plugin, then starts
// it, kills it with SIGKILL and stops it: a killed plugin cannot remove its
// gRPC socket file, so the host does, and every socket lives in the host's own
// directory, never in the shared temporary one.
func TestPluginSocketsDoNotOutliveTheirProcess(t *testing.T) {
	s := spec(t, "registry-memory") // built before TMPDIR moves into this test's directory
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	m, _ := newManager(t)
	hostDirs := workDirs(t, tmp)
	if len(hostDirs) != 1 {
		t.Fatalf("work directories %v, want one", hostDirs)
	}
	sockets := func() []string {
		t.Helper()
		var found []string
		err := filepath.WalkDir(tmp, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type()&os.ModeSocket != 0 {
				found = append(found, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}

	if _, err := m.Describe(context.Background(), s.Path, s.SHA256); err != nil {
		t.Fatal(err)
	}
	if got := sockets(); len(got) != 0 {
		t.Fatalf("sockets left after Describe: %v", got)
	}
	inst, err := m.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	running := sockets()
	if len(running) != 1 || filepath.Dir(running[0]) != hostDirs[0] {
		t.Fatalf("a running plugin's sockets: %v, want one in %s", running, hostDirs[0])
	}
	if err := syscall.Kill(inst.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return inst.Restarts() == 1 }, "the plugin restarted")
	if got := sockets(); len(got) != 1 || got[0] == running[0] {
		t.Fatalf("after the killed plugin restarted, sockets %v, want only the new process's (the old one was %s)", got, running[0])
	}
	inst.Stop()
	if got := sockets(); len(got) != 0 {
		t.Fatalf("sockets left after the plugin stopped: %v", got)
	}
}
