package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/registry"
)

// testCA issues certificates for the gateway's TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// issue makes a certificate for 127.0.0.1, named by uri when it is not "".
func (ca *testCA) issue(t *testing.T, cn, uri string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRouteAuthClientCertificate serves the gateway over TLS that verifies
// client certificates when given: a caller without a token is known by its
// certificate (URI SAN), gets the roles the policy binds to it, and reaches
// the backend as that principal.
func TestRouteAuthClientCertificate(t *testing.T) {
	reg := registry.NewMemory()
	startWhoami(t, reg)
	policy, err := auth.NewPolicy(auth.RBACConfig{Bindings: map[string][]string{"spiffe://test/ops-bot": {"ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	opts := gatewayAuth(t)
	opts.Policy = policy
	g, err := gateway.New(gateway.Config{Auth: true, Routes: []*gateway.Route{
		{Pattern: "GET /ops", Service: "whoami", Endpoint: "Whoami.Get", Access: gateway.Access{RequiredRoles: []string{"ops"}}},
	}}, gateway.Registry(reg), gateway.Auth(opts))
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverCert := ca.issue(t, "gateway", "")
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven})
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() { g.Close(); <-done })
	waitReady(t, g)

	get := func(cert *tls.Certificate) (int, WhoamiResponse) {
		t.Helper()
		cfg := &tls.Config{RootCAs: pool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + ln.Addr().String() + "/ops")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var who WhoamiResponse
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &who); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return resp.StatusCode, who
	}
	bot := ca.issue(t, "ops bot", "spiffe://test/ops-bot")
	other := ca.issue(t, "someone", "spiffe://test/someone")
	if code, _ := get(nil); code != http.StatusUnauthorized {
		t.Errorf("no certificate, no token: %d, want 401", code)
	}
	if code, _ := get(&other); code != http.StatusForbidden {
		t.Errorf("a certificate without the role: %d, want 403", code)
	}
	code, who := get(&bot)
	if code != http.StatusOK || who.Subject != "spiffe://test/ops-bot" || who.Source != auth.SourceMTLS {
		t.Errorf("the bound certificate: %d %+v, want 200 as spiffe://test/ops-bot over mtls", code, who)
	}
}

// waitReady polls until g is ready to route.
func waitReady(t *testing.T, g *gateway.Gateway) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !g.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
