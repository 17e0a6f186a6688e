package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/host/workdir"
	"github.com/microhost/micro/sdk/registry"
)

// child is a service block with a package or binary: the host runs it as a
// child process that embeds the host SDK and finds the host's registry and
// broker through the bridge (see EnvBridge).
type child struct {
	cfg   *config.Service
	bin   string // what runs: the built package or the binary
	built string // the sourceStamp of a package service when it was built
	log   hclog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error
}

// servicesDirPrefix names the directories hosts build package services into.
const servicesDirPrefix = "microhost-services-"

// buildChildren builds every package service into dir and resolves binaries,
// relative to the config's directory.
func (h *Host) buildChildren(ctx context.Context) error {
	var buildDir string
	for _, sc := range h.cfg.Services {
		if sc.Embedded() || h.isChild() {
			continue
		}
		c := &child{cfg: sc, log: h.log.Named(sc.Name)}
		switch {
		case sc.Binary != "":
			c.bin = sc.Binary
			if !filepath.IsAbs(c.bin) {
				c.bin = filepath.Join(h.dir(), c.bin)
			}
			if _, err := os.Stat(c.bin); err != nil {
				return fmt.Errorf("%s: service %s: binary %s: %w", rangeString(sc.BinaryRange), sc.Name, c.bin, err)
			}
		default:
			if buildDir == "" {
				// Locked while the host runs, so the next host removes it if
				// this one is killed: each build is a whole Go binary.
				d, err := workdir.New(servicesDirPrefix)
				if err != nil {
					return fmt.Errorf("building services: %w", err)
				}
				buildDir = d.Path()
				h.cleanup = append(h.cleanup, func() { d.Close() })
			}
			c.bin = filepath.Join(buildDir, sc.Name)
			c.built = sourceStamp(c.srcDir(h)) // first: an edit during the build is rebuilt
			if err := goBuild(ctx, h.dir(), sc.Package, c.bin); err != nil {
				return fmt.Errorf("%s: service %s: building %s: %w", rangeString(sc.PackageRange), sc.Name, sc.Package, err)
			}
		}
		h.children = append(h.children, c)
	}
	if buildDir == "" && !h.isChild() {
		workdir.RemoveDead(servicesDirPrefix) // what a killed host built
	}
	return nil
}

// goBuild builds the Go package pkg into out. A path (absolute, or relative to
// the config's directory dir) is built from inside its own directory, so it
// resolves against its own module; an import path is built from dir.
func goBuild(ctx context.Context, dir, pkg, out string) error {
	target, workDir := pkg, dir
	if filepath.IsAbs(pkg) || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") || pkg == "." {
		workDir = pkg
		if !filepath.IsAbs(pkg) {
			workDir = filepath.Join(dir, pkg)
		}
		target = "."
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, target)
	cmd.Dir = workDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return nil
}

// start launches the child with the bridge in its environment.
func (c *child) start(h *Host) error {
	cmd := exec.Command(c.bin, c.cfg.Args...)
	cmd.Dir = h.dir()
	cfgPath, _ := filepath.Abs(h.cfg.Filename)
	cmd.Env = append(os.Environ(), h.bridge.env()...)
	cmd.Env = append(cmd.Env, EnvService+"="+c.cfg.Name, EnvConfig+"="+cfgPath)
	for k, v := range c.cfg.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := plugins.LineWriter(func(line []byte) { childLogLine(c.log, line) })
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("service %s: starting %s: %w", c.cfg.Name, c.bin, err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(done)
	}()
	c.log.Info("child service started", "pid", cmd.Process.Pid, "binary", c.bin)
	return nil
}

// waitRegistered waits until the service has a node in the registry, or the
// process exits, or ctx ends.
func (c *child) waitRegistered(ctx context.Context, reg registry.Registry) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if svcs, err := reg.GetService(ctx, c.cfg.Name); err == nil && len(svcs) > 0 && len(svcs[0].Nodes) > 0 {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("service %s exited before it registered: %v", c.cfg.Name, c.err)
		case <-ctx.Done():
			return fmt.Errorf("service %s did not register: %w", c.cfg.Name, ctx.Err())
		case <-t.C:
		}
	}
}

// stop sends SIGTERM (the child deregisters and drains), waits up to the drain
// timeout, then kills its process group.
func (c *child) stop() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(c.cfg.DrainTimeout + 5*time.Second):
		c.log.Warn("child service did not stop in time; killing it")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	// Stopped once: a second stop must not signal the group id again, which
	// another process may have taken by then.
	c.mu.Lock()
	if c.cmd == cmd {
		c.cmd = nil
	}
	c.mu.Unlock()
}

// pid returns the child's process id, 0 before it started.
func (c *child) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// childLogLine re-logs a child's hclog JSON line at its own level with its
// fields; any other line is logged as is.
func childLogLine(log hclog.Logger, line []byte) {
	var entry map[string]any
	if line[0] != '{' || json.Unmarshal(line, &entry) != nil {
		log.Info(string(line))
		return
	}
	msg, _ := entry["@message"].(string)
	level, _ := entry["@level"].(string)
	args := make([]any, 0, 2*len(entry))
	for k, v := range entry {
		if strings.HasPrefix(k, "@") {
			continue
		}
		args = append(args, k, v)
	}
	log.Log(hclog.LevelFromString(level), msg, args...)
}

// isChild reports whether this process is a child service of a host.
func (h *Host) isChild() bool { return h.remote != nil }

// exitWhenOrphaned ends a child service whose host is gone.
func exitWhenOrphaned(ctx context.Context, cancel context.CancelFunc, log hclog.Logger) {
	parent := os.Getppid()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != parent {
				log.Warn("host process is gone; stopping", "host_pid", parent)
				cancel()
				return
			}
		}
	}
}
