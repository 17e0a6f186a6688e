package host_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microhost/micro/host"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/authtest"
)

const (
	hostTokenSecret    = "host-test-token-secret-0123456789abcdef"
	hostInternalSecret = "host-test-internal-secret-0123456789abcdef"
)

// OrderRequest names an order.
type OrderRequest struct {
	ID int `json:"id"`
}

// Caller is who the service believes called it.
type Caller struct {
	Subject string   `json:"subject"`
	Source  string   `json:"source"`
	Roles   []string `json:"roles"`
}

// Orders answers with its caller.
type Orders struct{}

func caller(ctx context.Context) *Caller {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return &Caller{}
	}
	return &Caller{Subject: p.Subject, Source: p.Source, Roles: p.Roles}
}

// Get reads an order.
func (Orders) Get(ctx context.Context, _ *OrderRequest) (*Caller, error) { return caller(ctx), nil }

// Delete removes an order; a guard reserves it to admins.
func (Orders) Delete(ctx context.Context, _ *OrderRequest) (*Caller, error) { return caller(ctx), nil }

// pki is a throwaway CA that issues certificates into dir.
type pki struct {
	t    *testing.T
	dir  string
	ca   *authtest.CA
	cert *x509.Certificate
}

// newPKI makes a CA named name and writes its certificate to name.crt.
func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	ca := authtest.NewCA(t, name)
	p := &pki{t: t, dir: dir, ca: ca, cert: ca.Cert}
	p.write(name+".crt", ca.PEM)
	return p
}

func (p *pki) write(name string, b []byte) string {
	p.t.Helper()
	return authtest.Write(p.t, p.dir, name, b)
}

// issue makes a certificate for 127.0.0.1 good for serving and as a client,
// named by a URI SAN, and writes name.crt and name.key.
func (p *pki) issue(name, uri string) tls.Certificate {
	p.t.Helper()
	certPEM, keyPEM := p.ca.Issue(p.t, authtest.Leaf{CommonName: name, URIs: []string{uri}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	p.write(name+".crt", certPEM)
	p.write(name+".key", keyPEM)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// token mints a bearer token for sub with roles under realm_access.roles.
func token(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "https://login.test", "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}).SignedString([]byte(hostTokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reply is an HTTP answer read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// post calls url with an empty JSON object and the given headers.
func post(t *testing.T, c *http.Client, method, url string, header map[string]string) (reply, error) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte(`{"id":1}`))
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}, err
}

func (r reply) caller(t *testing.T) Caller {
	t.Helper()
	var c Caller
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return c
}

// TestServiceRequiresTokens runs a service with a jwt security block: calls
// straight to it and through the gateway need a good token, the guards apply,
// and the gateway forwards the caller as an internal token.
func TestServiceRequiresTokens(t *testing.T) {
	src := `
service "orders" {}
gateway {
  auth = true
  route "GET /orders/{id}" {
    service  = "orders"
    endpoint = "Orders.Get"
  }
  route "DELETE /orders/{id}" {
    service        = "orders"
    endpoint       = "Orders.Delete"
    required_roles = ["admin", "ops"]
    roles_match    = "all"
  }
}
security {
  realm = "shop"
  jwt {
    issuer      = "https://login.test"
    roles_claim = "realm_access.roles"
    key { secret = "` + hostTokenSecret + `" }
  }
  internal {
    key { secret = "` + hostInternalSecret + `" }
    signing { secret = "` + hostInternalSecret + `" }
  }
  rbac {
    guard "Orders.Delete" { roles = ["admin"] }
    guard "*" {}
  }
}
`
	cfg, err := config.Parse([]byte(src), "micro.hcl")
	if err != nil {
		t.Fatal(err)
	}
	h := runHost(t, host.WithConfig(cfg), host.WithServiceHandler("orders", Orders{}))
	svc := "http://" + h.Services()[0].Addr()
	gw := "http://" + h.Gateway().Addr()
	c := http.DefaultClient
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		name      string
		method    string
		url       string
		header    map[string]string
		status    int
		challenge string
		subject   string
	}{
		{"service: no token", "POST", svc + "/Orders.Get", nil, 401, `Bearer realm="shop"`, ""},
		{"service: bad token", "POST", svc + "/Orders.Get", bearer("x.y.z"), 401, `error="invalid_token"`, ""},
		{"service: forged identity header", "POST", svc + "/Orders.Get", map[string]string{"Micro-Principal": "admin", "Micro-User": "admin"}, 401, `Bearer realm="shop"`, ""},
		{"service: good token", "POST", svc + "/Orders.Get", bearer(token(t, "alice")), 200, "", "alice"},
		{"service: guard refuses", "POST", svc + "/Orders.Delete", bearer(token(t, "alice", "ops")), 403, "", ""},
		{"service: guard admits", "POST", svc + "/Orders.Delete", bearer(token(t, "root", "admin")), 200, "", "root"},
		{"gateway: no token", "GET", gw + "/orders/1", nil, 401, `Bearer realm="shop"`, ""},
		{"gateway: good token", "GET", gw + "/orders/1", bearer(token(t, "bob")), 200, "", "bob"},
		{"gateway: roles missing", "DELETE", gw + "/orders/1", bearer(token(t, "bob", "admin")), 403, "", ""},
		{"gateway: roles present", "DELETE", gw + "/orders/1", bearer(token(t, "eve", "admin", "ops")), 200, "", "eve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := post(t, c, tt.method, tt.url, tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) || (tt.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.subject != "" {
				if who := r.caller(t); who.Subject != tt.subject || who.Source != auth.SourceJWT {
					t.Errorf("caller %+v, want %s from a jwt", who, tt.subject)
				}
			}
		})
	}
}

// TestServiceRequiresClientCertificates runs a service with mutual TLS:
// certificates from another CA are refused in the handshake, the right ones
// become the principal (with bound roles), the gateway reaches the service
// with the host's certificate, and replaced certificate files take effect
// without a restart.
func TestServiceRequiresClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t, dir, "ca")
	ca.issue("server", "spiffe://test/host")
	billing := ca.issue("billing", "spiffe://test/billing")
	other := newPKI(t, t.TempDir(), "other-ca")
	intruder := other.issue("intruder", "spiffe://test/billing")

	src := `
service "orders" {}
gateway {
  route "GET /orders/{id}" {
    service  = "orders"
    endpoint = "Orders.Get"
  }
}
security {
  tls {
    cert_file           = "server.crt"
    key_file            = "server.key"
    ca_file             = "ca.crt"
    require_client_cert = true
    poll_interval       = "20ms"
  }
  rbac {
    bindings = { "spiffe://test/billing" = ["reader"] }
    guard "Orders.Delete" { roles = ["admin"] }
    guard "*" { roles = ["reader"] }
  }
}
`
	path := filepath.Join(dir, config.FileName)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	h := runHost(t, host.WithConfigFile(path), host.WithServiceHandler("orders", Orders{}))
	svc := "https://" + h.Services()[0].Addr()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	// The client presents its certificate whatever CAs the server asks for.
	client := func(cert tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:              roots,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		}}}
	}

	if _, err := post(t, client(intruder), "POST", svc+"/Orders.Get", nil); err == nil {
		t.Error("a certificate from another CA was accepted")
	}
	if _, err := post(t, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, "POST", svc+"/Orders.Get", nil); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	r, err := post(t, client(billing), "POST", svc+"/Orders.Get", nil)
	if err != nil || r.status != 200 {
		t.Fatalf("right certificate: %v %d %s", err, r.status, r.body)
	}
	if who := r.caller(t); who.Subject != "spiffe://test/billing" || who.Source != auth.SourceMTLS {
		t.Errorf("caller %+v, want spiffe://test/billing from mtls", who)
	}
	if r, err := post(t, client(billing), "POST", svc+"/Orders.Delete", nil); err != nil || r.status != 403 {
		t.Errorf("Delete as reader: %v %d %s", err, r.status, r.body)
	}

	// The gateway calls the service with the host's own certificate, which
	// holds no role the "*" guard wants.
	r, err = post(t, http.DefaultClient, "GET", "http://"+h.Gateway().Addr()+"/orders/1", nil)
	if err != nil || r.status != 403 || !strings.Contains(string(r.body), "spiffe://test/host") {
		t.Errorf("through the gateway: %v %d %s, want 403 naming the host's certificate", err, r.status, r.body)
	}

	// Replace the CA and the host's certificate: clients of the new CA get in
	// once the files are read again, without a restart.
	next := newPKI(t, t.TempDir(), "next-ca")
	next.issue("server", "spiffe://test/host")
	newcomer := next.issue("newcomer", "spiffe://test/billing")
	for _, f := range []string{"server.crt", "server.key"} {
		b, err := os.ReadFile(filepath.Join(next.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		ca.write(f, b)
	}
	ca.write("ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: next.cert.Raw}))
	roots = x509.NewCertPool()
	roots.AddCert(next.cert)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := post(t, client(newcomer), "POST", svc+"/Orders.Get", nil)
		if err == nil && r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificates were not picked up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := post(t, client(billing), "POST", svc+"/Orders.Get", nil); err == nil {
		t.Error("a certificate of the replaced CA is still accepted")
	}
}

// TestBadSecurityFilesStopStartUp checks a key file that cannot be used stops
// the host with an error naming the file and its place in micro.hcl.
func TestBadSecurityFilesStopStartUp(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwt.pub"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, config.FileName)
	src := "service \"orders\" {}\nsecurity {\n  jwt {\n    key { file = \"jwt.pub\" }\n  }\n  tls {\n    cert_file = \"none.crt\"\n    key_file  = \"none.key\"\n  }\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := host.New(context.Background(), host.WithConfigFile(path), host.WithLogger(quietLogger()),
		host.WithServiceHandler("orders", Orders{}))
	if err == nil {
		t.Fatal("the host started with unusable key and certificate files")
	}
	for _, want := range []string{path + ":4:18:", filepath.Join(dir, "jwt.pub"), path + ":7:17:", filepath.Join(dir, "none.crt")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
