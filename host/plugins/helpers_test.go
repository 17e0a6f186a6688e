package plugins_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/internal/syncbuf"
)

// pluginBinaries builds every test plugin once per test binary.
var pluginBinaries = struct {
	once sync.Once
	dir  string
	err  error
}{}

// packages maps plugin ids to the packages the tests build them from.
var packages = map[string]string{
	"registry-memory":    "./testdata/registry-memory",
	"broker-memory":      "./testdata/broker-memory",
	"registry-chatty":    "./testdata/registry-chatty",
	"registry-oldproto":  "./testdata/registry-oldproto",
	"registry-panicky":   "./testdata/registry-panicky",
	"codec-msgpack":      "../../plugins/codec-msgpack",
	"transport-http":     "../../plugins/transport-http",
	"transport-ws":       "../../plugins/transport-ws",
	"transport-grpconly": "./testdata/transport-grpconly",
}

func TestMain(m *testing.M) {
	if path := os.Getenv("MICROHOST_TEST_HOST_PLUGIN"); path != "" {
		runTestHost(path)
		return
	}
	code := m.Run()
	if pluginBinaries.dir != "" {
		os.RemoveAll(pluginBinaries.dir)
	}
	os.Exit(code)
}

// binary returns the path of a built test plugin.
func binary(t testing.TB, id string) string {
	t.Helper()
	pluginBinaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "microhost-test-plugins-")
		if err != nil {
			pluginBinaries.err = err
			return
		}
		pluginBinaries.dir = dir
		for id, pkg := range packages {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, plugins.BinaryName(id)), pkg).CombinedOutput()
			if err != nil {
				pluginBinaries.err = &buildError{pkg: pkg, out: string(out), err: err}
				return
			}
		}
	})
	if pluginBinaries.err != nil {
		t.Fatal(pluginBinaries.err)
	}
	return filepath.Join(pluginBinaries.dir, plugins.BinaryName(id))
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

// spec returns a Spec for a built test plugin with its real checksum.
func spec(t testing.TB, id string) plugins.Spec {
	t.Helper()
	path := binary(t, id)
	sum, err := plugins.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	kind, _, _ := plugins.SplitID(id)
	return plugins.Spec{ID: id, Kind: kind, Version: "0.0.1", Path: path, SHA256: sum}
}

// newManager returns a manager logging into a buffer, closed at cleanup.
func newManager(t testing.TB, opts ...func(*plugins.Options)) (*plugins.Manager, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	o := plugins.Options{
		Logger:         hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug, JSONFormat: true}),
		HealthInterval: 200 * time.Millisecond,
		MaxBackoff:     500 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	m, err := plugins.NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, logs
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	if runtime.GOOS != "linux" {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
