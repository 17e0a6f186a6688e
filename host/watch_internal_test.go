package host

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSourceStampSeesEveryWrite checks the stamp --watch polls changes with
// every kind of edit, including one the file system's clock cannot tell apart
// from the write before it: a file truncated, then written, within one tick.
func TestSourceStampSeesEveryWrite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	tick := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(content string) string {
		t.Helper()
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(src, tick, tick); err != nil { // one tick for every write
			t.Fatal(err)
		}
		return sourceStamp(dir)
	}
	full := write("package main\n")
	if truncated := write(""); truncated == full {
		t.Errorf("a truncated file has the stamp of the full one: %s", full)
	}
	if again := write("package main\n"); again != full {
		t.Errorf("the same sources stamped %s, then %s", full, again)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a source"), 0o644); err != nil {
		t.Fatal(err)
	}
	if other := sourceStamp(dir); other != full {
		t.Errorf("a file that is not a Go source changed the stamp: %s, then %s", full, other)
	}
	if err := os.WriteFile(filepath.Join(dir, "more.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if added := sourceStamp(dir); added == full {
		t.Errorf("adding a source left the stamp at %s", full)
	}
}
