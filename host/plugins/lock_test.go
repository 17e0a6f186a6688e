package plugins_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
)

// TestReadLockRefusesUnsafeEntries refuses ids and versions that are not one
// path segment each: a plugin's directory is <dir>/<id>/<version>, and a lock
// entry must not reach another plugin's files.
func TestReadLockRefusesUnsafeEntries(t *testing.T) {
	const sum = "0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name, id, version string
		wants             []string
	}{
		{"version climbing out", "codec-a", "../codec-b", []string{":3:13:", `version "../codec-b"`}},
		{"version with a slash", "codec-a", "1.0/x", []string{":3:13:", `version "1.0/x"`}},
		{"version dot-dot", "codec-a", "..", []string{":3:13:", `version ".."`}},
		{"id with a slash", "codec-a/../b", "1.0.0", []string{":2:8:", `"codec-a/../b" is not <kind>-<name>`}},
		{"id of no kind", "frob-a", "1.0.0", []string{":2:8:", `"frob-a" is not <kind>-<name>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), plugins.LockFileName)
			src := "# a lock\nplugin \"" + tt.id + "\" {\n  version = \"" + tt.version + "\"\n  sha256  = \"" + sum + "\"\n}\n"
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := plugins.ReadLock(path)
			if err == nil {
				t.Fatalf("ReadLock accepted id %q version %q", tt.id, tt.version)
			}
			for _, w := range append(tt.wants, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	dup := filepath.Join(t.TempDir(), plugins.LockFileName)
	entry := "plugin \"codec-a\" {\n  version = \"1.0.0\"\n  sha256  = \"" + sum + "\"\n}\n"
	if err := os.WriteFile(dup, []byte(entry+entry), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := plugins.ReadLock(dup); err == nil || !strings.Contains(err.Error(), dup+":5:8: ") || !strings.Contains(err.Error(), "already locked at "+dup+":1:8") {
		t.Errorf("a plugin locked twice: %v", err)
	}

	good := &plugins.Lock{Plugins: []*plugins.LockedPlugin{{ID: "registry-consul", Version: "v1.2.0+build.1", SHA256: sum}}}
	path := filepath.Join(t.TempDir(), plugins.LockFileName)
	if err := good.Write(path); err != nil {
		t.Fatal(err)
	}
	if l, err := plugins.ReadLock(path); err != nil || l.Get("registry-consul") == nil {
		t.Fatalf("ReadLock of a good lock: %v, %v", l, err)
	}
}

// TestLockForUpdate lets one holder at a time update a lock file: a second
// waits, gives up with an error naming the lock once its time is up, and gets
// the lock once the first lets go.
func TestLockForUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), plugins.LockFileName)
	unlock, err := plugins.LockForUpdate(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = plugins.LockForUpdate(ctx, path)
	lockFile := filepath.Join(filepath.Dir(path), ".micro.lock.hcl.lock")
	if err == nil || !strings.Contains(err.Error(), "another process is changing "+path) || !strings.Contains(err.Error(), lockFile) {
		t.Fatalf("a second holder: %v", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("gave up after %s, before its time was up", waited)
	}

	got := make(chan error, 1)
	go func() {
		unlock, err := plugins.LockForUpdate(context.Background(), path)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a second holder got the lock while the first held it (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second holder did not get the lock once the first let go")
	}
}
