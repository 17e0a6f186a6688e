package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
)

func TestInstallLocalPath(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	r := c.mustPlugin("install", bin)
	sum := sha256File(t, bin)
	expect(t, r, exitOK, "installed codec-msgpack 0.1.0 (sha256 "+sum[:12], "from "+bin)

	// The binary lands at <dir>/codec-msgpack/0.1.0/micro-codec-msgpack, 0755.
	dst := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatalf("installed binary: %v", err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("installed binary mode %v, want 0755", st.Mode().Perm())
	}
	if got := sha256File(t, dst); got != sum {
		t.Errorf("installed binary sha256 %s, want %s", got, sum)
	}

	// The lock records id, version, source and sha256 (and no path: the
	// plugin directory's layout finds it).
	p := c.readLock().Get("codec-msgpack")
	if p == nil {
		t.Fatal("lock has no codec-msgpack entry")
	}
	want := plugins.LockedPlugin{ID: "codec-msgpack", Version: "0.1.0", Source: bin, SHA256: sum}
	if *p != want {
		t.Errorf("lock entry %+v, want %+v", *p, want)
	}

	// list shows it installed and unmodified.
	r = c.mustPlugin("list")
	if !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, "INSTALLED") {
		t.Errorf("list has no header:\n%s", r.stdout)
	}
	row := listRow(t, r.stdout, "codec-msgpack")
	if wantRow := []string{"codec-msgpack", "0.1.0", sum[:12], "ok", bin}; strings.Join(row, " ") != strings.Join(wantRow, " ") {
		t.Errorf("list row %q, want %q", row, wantRow)
	}

	// Installing again replaces the entry rather than adding one.
	c.mustPlugin("install", bin)
	if n := len(c.readLock().Plugins); n != 1 {
		t.Errorf("lock has %d entries after reinstalling, want 1", n)
	}
}

// TestInstallRelativeAndRenamed installs a binary whose file name does not say
// what it is, from a relative path: Describe decides its id, and the lock
// records the absolute path.
func TestInstallRelativeAndRenamed(t *testing.T) {
	src := filepath.Join(t.TempDir(), "some-plugin.bin")
	copyTestFile(t, msgpackBinary(t), src, 0o755)
	c := newCLI(t)
	t.Chdir(filepath.Dir(src))
	r := c.mustPlugin("install", "./some-plugin.bin")
	expect(t, r, exitOK, "installed codec-msgpack 0.1.0")
	if got := c.readLock().Get("codec-msgpack").Source; got != src {
		t.Errorf("recorded source %q, want the absolute path %q", got, src)
	}
	if _, err := os.Stat(plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")); err != nil {
		t.Error(err)
	}
}

// TestInstallNotExecutable installs a binary saved without its executable bit
// (as a browser or curl -O saves one): what is started to describe it is the
// executable copy that gets installed.
func TestInstallNotExecutable(t *testing.T) {
	src := filepath.Join(t.TempDir(), plugins.BinaryName("codec-msgpack"))
	copyTestFile(t, msgpackBinary(t), src, 0o644)
	c := newCLI(t)
	expect(t, c.mustPlugin("install", src), exitOK, "installed codec-msgpack 0.1.0")
	dst := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v, %v", st, err)
	}
	if got, want := c.readLock().Get("codec-msgpack").SHA256, sha256File(t, src); got != want {
		t.Errorf("locked sha256 %s, want %s", got, want)
	}
	c.mustPlugin("verify")
}

// TestInstallUnwritableLock refuses an install whose lock file cannot be
// written before anything is installed, so no binary is left unrecorded.
func TestInstallUnwritableLock(t *testing.T) {
	c := newCLI(t)
	c.lock = filepath.Join(t.TempDir(), "no", "such", "dir", plugins.LockFileName)
	expect(t, c.plugin("install", msgpackBinary(t)), exitError, "cannot install", c.lock, "--lock")
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("a refused install touched the plugin directory (%v)", err)
	}
}

func TestVerifyAndTampering(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	c.mustPlugin("install", bin)

	expect(t, c.mustPlugin("verify"), exitOK, "ok        codec-msgpack 0.1.0")
	expect(t, c.mustPlugin("verify", "codec-msgpack"), exitOK, "ok        codec-msgpack 0.1.0")

	// Tamper with the installed binary.
	dst := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
	f, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("tampered"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r := c.plugin("verify")
	expect(t, r, exitError,
		"mismatch  codec-msgpack 0.1.0: "+dst+" has sha256 "+sha256File(t, dst),
		"1 of 1 plugins failed verification",
		"codec-msgpack: reinstall it with `micro plugin install "+bin+"`")
	if row := listRow(t, c.mustPlugin("list").stdout, "codec-msgpack"); row[3] != "MODIFIED" {
		t.Errorf("list shows %q for a tampered binary, want MODIFIED", row[3])
	}

	// A missing binary.
	if err := os.Remove(dst); err != nil {
		t.Fatal(err)
	}
	expect(t, c.plugin("verify", "codec-msgpack"), exitError, "missing   codec-msgpack 0.1.0: "+dst+" does not exist", "micro plugin install "+bin)
	if row := listRow(t, c.mustPlugin("list").stdout, "codec-msgpack"); row[3] != "missing" {
		t.Errorf("list shows %q for a missing binary, want missing", row[3])
	}

	// Reinstalling, as the message says, fixes it.
	c.mustPlugin("install", bin)
	c.mustPlugin("verify")

	// An id that is not locked.
	expect(t, c.plugin("verify", "registry-nope"), exitError, "plugin registry-nope is not in "+c.lock, "it locks codec-msgpack")
}

func TestVerifyAndListEmptyLock(t *testing.T) {
	c := newCLI(t)
	expect(t, c.mustPlugin("verify"), exitOK, "nothing to verify")
	expect(t, c.mustPlugin("list"), exitOK, "no plugins in "+c.lock)
}

func TestRemove(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	c.mustPlugin("install", bin)
	versionDir := filepath.Join(c.dir, "codec-msgpack", "0.1.0")

	r := c.mustPlugin("remove", "codec-msgpack")
	expect(t, r, exitOK, "removed codec-msgpack 0.1.0 (deleted "+versionDir+")")
	if _, err := os.Stat(versionDir); !os.IsNotExist(err) {
		t.Errorf("version directory still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "codec-msgpack")); !os.IsNotExist(err) {
		t.Errorf("empty plugin directory still there: %v", err)
	}
	if p := c.readLock().Get("codec-msgpack"); p != nil {
		t.Errorf("lock still has %+v", p)
	}
	expect(t, c.mustPlugin("list"), exitOK, "no plugins")

	// Removing it again is an error naming what the lock has.
	expect(t, c.plugin("remove", "codec-msgpack"), exitError, "plugin codec-msgpack is not in "+c.lock, "it locks no plugins", "nothing removed")
}

func TestRemoveKeepsOtherVersionsAndFilesOutsideDir(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	c.mustPlugin("install", bin)
	// Another version of the same plugin, installed for another project.
	other := filepath.Join(c.dir, "codec-msgpack", "0.0.9")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	c.mustPlugin("remove", "codec-msgpack")
	if _, err := os.Stat(other); err != nil {
		t.Errorf("remove deleted another version: %v", err)
	}

	// A lock entry with its own path outside the plugin directory keeps its file.
	outside := filepath.Join(t.TempDir(), "micro-codec-msgpack")
	copyTestFile(t, bin, outside, 0o755)
	l := c.readLock()
	l.Put(&plugins.LockedPlugin{ID: "codec-msgpack", Version: "0.1.0", SHA256: sha256File(t, outside), Path: outside})
	if err := l.Write(c.lock); err != nil {
		t.Fatal(err)
	}
	expect(t, c.mustPlugin("verify"), exitOK, "ok        codec-msgpack")
	expect(t, c.mustPlugin("remove", "codec-msgpack"), exitOK, "left "+outside+" in place")
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("remove deleted a file outside the plugin directory: %v", err)
	}
}

// TestRemoveDeletesOnlyItsOwnBinary removes lock entries whose binary is not at
// their own place in the plugin directory (<dir>/<id>/<version>/micro-<id>):
// each entry is forgotten and its file left where it is, so neither another
// plugin's files nor anything outside the plugin directory is deleted.
func TestRemoveDeletesOnlyItsOwnBinary(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	c.mustPlugin("install", bin)
	msgpack := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
	sum := sha256File(t, msgpack)
	put := func(p *plugins.LockedPlugin) {
		t.Helper()
		l := c.readLock()
		l.Put(p)
		if err := l.Write(c.lock); err != nil {
			t.Fatal(err)
		}
	}
	mustExist := func(path string) {
		t.Helper()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("remove deleted %s: %v", path, err)
		}
	}

	// An entry whose path is another plugin's binary.
	put(&plugins.LockedPlugin{ID: "codec-a", Version: "1.0.0", SHA256: sum, Path: msgpack})
	expect(t, c.mustPlugin("remove", "codec-a"), exitOK, "removed codec-a 1.0.0", "left "+msgpack+" in place")
	mustExist(msgpack)
	if l := c.readLock(); l.Get("codec-a") != nil || l.Get("codec-msgpack") == nil {
		t.Errorf("lock after removing codec-a: %+v", l.Plugins)
	}
	c.mustPlugin("verify")

	// An entry whose path is elsewhere in the plugin directory.
	stray := filepath.Join(c.dir, "keep", "micro-codec-b")
	if err := os.MkdirAll(filepath.Dir(stray), 0o755); err != nil {
		t.Fatal(err)
	}
	copyTestFile(t, bin, stray, 0o755)
	put(&plugins.LockedPlugin{ID: "codec-b", Version: "1.0.0", SHA256: sum, Path: stray})
	expect(t, c.mustPlugin("remove", "codec-b"), exitOK, "removed codec-b 1.0.0", "left "+stray+" in place")
	mustExist(stray)

	// An entry at its own place, which another entry's path also names.
	own := plugins.InstalledPath(c.dir, "codec-c", "1.0.0")
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	copyTestFile(t, bin, own, 0o755)
	put(&plugins.LockedPlugin{ID: "codec-c", Version: "1.0.0", SHA256: sum})
	put(&plugins.LockedPlugin{ID: "codec-d", Version: "1.0.0", SHA256: sum, Path: own})
	expect(t, c.mustPlugin("remove", "codec-c"), exitOK, "removed codec-c 1.0.0", "left "+own+" in place", "codec-d")
	mustExist(own)

	// An entry whose directory in the plugin directory is a symbolic link out of it.
	outside := t.TempDir()
	outsideBin := filepath.Join(outside, "1.0.0", "micro-codec-e")
	if err := os.MkdirAll(filepath.Dir(outsideBin), 0o755); err != nil {
		t.Fatal(err)
	}
	copyTestFile(t, bin, outsideBin, 0o755)
	if err := os.Symlink(outside, filepath.Join(c.dir, "codec-e")); err != nil {
		t.Fatal(err)
	}
	put(&plugins.LockedPlugin{ID: "codec-e", Version: "1.0.0", SHA256: sum})
	expect(t, c.mustPlugin("remove", "codec-e"), exitOK, "removed codec-e 1.0.0", "in place", "symbolic link")
	mustExist(outsideBin)

	if l := c.readLock(); len(l.Plugins) != 2 || l.Get("codec-msgpack") == nil || l.Get("codec-d") == nil {
		t.Errorf("lock after the removals: %+v", l.Plugins)
	}
}

// TestConcurrentInstallsAndRemove runs two installs and a remove at once on one
// lock file: each reads, changes and writes it in turn, so no entry is lost
// and the removed one does not come back.
func TestConcurrentInstallsAndRemove(t *testing.T) {
	msgpack, memory := msgpackBinary(t), registryMemoryBinary(t)
	c := newCLI(t)
	// An entry whose binary is outside the plugin directory: remove forgets it.
	outside := filepath.Join(t.TempDir(), "micro-codec-gone")
	copyTestFile(t, msgpack, outside, 0o755)
	l := &plugins.Lock{Plugins: []*plugins.LockedPlugin{{ID: "codec-gone", Version: "1.0.0", SHA256: sha256File(t, outside), Path: outside}}}
	if err := l.Write(c.lock); err != nil {
		t.Fatal(err)
	}

	commands := [][]string{{"install", msgpack}, {"install", memory}, {"remove", "codec-gone"}}
	results := make([]result, len(commands))
	var wg sync.WaitGroup
	for i, args := range commands {
		wg.Go(func() { results[i] = c.plugin(args...) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK {
			t.Errorf("micro plugin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(commands[i], " "), r.code, r.stdout, r.stderr)
		}
	}
	var ids []string
	for _, p := range c.readLock().Plugins {
		ids = append(ids, p.ID)
	}
	if got, want := strings.Join(ids, " "), "codec-msgpack registry-memory"; got != want {
		t.Errorf("the lock has %s, want %s", got, want)
	}
	c.mustPlugin("verify")
}

func TestInstallRefusesNonPlugin(t *testing.T) {
	c := newCLI(t)
	script := filepath.Join(t.TempDir(), "micro-registry-fake")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'hello, I am not a plugin'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := c.plugin("install", script)
	expect(t, r, exitError, "cannot install "+script, "not a Microhost plugin")
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(c.dir)
		if len(entries) > 0 {
			t.Errorf("the plugin directory has %v after a refused install", entries)
		}
	}
	if _, err := os.Stat(c.lock); !os.IsNotExist(err) {
		t.Errorf("a refused install wrote the lock file (%v)", err)
	}

	// A directory is not a plugin either.
	expect(t, c.plugin("install", t.TempDir()), exitError, "is not a regular file")
}

func copyTestFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestInstallWaitsToPlaceItsBinary holds the lock file's update lock, as a
// remove would: an install started meanwhile puts nothing in the plugin
// directory until it is its turn, so the remove cannot delete a binary that
// the install then records.
func TestInstallWaitsToPlaceItsBinary(t *testing.T) {
	bin := msgpackBinary(t)
	c := newCLI(t)
	unlock, err := plugins.LockForUpdate(context.Background(), c.lock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { done <- c.plugin("install", bin) }()
	installed := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(installed); err == nil {
			unlock()
			<-done
			t.Fatalf("the install put %s in place while another command held the lock", installed)
		}
	}
	unlock()
	expect(t, <-done, exitOK, "installed codec-msgpack 0.1.0")
	c.mustPlugin("verify")
}

// Removing a plugin the lock does not list changes nothing: no lock file is
// made beside micro.lock.hcl, and a lock in a directory that does not exist
// is answered the same way.
func TestRemoveUnlockedPluginTouchesNothing(t *testing.T) {
	c := newCLI(t)
	expect(t, c.plugin("remove", "codec-nope"), exitError, "plugin codec-nope is not in "+c.lock, "nothing removed")
	entries, err := os.ReadDir(filepath.Dir(c.lock))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("remove of an unlocked plugin left %s", e.Name())
	}

	c.lock = filepath.Join(t.TempDir(), "missing", "micro.lock.hcl")
	expect(t, c.plugin("remove", "codec-nope"), exitError, "plugin codec-nope is not in "+c.lock, "nothing removed")
}
