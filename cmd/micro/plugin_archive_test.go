package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
)

// archiveFile is one file in a test archive.
type archiveFile struct {
	name string
	body []byte
	mode int64
}

func tarGz(t *testing.T, files ...archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	// Stored, not compressed: compressing a plugin binary under -race is slow,
	// and the reader does not care.
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipArchive(t *testing.T, files ...archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Store}
		h.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sumLine(body []byte, name string) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:]) + "  " + name + "\n"
}

func TestInstallArchive(t *testing.T) {
	binBytes, err := os.ReadFile(msgpackBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	plugin := archiveFile{name: "micro-codec-msgpack_0.1.0/micro-codec-msgpack", body: binBytes, mode: 0o755}
	readme := archiveFile{name: "micro-codec-msgpack_0.1.0/README.md", body: []byte("# msgpack\n"), mode: 0o644}
	dir := archiveFile{name: "micro-codec-msgpack_0.1.0/", mode: 0o755}
	good := tarGz(t, dir, plugin, readme)
	goodZip := zipArchive(t, plugin, readme)
	other := []byte("another release")

	// Each directory of the server is one case: its files, SHA256SUMS included.
	// Archives refused before the binary runs hold a small stand-in.
	stub := archiveFile{name: "micro-codec-stub", body: []byte("stub"), mode: 0o755}
	site := map[string][]byte{
		"/good/micro-codec-msgpack.tar.gz":     good,
		"/good/SHA256SUMS":                     []byte(sumLine(other, "micro-codec-msgpack.zip") + sumLine(good, "micro-codec-msgpack.tar.gz")),
		"/zip/micro-codec-msgpack.zip":         goodZip,
		"/zip/SHA256SUMS":                      []byte(strings.Replace(sumLine(goodZip, "micro-codec-msgpack.zip"), "  ", " *", 1)), // binary-mode line
		"/wrongsum/micro-codec-msgpack.tar.gz": good,
		"/wrongsum/SHA256SUMS":                 []byte(sumLine(other, "micro-codec-msgpack.tar.gz")),
		"/noline/micro-codec-msgpack.tar.gz":   good,
		"/noline/SHA256SUMS":                   []byte(sumLine(other, "micro-codec-other.tar.gz")),
		"/nosums/micro-codec-msgpack.tar.gz":   good,
		"/none/plugin.tar.gz":                  tarGz(t, readme),
		"/two/plugin.tar.gz":                   tarGz(t, stub, archiveFile{name: "bin/micro-codec-other", body: stub.body, mode: 0o755}),
		"/mislabelled/plugin.tar.gz":           tarGz(t, archiveFile{name: "micro-codec-json", body: binBytes, mode: 0o755}),
		"/notaplugin/plugin.tar.gz":            tarGz(t, archiveFile{name: "micro-codec-fake", body: []byte("#!/bin/sh\necho hi\n"), mode: 0o755}),
	}
	for _, d := range []string{"none", "two", "mislabelled", "notaplugin"} {
		site["/"+d+"/SHA256SUMS"] = []byte(sumLine(site["/"+d+"/plugin.tar.gz"], "plugin.tar.gz"))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := site[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server is not on loopback: %s", srv.URL)
	}

	t.Run("tar.gz", func(t *testing.T) {
		c := newCLI(t)
		src := srv.URL + "/good/micro-codec-msgpack.tar.gz"
		expect(t, c.mustPlugin("install", src), exitOK, "installed codec-msgpack 0.1.0", "from "+src)
		dst := plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")
		if got, want := sha256File(t, dst), sha256Hex(binBytes); got != want {
			t.Errorf("installed sha256 %s, want %s", got, want)
		}
		p := c.readLock().Get("codec-msgpack")
		if p == nil || p.Source != src || p.SHA256 != sha256Hex(binBytes) || p.Version != "0.1.0" {
			t.Errorf("lock entry %+v", p)
		}
		c.mustPlugin("verify")
	})
	t.Run("zip", func(t *testing.T) {
		c := newCLI(t)
		expect(t, c.mustPlugin("install", srv.URL+"/zip/micro-codec-msgpack.zip"), exitOK, "installed codec-msgpack 0.1.0")
	})

	refused := []struct {
		name, path string
		wants      []string
	}{
		{"wrong checksum", "/wrongsum/micro-codec-msgpack.tar.gz", []string{
			"checksum mismatch", srv.URL + "/wrongsum/SHA256SUMS says sha256 " + sha256Hex(other), "the downloaded archive has " + sha256Hex(good)}},
		{"no SHA256SUMS line", "/noline/micro-codec-msgpack.tar.gz", []string{
			srv.URL + "/noline/SHA256SUMS has no line for micro-codec-msgpack.tar.gz"}},
		{"no SHA256SUMS", "/nosums/micro-codec-msgpack.tar.gz", []string{
			"fetching its checksums", "404 Not Found", "must hold a SHA256SUMS file"}},
		{"no archive", "/nosuch/micro-codec-msgpack.tar.gz", []string{"404 Not Found"}},
		{"no plugin binary", "/none/plugin.tar.gz", []string{"holds no plugin binary named micro-<kind>-<name>", "README.md"}},
		{"two plugin binaries", "/two/plugin.tar.gz", []string{"holds 2 plugin binaries (micro-codec-stub, bin/micro-codec-other)", "exactly one"}},
		{"mislabelled", "/mislabelled/plugin.tar.gz", []string{"named micro-codec-json", "describes itself as codec-msgpack"}},
		{"not a plugin", "/notaplugin/plugin.tar.gz", []string{"not a Microhost plugin"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			expect(t, c.plugin("install", srv.URL+tt.path), exitError, tt.wants...)
			if _, err := os.Stat(c.lock); !os.IsNotExist(err) {
				t.Errorf("a refused install wrote the lock file (%v)", err)
			}
			if entries, _ := os.ReadDir(c.dir); len(entries) > 0 {
				t.Errorf("a refused install left %v in the plugin directory", entries)
			}
		})
	}
}

func TestLookupSum(t *testing.T) {
	a := strings.Repeat("ab", 32)
	b := strings.Repeat("CD", 32)
	sums := []byte("# comment\n\n" + a + "  x.tar.gz\n" + b + " *./y.zip\n")
	for name, want := range map[string]string{"x.tar.gz": a, "y.zip": strings.ToLower(b)} {
		got, err := lookupSum(sums, name)
		if err != nil || got != want {
			t.Errorf("lookupSum(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for name, tt := range map[string]struct{ sums, wantErr string }{
		"missing":   {a + "  other.tar.gz\n", "has no line for x.tar.gz"},
		"malformed": {"abc  x.tar.gz\n", "malformed line"},
		"conflict":  {a + "  x.tar.gz\n" + strings.Repeat("00", 32) + "  x.tar.gz\n", "twice with different checksums"},
	} {
		if _, err := lookupSum([]byte(tt.sums), "x.tar.gz"); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want %q", name, err, tt.wantErr)
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:])
}

// TestInstallArchiveSumsUnreachable checks that only a missing SHA256SUMS is
// reported as one: an unreachable server or an oversized file is named as such.
func TestInstallArchiveSumsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big/SHA256SUMS" {
			w.Write(bytes.Repeat([]byte("#"), maxSumsBytes+1))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, tt := range []struct {
		name, url string
		wants     []string
	}{
		{"missing", srv.URL + "/none/p.tar.gz", []string{"404 Not Found", "must hold a SHA256SUMS file"}},
		{"too large", srv.URL + "/big/p.tar.gz", []string{"too large (over 1048576 bytes)", "not a checksum list"}},
		{"unreachable", closed.URL + "/p.tar.gz", []string{"connection refused", "check the URL and that the server is reachable"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			r := c.plugin("install", tt.url)
			expect(t, r, exitError, append([]string{"fetching its checksums"}, tt.wants...)...)
			if tt.name != "missing" && strings.Contains(r.stderr, "must hold a SHA256SUMS file") {
				t.Errorf("blames a missing SHA256SUMS:\n%s", r.stderr)
			}
		})
	}
}

// TestInstallArchiveCredentials installs from URLs carrying a user name and
// password and tokens in the query: micro.lock.hcl records the URL without them
// (the output says so), and no message shows them, the install's nor a failed
// one's, a redirect's target included.
func TestInstallArchiveCredentials(t *testing.T) {
	binBytes, err := os.ReadFile(msgpackBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	good := tarGz(t, archiveFile{name: "micro-codec-msgpack", body: binBytes, mode: 0o755})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	site := map[string][]byte{
		"/auth/micro-codec-msgpack.tar.gz":     good,
		"/auth/SHA256SUMS":                     []byte(sumLine(good, "micro-codec-msgpack.tar.gz")),
		"/wrongsum/micro-codec-msgpack.tar.gz": good,
		"/wrongsum/SHA256SUMS":                 []byte(sumLine([]byte("other"), "micro-codec-msgpack.tar.gz")),
		"/redirect/SHA256SUMS":                 []byte(sumLine(good, "micro-codec-msgpack.tar.gz")),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "alice" || pass != "s3cret-pass" {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/redirect/micro-codec-msgpack.tar.gz" {
			http.Redirect(w, r, closed.URL+"/micro-codec-msgpack.tar.gz?X-Amz-Signature=redirsig", http.StatusFound)
			return
		}
		body, ok := site[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".tar.gz") && r.URL.Query().Get("token") != "t0ken-abc" {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	withSecrets := func(base, path string) string {
		return strings.Replace(base, "http://", "http://alice:s3cret-pass@", 1) + path + "?token=t0ken-abc&X-Amz-Signature=sig-xyz"
	}
	noSecrets := func(t *testing.T, what, s string) {
		t.Helper()
		for _, secret := range []string{"alice", "s3cret-pass", "t0ken-abc", "sig-xyz", "redirsig"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows %q:\n%s", what, secret, s)
			}
		}
	}

	t.Run("installed", func(t *testing.T) {
		c := newCLI(t)
		want := srv.URL + "/auth/micro-codec-msgpack.tar.gz"
		r := c.mustPlugin("install", withSecrets(srv.URL, "/auth/micro-codec-msgpack.tar.gz"))
		expect(t, r, exitOK, "installed codec-msgpack 0.1.0", "from "+want+";", "not recorded")
		noSecrets(t, "the output", r.stdout+r.stderr)
		if p := c.readLock().Get("codec-msgpack"); p == nil || p.Source != want {
			t.Errorf("lock entry %+v, want source %s", p, want)
		}
		lock, err := os.ReadFile(c.lock)
		if err != nil {
			t.Fatal(err)
		}
		noSecrets(t, c.lock, string(lock))
		r = c.mustPlugin("list")
		noSecrets(t, "list", r.stdout+r.stderr)

		// A lock entry written with its credentials is shown without them.
		l := c.readLock()
		l.Get("codec-msgpack").Source = withSecrets(srv.URL, "/auth/micro-codec-msgpack.tar.gz")
		if err := l.Write(c.lock); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(plugins.InstalledPath(c.dir, "codec-msgpack", "0.1.0")); err != nil {
			t.Fatal(err)
		}
		r = c.mustPlugin("list")
		expect(t, r, exitOK, want)
		noSecrets(t, "list", r.stdout+r.stderr)
		r = c.plugin("verify")
		expect(t, r, exitError, "micro plugin install "+want)
		noSecrets(t, "verify", r.stdout+r.stderr)
	})

	for _, tt := range []struct {
		name, url string
		wants     []string
	}{
		{"not found", withSecrets(srv.URL, "/nosuch/micro-codec-msgpack.tar.gz"), []string{"404 Not Found", srv.URL + "/nosuch/SHA256SUMS"}},
		{"wrong checksum", withSecrets(srv.URL, "/wrongsum/micro-codec-msgpack.tar.gz"), []string{"checksum mismatch", srv.URL + "/wrongsum/SHA256SUMS says"}},
		{"unreachable", withSecrets(closed.URL, "/micro-codec-msgpack.tar.gz"), []string{"connection refused", closed.URL + "/SHA256SUMS"}},
		{"redirect unreachable", withSecrets(srv.URL, "/redirect/micro-codec-msgpack.tar.gz"), []string{"connection refused", srv.URL + "/redirect/micro-codec-msgpack.tar.gz"}},
		{"invalid", withSecrets("http://127.0.0.1:1", "/%zz.tar.gz"), []string{"not a valid URL"}},
		{"not an archive", withSecrets(srv.URL, "/auth/micro-codec-msgpack"), []string{"does not end in .tar.gz"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			r := c.plugin("install", tt.url)
			if r.code == exitOK {
				t.Fatalf("installed from %s:\n%s", tt.url, r.stdout)
			}
			expect(t, r, r.code, tt.wants...)
			noSecrets(t, "the output", r.stdout+r.stderr)
		})
	}

	t.Run("lock not writable", func(t *testing.T) {
		c := newCLI(t)
		c.lock = filepath.Join(c.dir, "nosuch", "micro.lock.hcl")
		r := c.plugin("install", withSecrets(srv.URL, "/auth/micro-codec-msgpack.tar.gz"))
		expect(t, r, exitError, "cannot be written", srv.URL+"/auth/micro-codec-msgpack.tar.gz")
		noSecrets(t, "the output", r.stdout+r.stderr)
	})
}
