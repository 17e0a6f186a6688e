package plugins

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// workDirPrefix names the directories hosts run their plugin copies from.
const workDirPrefix = "microhost-plugins-"

// workDirLock is the file in a work directory its host holds an exclusive
// flock on while it runs. The kernel drops the lock when the host dies, however
// it dies, so a later host can tell a live host's directory from a dead one's,
// across pid namespaces sharing the temporary directory too.
const workDirLock = ".lock"

// workDir is a host's directory for the copies of the plugin binaries it runs.
type workDir struct {
	path string
	lock *os.File // holds the flock until close; nil where the file system has none
}

// newWorkDir removes the work directories that hosts killed without cleaning
// up left behind (each holds a copy of every plugin binary that host ran), then
// makes and locks this host's own.
func newWorkDir() (*workDir, error) {
	removeDeadWorkDirs(os.TempDir())
	path, err := os.MkdirTemp("", workDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("plugins: host-owned directory: %w", err)
	}
	lock, err := lockWorkDir(path)
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("plugins: host-owned directory: %w", err)
	}
	return &workDir{path: path, lock: lock}, nil
}

// lockWorkDir restricts path to this user and takes its lock. The lock file
// is locked under another name and then renamed, so another host never finds
// it unlocked and takes the directory for a dead host's.
func lockWorkDir(path string) (*os.File, error) {
	if err := os.Chmod(path, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(path, workDirLock+"-*")
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
	if err := os.Rename(f.Name(), filepath.Join(path, workDirLock)); err != nil {
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

// maxSocketPath is the longest path a Unix socket can be bound at on Linux
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// socketDir is where this host's plugins create their gRPC sockets, so that
// a plugin killed before it could remove its socket leaves it in a directory
// the host removes, not in the shared temporary directory. It is "" (the
// plugin's default, the system's temporary directory) when the directory's path
// leaves too little room for go-plugin's socket name ("plugin" and up to ten
// digits).
func (w *workDir) socketDir() string {
	if len(w.path)+len("/plugin")+10 > maxSocketPath {
		return ""
	}
	return w.path
}

// close removes the directory and releases its lock.
func (w *workDir) close() error {
	err := os.RemoveAll(w.path)
	if w.lock != nil {
		w.lock.Close()
	}
	return err
}

// removeDeadWorkDirs removes the work directories in parent whose lock no host
// holds. A directory without a lock file is left alone: its host may be
// between making it and locking it.
func removeDeadWorkDirs(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), workDirPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, workDirLock), os.O_RDWR, 0)
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
