package workdir

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const prefix = "microhost-test-"

// holdEnv makes this test binary a host that makes a Dir, prints its path and
// waits to be killed.
const holdEnv = "MICROHOST_TEST_WORKDIR_HOLD"

func TestMain(m *testing.M) {
	if os.Getenv(holdEnv) != "" {
		d, err := New(prefix)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(d.Path())
		select {}
	}
	os.Exit(m.Run())
}

// TestDeadHostsDirectoryIsRemoved runs two hosts and kills one with SIGKILL,
// which gives it no chance to clean up: the next New removes the dead host's
// directory and keeps the live host's, one that was never locked, and one
// with another prefix.
func TestDeadHostsDirectoryIsRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, livePath := hold(t)
	dead, deadPath := hold(t)
	unlocked := filepath.Join(tmp, prefix+"unlocked")
	other := filepath.Join(tmp, "another-"+filepath.Base(deadPath))
	for _, dir := range []string{unlocked, other} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := dead.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dead.Wait()
	d, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{d.Path(), livePath, unlocked, other}
	slices.Sort(want)
	if got := entries(t, tmp); !slices.Equal(got, want) {
		t.Fatalf("after a new host started: %v, want %v (the dead host's %s removed)", got, want, deadPath)
	}
	if info, err := os.Stat(d.Path()); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("the new directory: %v %v, want mode 0700", info, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path()); !os.IsNotExist(err) {
		t.Fatalf("after Close, %s: %v, want it gone", d.Path(), err)
	}
}

// A host making its directory while others start (and remove the directories
// of dead hosts) keeps it: its lock file is never seen unlocked.
func TestNewRacingCleanups(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stop := make(chan struct{})
	var cleaners sync.WaitGroup
	for range 2 {
		cleaners.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					removeDead(tmp, prefix)
				}
			}
		})
	}
	defer func() { close(stop); cleaners.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		d, err := New(prefix)
		if err != nil {
			t.Fatalf("host %d: %v", n, err)
		}
		_, err = os.Stat(filepath.Join(d.Path(), lockName))
		d.Close()
		if err != nil {
			t.Fatalf("host %d: another host removed its live directory: %v", n, err)
		}
	}
}

// hold starts this test binary as a host holding a Dir and returns it with
// the Dir's path; the process is killed at cleanup.
func hold(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	path := strings.TrimSpace(line)
	if err != nil || !strings.HasPrefix(filepath.Base(path), prefix) {
		t.Fatalf("the holding host said %q (%v)", line, err)
	}
	return cmd, path
}

// entries lists dir's entries as paths, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range es {
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	slices.Sort(paths)
	return paths
}
