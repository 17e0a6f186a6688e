package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microhost/micro/internal/syncbuf"
	"github.com/microhost/micro/sdk/auth/authtest"
)

// TestMicroRunSecurity runs the real micro binary on a config with a security
// block: the embedded helloworld and the counter child service serve mutual
// TLS, the gateway demands a token with a role, and the caller travels as an
// internal token from the gateway to counter and on to helloworld, whose guard
// wants the role too.
func TestMicroRunSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	repo, _ := filepath.Abs("../..")
	micro := filepath.Join(dir, "micro")
	if b, err := exec.Command("go", "build", "-o", micro, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	writeTestPKI(t, dir)
	const secret = "micro-run-test-secret-0123456789abcdef"
	cfg := `
service "helloworld" {}
service "counter" {
  package = "` + filepath.Join(repo, "examples/two-services/counter") + `"
}
gateway {
  auth = true
  route "GET /greet/{name}" {
    service        = "counter"
    endpoint       = "Counter.Greet"
    required_roles = ["reader"]
  }
}
security {
  jwt {
    key { secret = env("TEST_JWT_SECRET") }
  }
  internal {
    key { secret_file = "internal.key" }
    signing { secret_file = "internal.key" }
  }
  tls {
    cert_file           = "host.crt"
    key_file            = "host.key"
    ca_file             = "ca.crt"
    require_client_cert = true
  }
  rbac {
    guard "*" { roles = ["reader"] }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "micro.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "internal.key"), []byte(strings.Repeat("i", 40)), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(micro, "run", "--gateway", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TEST_JWT_SECRET="+secret)
	stdout, _ := cmd.StdoutPipe()
	stderr := &syncbuf.Buffer{} // read while micro writes
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, cmd)
	lines := bufio.NewScanner(stdout)
	var gateway string
	for gateway == "" && lines.Scan() {
		if m := gatewayLine.FindStringSubmatch(lines.Text()); m != nil {
			gateway = m[1]
		}
	}
	if gateway == "" {
		t.Fatalf("micro run never got ready with a gateway:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	get := func(tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+gateway+"/greet/Ada", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + " " + string(b)
	}
	mint := func(roles ...string) string {
		now := time.Now()
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "ada", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "roles": roles,
		}).SignedString([]byte(secret))
		return s
	}
	if code, out := get(""); code != 401 || !strings.Contains(out, "Bearer realm=") {
		t.Errorf("no token: %d %s", code, out)
	}
	if code, out := get(mint()); code != 403 {
		t.Errorf("no role: %d %s", code, out)
	}
	if code, out := get(mint("reader")); code != 200 || !strings.Contains(out, "Hello Ada") {
		t.Fatalf("with the role: %d %s\n%s", code, out, stderr.String())
	}

	// micro call dials the services with the TLS files of micro.hcl and sends
	// --token as the bearer token.
	call := func(args ...string) (string, error) {
		c := exec.Command(micro, append([]string{"call"}, args...)...)
		c.Dir = dir
		c.Env = append(os.Environ(), "TEST_JWT_SECRET="+secret)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// Without a token the caller is the certificate's identity, which has no
	// role: authenticated, not allowed.
	if out, err := call("counter", "Counter.Greet", `{"name":"Ada"}`); err == nil || !strings.Contains(out, "403") {
		t.Errorf("micro call without a token: %v\n%s", err, out)
	}
	if out, err := call("--token", mint("reader"), "counter", "Counter.Greet", `{"name":"Ada"}`); err != nil || !strings.Contains(out, "Hello Ada") {
		t.Errorf("micro call with a token: %v\n%s", err, out)
	}
	if out, err := call("--token", mint("reader"), "--ca", filepath.Join(dir, "host.crt"), "counter", "Counter.Greet", `{}`); err == nil {
		t.Errorf("micro call trusting the wrong CA answered:\n%s", out)
	}
}

// writeTestPKI writes a CA (ca.crt) and a certificate for 127.0.0.1 that
// serves and dials (host.crt, host.key) into dir.
func writeTestPKI(t *testing.T, dir string) {
	t.Helper()
	ca := authtest.NewCA(t, "test ca")
	certPEM, keyPEM := ca.Issue(t, authtest.Leaf{CommonName: "host", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	authtest.Write(t, dir, "ca.crt", ca.PEM)
	authtest.Write(t, dir, "host.crt", certPEM)
	authtest.Write(t, dir, "host.key", keyPEM)
}
