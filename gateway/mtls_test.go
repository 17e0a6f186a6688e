package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/authtest"
	"github.com/microhost/micro/sdk/registry"
)

// leaf issues a certificate for 127.0.0.1 from ca, named by uri when it is not "".
func leaf(t *testing.T, ca *authtest.CA, cn, uri string) tls.Certificate {
	t.Helper()
	l := authtest.Leaf{CommonName: cn, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if uri != "" {
		l.URIs = []string{uri}
	}
	certPEM, keyPEM := ca.Issue(t, l)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
	ca := authtest.NewCA(t, "test ca")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverCert := leaf(t, ca, "gateway", "")
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
	bot := leaf(t, ca, "ops bot", "spiffe://test/ops-bot")
	other := leaf(t, ca, "someone", "spiffe://test/someone")
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
