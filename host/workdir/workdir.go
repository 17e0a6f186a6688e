// Package workdir makes the private temporary directories a host keeps its
// files in (copies of plugin binaries, services it built), each locked for as
// long as its host lives, so that a later host can remove the ones a host
// killed without cleaning up (kill -9, a crash) left behind.
package workdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockName is the file in a directory its host holds an exclusive flock on
// while it runs. The kernel drops the lock when the host dies, however it
// dies, so a later host can tell a live host's directory from a dead one's,
// across pid namespaces sharing the temporary directory too.
const lockName = ".lock"

// Dir is one host's private directory in the system's temporary directory.
type Dir struct {
	path string
	lock *os.File // holds the flock until Close; nil where the file system has none
}

// New removes the directories named prefix* that dead hosts left in the
// temporary directory, then makes and locks this host's own, readable only by
// its user.
func New(prefix string) (*Dir, error) {
	RemoveDead(prefix)
	path, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("host-owned directory: %w", err)
	}
	lock, err := lockDir(path)
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("host-owned directory: %w", err)
	}
	return &Dir{path: path, lock: lock}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Close removes the directory and everything in it, and releases its lock.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.path)
	if d.lock != nil {
		d.lock.Close()
	}
	return err
}

// lockDir restricts path to this user and takes its lock. The lock file is
// locked under another name and then renamed, so another host never finds it
// unlocked and takes the directory for a dead host's.
func lockDir(path string) (*os.File, error) {
	if err := os.Chmod(path, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(path, lockName+"-*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		if locksUnsupported(err) {
			// Run unlocked: with no lock file, other hosts leave the directory
			// alone, and only this host's Close removes it.
			return nil, nil
		}
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(path, lockName)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// locksUnsupported reports whether err says the file system has no flock
// (some network and FUSE file systems).
func locksUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOSYS)
}

// RemoveDead removes the directories named prefix* that dead hosts left in
// the temporary directory, for a host that makes none of its own.
func RemoveDead(prefix string) { removeDead(os.TempDir(), prefix) }

// removeDead removes the directories named prefix* in parent whose lock no
// host holds. A directory without a lock file is left alone: its host may be
// between making it and locking it.
func removeDead(parent, prefix string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if err != nil { // no lock file, or another user's directory
			continue
		}
		// Only a lock taken proves its host dead: a held one (EWOULDBLOCK) or a
		// file system without locks leaves the directory alone.
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
