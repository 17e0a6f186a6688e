package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/microhost/micro/host/plugins"
)

// Plugin binaries the tests install, each built once per test binary.
var (
	msgpackPlugin        = &builtPlugin{id: "codec-msgpack", pkg: "../../plugins/codec-msgpack"}
	registryMemoryPlugin = &builtPlugin{id: "registry-memory", pkg: "../../host/plugins/testdata/registry-memory"}
)

// builtPlugin is a plugin binary built from pkg on first use.
type builtPlugin struct {
	id, pkg string
	once    sync.Once
	dir     string
	path    string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*builtPlugin{msgpackPlugin, registryMemoryPlugin} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}

// msgpackBinary returns the path of the built micro-codec-msgpack (version 0.1.0).
func msgpackBinary(t testing.TB) string { return msgpackPlugin.binary(t) }

// registryMemoryBinary returns the path of the built micro-registry-memory
// (version 0.0.1).
func registryMemoryBinary(t testing.TB) string { return registryMemoryPlugin.binary(t) }

func (b *builtPlugin) binary(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "micro-cli-test-")
		if err != nil {
			b.err = err
			return
		}
		b.dir = dir
		b.path = filepath.Join(dir, plugins.BinaryName(b.id))
		out, err := exec.Command("go", "build", "-o", b.path, b.pkg).CombinedOutput()
		if err != nil {
			b.err = &buildError{pkg: b.pkg, out: string(out), err: err}
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

type buildError struct {
	pkg string
	out string
	err error
}

func (e *buildError) Error() string {
	return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out
}

// cli is a CLI with its own plugin directory and lock file.
type cli struct {
	t     *testing.T
	dir   string // --dir
	lock  string // --lock
	goEnv []string
}

func newCLI(t *testing.T) *cli {
	root := t.TempDir()
	return &cli{t: t, dir: filepath.Join(root, "plugins"), lock: filepath.Join(root, "micro.lock.hcl")}
}

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

// plugin runs `micro plugin <args> --lock L --dir D` (flags last, as users may
// type them).
func (c *cli) plugin(args ...string) result {
	c.t.Helper()
	return c.run(append(append([]string{"plugin"}, args...), "--lock", c.lock, "--dir", c.dir)...)
}

// run runs `micro <args>` in-process.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.goEnv = c.goEnv
	code := a.run(context.Background(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustPlugin runs a plugin command that must succeed.
func (c *cli) mustPlugin(args ...string) result {
	c.t.Helper()
	r := c.plugin(args...)
	if r.code != 0 {
		c.t.Fatalf("micro plugin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// readLock reads the CLI's lock file.
func (c *cli) readLock() *plugins.Lock {
	c.t.Helper()
	l, err := plugins.ReadLock(c.lock)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// expect fails unless r exited with code and its output holds every want.
func expect(t *testing.T, r result, code int, wants ...string) {
	t.Helper()
	out := r.stdout + r.stderr
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, r.stdout, r.stderr)
		}
	}
}

// listRow returns the `micro plugin list` row for id, split into columns.
func listRow(t *testing.T, out, id string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return f
		}
	}
	t.Fatalf("plugin list has no row for %s:\n%s", id, out)
	return nil
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	sum, err := plugins.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
