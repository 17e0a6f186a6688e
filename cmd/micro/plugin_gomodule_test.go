package main

import (
	"archive/zip"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microhost/micro/host/plugins"
)

// The fake Go module the test installs, and the pseudo-version under which the
// current repository is served to it.
const (
	fakeModule     = "example.com/microtestplugin"
	fakeVersion    = "v0.1.0"
	microModule    = "github.com/microhost/micro"
	microPseudoVer = "v0.0.0-20260101000000-000000000000"
)

const fakeMain = `// Command microtestplugin is a codec plugin built from a Go module in tests.
package main

import (
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/plugin"
)

func main() {
	plugin.Serve(plugin.Info{Name: "gomodtest", Kind: plugin.KindCodec, Version: "0.1.0"}, codec.Msgpack())
}
`

// TestInstallGoModule installs a plugin from a Go module path@version with a
// hermetic module proxy: a file:// proxy made here holds the fake module and the
// current repository (at a pseudo-version); everything else resolves from the
// local module cache's download directory, then proxy.golang.org. A private
// GOMODCACHE keeps the shared cache clean.
func TestInstallGoModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with go install; skipped in -short mode")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	sharedDownloads := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")

	root := t.TempDir()
	proxy := filepath.Join(root, "proxy")
	repoGoMod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	addModule(t, proxy, microModule, microPseudoVer, repoGoMod, repoFiles(t, "../.."))
	fakeGoMod := []byte("module " + fakeModule + "\n\ngo 1.26.0\n\nrequire " + microModule + " " + microPseudoVer + "\n")
	addModule(t, proxy, fakeModule, fakeVersion, fakeGoMod, map[string][]byte{"go.mod": fakeGoMod, "main.go": []byte(fakeMain)})

	c := newCLI(t)
	c.goEnv = []string{
		"GOPROXY=" + fileURL(proxy) + "," + fileURL(sharedDownloads) + ",https://proxy.golang.org",
		"GOSUMDB=off",
		"GOFLAGS=-mod=mod -modcacherw",
		"GOMODCACHE=" + filepath.Join(root, "modcache"),
		"GOTOOLCHAIN=local",
	}
	src := fakeModule + "@" + fakeVersion
	r := c.plugin("install", src)
	expect(t, r, exitOK, "building "+src+" with go install", "installed codec-gomodtest 0.1.0", "from "+src)

	dst := plugins.InstalledPath(c.dir, "codec-gomodtest", "0.1.0")
	p := c.readLock().Get("codec-gomodtest")
	if p == nil || p.Version != "0.1.0" || p.Source != src || p.SHA256 != sha256File(t, dst) {
		t.Fatalf("lock entry %+v (installed sha256 %s)", p, sha256File(t, dst))
	}
	expect(t, c.mustPlugin("verify"), exitOK, "ok        codec-gomodtest 0.1.0")
}

// TestInstallGoModuleErrors covers the Go module path without building: bad
// path@version forms, and a module the (empty, offline) proxy does not have.
func TestInstallGoModuleErrors(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	c := newCLI(t)
	for _, src := range []string{"example.com/x@", "@v1.0.0", "example.com/x@v1@v2"} {
		expect(t, c.plugin("install", src), exitUsage, "plugin install: ", "path@version")
	}
	empty := t.TempDir()
	c.goEnv = []string{"GOPROXY=" + fileURL(empty), "GOSUMDB=off", "GOFLAGS=-mod=mod -modcacherw", "GOMODCACHE=" + t.TempDir(), "GOTOOLCHAIN=local"}
	r := c.plugin("install", "example.com/nosuchmodule@v1.0.0")
	expect(t, r, exitError, "cannot install example.com/nosuchmodule@v1.0.0: `go install example.com/nosuchmodule@v1.0.0` failed", "check the module path and version")
	if _, err := os.Stat(c.lock); !os.IsNotExist(err) {
		t.Errorf("a failed install wrote the lock file (%v)", err)
	}
}

func fileURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// addModule puts module@version into a file-based GOPROXY directory.
func addModule(t *testing.T, proxy, module, version string, goMod []byte, files map[string][]byte) {
	t.Helper()
	dir := filepath.Join(proxy, filepath.FromSlash(module), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("list", []byte(version+"\n"))
	write(version+".info", []byte(`{"Version":"`+version+`","Time":"2026-01-01T00:00:00Z"}`))
	write(version+".mod", goMod)
	f, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, b := range files {
		w, err := zw.Create(module + "@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// repoFiles returns the module's files as a module zip would hold them: no VCS
// directories, no nested modules, and no executables or other build output.
func repoFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module is not part of this one
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 != 0 || info.Size() > 4<<20 {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["go.mod"]; !ok {
		t.Fatal("repository has no go.mod at ../..")
	}
	return files
}
