package host

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// watchPoll is how often --watch looks at child services' sources.
const watchPoll = 500 * time.Millisecond

// watchChildren rebuilds and restarts a package service whose Go sources
// changed, until ctx ends. It builds once the sources have stayed the same for
// one poll, so a file still being written is not built half done. A build that
// fails leaves the running child alone; the next change builds again.
func (h *Host) watchChildren(ctx context.Context) {
	type stamps struct{ built, seen string }
	watched := map[*child]*stamps{}
	for _, c := range h.children {
		if c.cfg.Package != "" {
			// From the sources as they were built, not as they are now: an
			// edit made since the build is rebuilt.
			watched[c] = &stamps{built: c.built, seen: c.built}
		}
	}
	if len(watched) == 0 {
		return
	}
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for c, st := range watched {
			now := sourceStamp(c.srcDir(h))
			if now != st.seen { // changing: build once it settles
				st.seen = now
				continue
			}
			if now == st.built {
				continue
			}
			st.built = now
			h.log.Info("sources changed: rebuilding", "service", c.cfg.Name)
			next := c.bin + ".next"
			if err := goBuild(ctx, h.dir(), c.cfg.Package, next); err != nil {
				h.log.Error("rebuild failed; the running service is untouched", "service", c.cfg.Name, "error", err.Error())
				continue
			}
			c.stop()
			if err := os.Rename(next, c.bin); err != nil {
				h.log.Error("cannot replace the binary", "service", c.cfg.Name, "error", err.Error())
				continue
			}
			if err := c.start(h); err != nil {
				h.log.Error("restart failed", "service", c.cfg.Name, "error", err.Error())
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			if err := c.waitRegistered(wctx, h.comp.registry); err != nil {
				h.log.Error("restarted service did not register", "service", c.cfg.Name, "error", err.Error())
			} else {
				h.log.Info("service restarted", "service", c.cfg.Name, "pid", c.pid())
			}
			cancel()
		}
	}
}

// srcDir is the directory of a package service's sources (import paths are
// not watched: their sources live in the module cache).
func (c *child) srcDir(h *Host) string {
	p := c.cfg.Package
	if filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(p, ".") {
		return filepath.Join(h.dir(), p)
	}
	return ""
}

// sourceStamp summarises the .go files and go.mod under dir: their count,
// total size and newest modification time. The size tells apart writes within
// one tick of the file system's clock, such as a file truncated, then written.
func sourceStamp(dir string) string {
	if dir == "" {
		return ""
	}
	var n int
	var size int64
	var newest time.Time
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) && path != dir {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod") {
			if info, err := d.Info(); err == nil {
				n++
				size += info.Size()
				if info.ModTime().After(newest) {
					newest = info.ModTime()
				}
			}
		}
		return nil
	})
	return fmt.Sprintf("%d/%d/%d", n, size, newest.UnixNano())
}
