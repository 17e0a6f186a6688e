package auth_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/authtest"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/transport"
)

// pki is a trusted CA, an untrusted one, and files issued by them.
type pki struct {
	dir       string
	good, bad *authtest.CA
	caFile    string
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir(), good: authtest.NewCA(t, "good CA"), bad: authtest.NewCA(t, "evil CA")}
	p.caFile = authtest.Write(t, p.dir, "ca.pem", p.good.PEM)
	return p
}

// files issues leaf from ca and writes it as name.pem and name-key.pem.
func (p *pki) files(t *testing.T, ca *authtest.CA, name string, leaf authtest.Leaf) (cert, key string) {
	c, k := ca.Issue(t, leaf)
	return authtest.Write(t, p.dir, name+".pem", c), authtest.Write(t, p.dir, name+"-key.pem", k)
}

// mtlsServer serves Orders over mutual TLS with the test RBAC.
func mtlsServer(t *testing.T, p *pki, leaf authtest.Leaf) string {
	cert, key := p.files(t, p.good, "server", leaf)
	sec := newSecurity(t, auth.Config{
		TLS:  &tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile, RequireClientCert: true},
		RBAC: testRBAC,
	})
	return serve(t, sec.ServerMiddleware(), sec.HTTPOptions()...)
}

// mtlsCall calls endpoint at addr presenting the given client files.
func mtlsCall(t *testing.T, files tlsconfig.Files, addr, endpoint string) (*WhoResp, error) {
	sec := newSecurity(t, auth.Config{TLS: &files})
	tr := transport.NewHTTP(sec.HTTPOptions()...)
	c := client.New(client.Transport(tr), client.Retries(0))
	t.Cleanup(func() { c.Close(); tr.Close() })
	var out WhoResp
	err := c.Call(context.Background(), "orders", endpoint, &WhoReq{}, &out, client.WithAddress(addr))
	return &out, err
}

var loopback = authtest.Leaf{CommonName: "orders", DNSNames: []string{"orders.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}

func TestMTLSPrincipal(t *testing.T) {
	p := newPKI(t)
	addr := mtlsServer(t, p, loopback)

	cert, key := p.files(t, p.good, "billing", authtest.Leaf{CommonName: "billing", URIs: []string{"spiffe://test/billing"}})
	files := tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile}
	who, err := mtlsCall(t, files, addr, "Orders.Get")
	if err != nil {
		t.Fatal(err)
	}
	if who.Subject != "spiffe://test/billing" || who.Source != auth.SourceMTLS {
		t.Errorf("principal %+v, want the URI SAN from mtls", who)
	}
	// The binding gives the certificate the reader role, not admin.
	if _, err := mtlsCall(t, files, addr, "Orders.Delete"); errors.Code(err) != 403 {
		t.Errorf("Delete: %v, want 403", err)
	}

	// Without a URI SAN the common name is the identity; it has no binding.
	cert, key = p.files(t, p.good, "cn-only", authtest.Leaf{CommonName: "reports"})
	files = tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile, ServerName: "orders.test"}
	who, err = mtlsCall(t, files, addr, "Orders.Public")
	if err != nil {
		t.Fatal(err)
	}
	if who.Subject != "reports" || who.Source != auth.SourceMTLS {
		t.Errorf("principal %+v, want the common name", who)
	}
	if _, err := mtlsCall(t, files, addr, "Orders.Get"); errors.Code(err) != 403 {
		t.Errorf("Get without a role: %v, want 403", err)
	}
}

func TestMTLSAttacksFail(t *testing.T) {
	p := newPKI(t)
	addr := mtlsServer(t, p, loopback)
	goodCert, goodKey := p.files(t, p.good, "good", authtest.Leaf{URIs: []string{"spiffe://test/billing"}})
	evilCert, evilKey := p.files(t, p.bad, "evil", authtest.Leaf{URIs: []string{"spiffe://test/billing"}})
	oldCert, oldKey := p.files(t, p.good, "expired", authtest.Leaf{
		URIs:      []string{"spiffe://test/billing"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	})
	expiredServer := mtlsServer(t, p, authtest.Leaf{IPs: loopback.IPs, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	// A certificate from the trusted CA for another server: dialed by IP, its
	// name must still be checked.
	otherServer := mtlsServer(t, p, authtest.Leaf{CommonName: "billing", DNSNames: []string{"billing.test"}})

	cases := []struct {
		name  string
		files tlsconfig.Files
		addr  string
		want  string
	}{
		{"client certificate from the wrong CA", tlsconfig.Files{CertFile: evilCert, KeyFile: evilKey, CAFile: p.caFile}, addr, "unknown certificate authority"},
		{"expired client certificate", tlsconfig.Files{CertFile: oldCert, KeyFile: oldKey, CAFile: p.caFile}, addr, "expired certificate"},
		{"no client certificate", tlsconfig.Files{CAFile: p.caFile}, addr, "certificate required"},
		{"expired server certificate", tlsconfig.Files{CertFile: goodCert, KeyFile: goodKey, CAFile: p.caFile}, expiredServer, "certificate has expired"},
		{"server of another name", tlsconfig.Files{CertFile: goodCert, KeyFile: goodKey, CAFile: p.caFile, ServerName: "billing.test"}, addr, "not billing.test"},
		{"server without the dialed IP", tlsconfig.Files{CertFile: goodCert, KeyFile: goodKey, CAFile: p.caFile}, otherServer, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mtlsCall(t, tc.files, tc.addr, "Orders.Public")
			if err == nil {
				t.Fatal("the call succeeded")
			}
			t.Log(err)
			if errors.Code(err) != 503 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v (code %d), want a 503 saying %q", err, errors.Code(err), tc.want)
			}
		})
	}
}

// TestMTLSClientCAFile: with client_ca_file set, a certificate from the CA in
// ca_file (trusted to verify servers) is no caller identity, one from
// client_ca_file is.
func TestMTLSClientCAFile(t *testing.T) {
	p := newPKI(t)
	own := authtest.NewCA(t, "own CA")
	ownCA := authtest.Write(t, p.dir, "own-ca.pem", own.PEM)
	cert, key := p.files(t, p.good, "server", loopback)
	sec := newSecurity(t, auth.Config{
		TLS:  &tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile, ClientCAFile: ownCA},
		RBAC: testRBAC,
	})
	addr := serve(t, sec.ServerMiddleware(), sec.HTTPOptions()...)
	billing := authtest.Leaf{URIs: []string{"spiffe://test/billing"}}

	cert, key = p.files(t, p.good, "server-ca-client", billing)
	_, err := mtlsCall(t, tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile}, addr, "Orders.Public")
	if errors.Code(err) != 503 || !strings.Contains(fmt.Sprint(err), "unknown certificate authority") {
		t.Errorf("client certificate from ca_file's CA: %v, want it refused (503, unknown certificate authority)", err)
	}

	cert, key = p.files(t, own, "own-client", billing)
	who, err := mtlsCall(t, tlsconfig.Files{CertFile: cert, KeyFile: key, CAFile: p.caFile}, addr, "Orders.Get")
	if err != nil {
		t.Fatalf("client certificate from client_ca_file's CA: %v", err)
	}
	if who.Subject != "spiffe://test/billing" || who.Source != auth.SourceMTLS {
		t.Errorf("principal %+v, want the URI SAN from mtls", who)
	}
}
