package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/internal/syncbuf"
	"github.com/microhost/micro/sdk/client"
)

var (
	serviceLine = regexp.MustCompile(`service helloworld\s+http://(\S+)`)
	gatewayLine = regexp.MustCompile(`gateway\s+http://(\S+)`)
)

// TestRunEmbeddedDefault runs `micro run` with no micro.hcl, as a newcomer would
// (the gateway on a free port instead of 8080), calls the printed addresses of
// the service and the gateway, and stops it.
func TestRunEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"run", "--gateway", "127.0.0.1:0"}, stdout, stderr) }()

	deadline := time.Now().Add(20 * time.Second)
	var addr string
	for addr == "" {
		if m := serviceLine.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("micro run never said where helloworld listens:\n%s\n%s", stdout, stderr)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	out := stdout.String()
	for _, want := range []string{"embedded default", "ready in", `'{"name":"Alice"}'`, "/Greeter.Hello", "/api/docs", "GET /hello/{name}"} {
		if !strings.Contains(out, want) {
			t.Errorf("micro run output lacks %q:\n%s", want, out)
		}
	}
	c := client.New()
	defer c.Close()
	var rsp greeter.HelloResponse
	if err := c.Call(ctx, "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: "Alice"}, &rsp, client.WithAddress(addr)); err != nil || rsp.Message != "Hello Alice" {
		t.Fatalf("calling the printed address: %v %+v", err, rsp)
	}
	m := gatewayLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("micro run did not print the gateway:\n%s", out)
	}
	resp, err := http.Get("http://" + m[1] + "/hello/Bob")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello Bob") {
		t.Fatalf("through the gateway: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("micro run exited %d:\n%s", c, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("micro run did not stop")
	}
}

func TestConfigValidateAndDefault(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"config", "default"}, &out, &errOut); code != 0 {
		t.Fatalf("config default: %d %s", code, errOut.String())
	}
	good := filepath.Join(dir, "micro.hcl")
	os.WriteFile(good, out.Bytes(), 0o644)
	out.Reset()
	if code := run(context.Background(), []string{"config", "validate", good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "is valid") {
		t.Fatalf("validate the default: %d %s %s", code, out.String(), errOut.String())
	}
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("service \"a\" {\n  ttl = \"soon\"\n}\nregistry \"nope\" {}\n"), 0o644)
	errOut.Reset()
	if code := run(context.Background(), []string{"config", "validate", bad}, &out, &errOut); code != 1 {
		t.Fatalf("validate a bad file exited %d", code)
	}
	for _, want := range []string{"bad.hcl:2:", "bad.hcl:4:"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("diagnostics lack %s:\n%s", want, errOut.String())
		}
	}
}

// TestConfigValidateVars validates a config whose variable has no default, with
// --var as micro run takes it.
func TestConfigValidateVars(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vars.hcl")
	if err := writeFile(file, "variable \"zone\" {}\nservice \"helloworld\" {\n  metadata = { zone = var.zone }\n}\n"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	expect(t, c.run("config", "validate", file), exitError, "vars.hcl:1:1:", `Variable "zone" has no value`)
	expect(t, c.run("config", "validate", "--var", "zone=eu", file), exitOK, "vars.hcl is valid")
	expect(t, c.run("config", "validate", file, "--var", "zone"), exitUsage, "--var wants NAME=VALUE")
}

// TestConfigValidateWarnings prints a warning as file:line:col, like errors.
func TestConfigValidateWarnings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "route.hcl")
	if err := writeFile(file, "gateway {\n  route \"GET /x\" {\n    service  = \"nope\"\n    endpoint = \"A.B\"\n  }\n}\n"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	expect(t, c.run("config", "validate", file), exitOK, file+":3:16: warning: Unknown service \"nope\"", "route.hcl is valid")
}

// TestConfigValidateClientCAFile reports an unusable client_ca_file at its
// value, naming the attribute and the file.
func TestConfigValidateClientCAFile(t *testing.T) {
	dir := t.TempDir()
	writeTestPKI(t, dir)
	if err := writeFile(filepath.Join(dir, "garbage.pem"), "not pem\n"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	for _, tc := range []struct{ clientCA, want string }{
		{"ca.crt", ""},
		{"garbage.pem", "holds no PEM certificate"},
		{"missing.pem", "no such file"},
	} {
		file := filepath.Join(dir, "micro.hcl")
		if err := writeFile(file, fmt.Sprintf(`security {
  tls {
    cert_file           = "host.crt"
    key_file            = "host.key"
    ca_file             = "ca.crt"
    client_ca_file      = %q
    require_client_cert = true
  }
}
`, tc.clientCA)); err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			expect(t, c.run("config", "validate", file), exitOK, "micro.hcl is valid")
			continue
		}
		expect(t, c.run("config", "validate", file), exitError, file+":6:27: Unusable TLS files", "client_ca_file "+filepath.Join(dir, tc.clientCA), tc.want)
	}
}

// TestConfigValidateLock checks plugin blocks against the lock file micro run
// reads (beside the config, or --lock), as micro run does before it starts.
func TestConfigValidateLock(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "micro.hcl")
	if err := writeFile(file, "codec \"msgpack\" {}\nplugin \"codec-msgpack\" {\n  version = \"0.2.0\"\n}\n"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	lockBeside := filepath.Join(dir, plugins.LockFileName)
	expect(t, c.run("config", "validate", file), exitError,
		file+":2:1: Plugin codec-msgpack is not installed", lockBeside+" has no entry for it", "micro plugin install <source>")

	lock := &plugins.Lock{Plugins: []*plugins.LockedPlugin{{ID: "codec-msgpack", Version: "0.1.0", SHA256: strings.Repeat("0", 64)}}}
	if err := lock.Write(lockBeside); err != nil {
		t.Fatal(err)
	}
	expect(t, c.run("config", "validate", file), exitError,
		file+":3:3: Plugin codec-msgpack version mismatch", "asks for version 0.2.0", lockBeside+" has 0.1.0")

	other := filepath.Join(t.TempDir(), "other.lock.hcl")
	lock.Plugins[0].Version = "0.2.0"
	if err := lock.Write(other); err != nil {
		t.Fatal(err)
	}
	expect(t, c.run("config", "validate", "--lock", other, file), exitOK, "micro.hcl is valid")
}

// TestMissingConfigFile names the missing file and what to do about it.
func TestMissingConfigFile(t *testing.T) {
	c := newCLI(t)
	t.Chdir(t.TempDir())
	expect(t, c.run("config", "validate"), exitError, "micro.hcl does not exist", "micro config default > micro.hcl")
	expect(t, c.run("config", "validate", "nope.hcl"), exitError, "nope.hcl does not exist", "micro config default > micro.hcl")
	expect(t, c.run("run", "nope.hcl"), exitError, "nope.hcl does not exist", "micro config default > micro.hcl")
}
