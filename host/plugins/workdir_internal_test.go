package plugins

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A host making its work directory while others start (and remove the
// directories of dead hosts) keeps it: its lock file is never seen unlocked.
func TestNewWorkDirRacingCleanups(t *testing.T) {
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
					removeDeadWorkDirs(tmp)
				}
			}
		})
	}
	defer func() { close(stop); cleaners.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		w, err := newWorkDir()
		if err != nil {
			t.Fatalf("host %d: %v", n, err)
		}
		_, err = os.Stat(filepath.Join(w.path, workDirLock))
		w.close()
		if err != nil {
			t.Fatalf("host %d: another host removed its live work directory: %v", n, err)
		}
	}
}
