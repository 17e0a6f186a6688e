package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/auth/authtest"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/transport"
)

type nopHandler struct{}

func (nopHandler) ServeRequest(context.Context, *transport.Message) *transport.Message {
	return &transport.Message{Header: map[string]string{}}
}

func (nopHandler) ServeStream(context.Context, map[string]string, transport.Stream) error { return nil }

func newReloader(t *testing.T, f tlsconfig.Files) *tlsconfig.Reloader {
	t.Helper()
	r, err := tlsconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// handshake dials addr with cfg and returns the server certificate's common
// name, or the handshake error.
func handshake(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		return "", err
	}
	// TLS 1.3 reports a refused client certificate on the first read.
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return "", err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadOnFileChange: a server's certificate and client CA bundle, and a
// client's certificate, are replaced on disk while everything runs; new
// handshakes use the new files without a restart.
func TestReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := authtest.NewCA(t, "ca one"), authtest.NewCA(t, "ca two")
	leaf := authtest.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}

	write := func(ca *authtest.CA, name, cn string) (string, string) {
		l := leaf
		l.CommonName = cn
		c, k := ca.Issue(t, l)
		return authtest.Write(t, dir, name+".pem", c), authtest.Write(t, dir, name+"-key.pem", k)
	}
	srvCert, srvKey := write(ca1, "server", "server one")
	cliCert, cliKey := write(ca1, "client", "client one")
	srvCA := authtest.Write(t, dir, "server-ca.pem", ca1.PEM)
	cliCA := authtest.Write(t, dir, "client-ca.pem", append(append([]byte{}, ca1.PEM...), ca2.PEM...))

	srv := newReloader(t, tlsconfig.Files{CertFile: srvCert, KeyFile: srvKey, CAFile: srvCA, RequireClientCert: true, PollInterval: 5 * time.Millisecond})
	cli := newReloader(t, tlsconfig.Files{CertFile: cliCert, KeyFile: cliKey, CAFile: cliCA, ServerName: "127.0.0.1", PollInterval: 5 * time.Millisecond})
	serverCfg, err := srv.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr := transport.NewHTTP(transport.ServerTLS(serverCfg))
	ln, err := tr.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve(nopHandler{})
	t.Cleanup(func() { ln.Close(); tr.Close() })

	if cn, err := handshake(ln.Addr(), cli.ClientConfig()); err != nil || cn != "server one" {
		t.Fatalf("first handshake: %q %v", cn, err)
	}

	// The server gets a new certificate: clients see it on their next handshake.
	write(ca1, "server", "server two")
	eventually(t, "server certificate reload", func() error {
		cn, err := handshake(ln.Addr(), cli.ClientConfig())
		if err != nil {
			return err
		}
		if cn != "server two" {
			return &reloadPending{cn}
		}
		return nil
	})

	// The client moves to a certificate from a CA the server does not trust
	// yet: refused until the server's CA bundle gains that CA.
	write(ca2, "client", "client two")
	eventually(t, "client certificate reload", func() error {
		_, err := handshake(ln.Addr(), cli.ClientConfig())
		if err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
			return &reloadPending{"client certificate not swapped yet"}
		}
		return nil
	})
	authtest.Write(t, dir, "server-ca.pem", append(append([]byte{}, ca1.PEM...), ca2.PEM...))
	eventually(t, "CA bundle reload", func() error {
		_, err := handshake(ln.Addr(), cli.ClientConfig())
		return err
	})
}

// TestServerNameAlwaysChecked: a client dialing an IP address without a
// server name cannot check the certificate's name, so it refuses the server
// rather than accept any certificate the CA issued; with the IP as the server
// name, only a certificate for that IP will do.
func TestServerNameAlwaysChecked(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "ca")
	c, k := ca.Issue(t, authtest.Leaf{CommonName: "billing", DNSNames: []string{"billing.test"}})
	srv := newReloader(t, tlsconfig.Files{CertFile: authtest.Write(t, dir, "cert.pem", c), KeyFile: authtest.Write(t, dir, "key.pem", k)})
	addr := serveTLS(t, srv)
	caFile := authtest.Write(t, dir, "ca.pem", ca.PEM)
	for _, name := range []string{"", "127.0.0.1"} {
		cli := newReloader(t, tlsconfig.Files{CAFile: caFile, ServerName: name})
		if cn, err := handshake(addr, cli.ClientConfig()); err == nil {
			t.Errorf("server name %q: the handshake with %q succeeded; want the certificate refused", name, cn)
		}
	}
	cli := newReloader(t, tlsconfig.Files{CAFile: caFile, ServerName: "billing.test"})
	if _, err := handshake(addr, cli.ClientConfig()); err != nil {
		t.Errorf("server name billing.test: %v", err)
	}
}

// serveTLS accepts TLS connections with r's server configuration on a free
// loopback port, holding each open until the client hangs up.
func serveTLS(t *testing.T, r *tlsconfig.Reloader) string {
	t.Helper()
	serverCfg, err := r.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(io.Discard, conn) // until the client hangs up
			}()
		}
	}()
	return ln.Addr().String()
}

// TestClientCAFile: with client_ca_file set, only its CAs admit client
// certificates, so a public bundle in ca_file admits no publicly issued one;
// ca_file still verifies servers, and without client_ca_file it admits
// clients as before.
func TestClientCAFile(t *testing.T) {
	dir := t.TempDir()
	public, own := authtest.NewCA(t, "public CA"), authtest.NewCA(t, "own CA")
	publicCA := authtest.Write(t, dir, "public-ca.pem", public.PEM)
	ownCA := authtest.Write(t, dir, "own-ca.pem", own.PEM)
	issue := func(ca *authtest.CA, name string) (cert, key string) {
		c, k := ca.Issue(t, authtest.Leaf{CommonName: name, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		return authtest.Write(t, dir, name+".pem", c), authtest.Write(t, dir, name+"-key.pem", k)
	}
	srvCert, srvKey := issue(public, "server")
	publicCert, publicKey := issue(public, "public-client")
	ownCert, ownKey := issue(own, "own-client")

	cases := []struct {
		name       string
		clientCA   string // the server's client_ca_file
		require    bool   // the server's require_client_cert
		cert, key  string // the client's certificate
		wantRefuse bool
	}{
		{"a client of ca_file only is refused", ownCA, true, publicCert, publicKey, true},
		{"a client of ca_file only is refused when certificates are optional", ownCA, false, publicCert, publicKey, true},
		{"a client of client_ca_file is admitted", ownCA, true, ownCert, ownKey, false},
		{"a client of client_ca_file is admitted when certificates are optional", ownCA, false, ownCert, ownKey, false},
		{"without client_ca_file, a client of ca_file is admitted", "", true, publicCert, publicKey, false},
		{"without client_ca_file, a client of another CA is refused", "", true, ownCert, ownKey, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newReloader(t, tlsconfig.Files{CertFile: srvCert, KeyFile: srvKey, CAFile: publicCA, ClientCAFile: tc.clientCA, RequireClientCert: tc.require})
			cli := newReloader(t, tlsconfig.Files{CertFile: tc.cert, KeyFile: tc.key, CAFile: publicCA, ServerName: "127.0.0.1"})
			_, err := handshake(serveTLS(t, srv), cli.ClientConfig())
			switch {
			case tc.wantRefuse && err == nil:
				t.Error("the client certificate was admitted")
			case tc.wantRefuse && !strings.Contains(err.Error(), "unknown certificate authority"):
				t.Errorf("refused with %v, want an unknown certificate authority", err)
			case !tc.wantRefuse && err != nil:
				t.Errorf("refused: %v", err)
			}
		})
	}

	// The server's own calls verify servers against ca_file, not client_ca_file.
	srv := newReloader(t, tlsconfig.Files{CertFile: srvCert, KeyFile: srvKey, CAFile: publicCA, ClientCAFile: ownCA, ServerName: "127.0.0.1"})
	ownServer := serveTLS(t, newReloader(t, tlsconfig.Files{CertFile: ownCert, KeyFile: ownKey}))
	if _, err := handshake(ownServer, srv.ClientConfig()); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("dialing a server of client_ca_file's CA: %v, want it refused", err)
	}
	publicServer := serveTLS(t, newReloader(t, tlsconfig.Files{CertFile: srvCert, KeyFile: srvKey}))
	if _, err := handshake(publicServer, srv.ClientConfig()); err != nil {
		t.Errorf("dialing a server of ca_file's CA: %v", err)
	}
}

type reloadPending struct{ state string }

func (e *reloadPending) Error() string { return "not reloaded yet: " + e.state }

// TestBadFilesKeepThePrevious: a broken file at start is an error; a broken
// change at run time keeps the previous certificate.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "ca")
	c, k := ca.Issue(t, authtest.Leaf{CommonName: "a"})
	cert := authtest.Write(t, dir, "cert.pem", c)
	key := authtest.Write(t, dir, "key.pem", k)
	_, otherKey := ca.Issue(t, authtest.Leaf{CommonName: "b"})
	mismatched := authtest.Write(t, dir, "other-key.pem", otherKey)
	garbage := authtest.Write(t, dir, "garbage.pem", []byte("not pem"))

	for name, tc := range map[string]struct {
		f    tlsconfig.Files
		want string
		file string // the file a *FileError blames; "" for none
		by   string // the setting naming it
	}{
		"missing file":            {tlsconfig.Files{CertFile: dir + "/nope.pem", KeyFile: key}, "no such file", dir + "/nope.pem", "cert_file"},
		"missing key":             {tlsconfig.Files{CertFile: cert, KeyFile: dir + "/nope.key"}, "no such file", dir + "/nope.key", "key_file"},
		"garbage cert":            {tlsconfig.Files{CertFile: garbage, KeyFile: key}, "holds no PEM certificate", garbage, "cert_file"},
		"key as cert":             {tlsconfig.Files{CertFile: key, KeyFile: key}, "holds no PEM certificate", key, "cert_file"},
		"garbage key":             {tlsconfig.Files{CertFile: cert, KeyFile: garbage}, "find any PEM data", garbage, "key_file"},
		"key of another":          {tlsconfig.Files{CertFile: cert, KeyFile: mismatched}, "private key does not match", mismatched, "key_file"},
		"CA without certs":        {tlsconfig.Files{CAFile: garbage}, "holds no PEM certificate", garbage, "ca_file"},
		"missing CA":              {tlsconfig.Files{CAFile: dir + "/nope-ca.pem"}, "no such file", dir + "/nope-ca.pem", "ca_file"},
		"client CA without certs": {tlsconfig.Files{CertFile: cert, KeyFile: key, ClientCAFile: garbage}, "holds no PEM certificate", garbage, "client_ca_file"},
		"missing client CA":       {tlsconfig.Files{CertFile: cert, KeyFile: key, ClientCAFile: dir + "/nope-clients.pem"}, "no such file", dir + "/nope-clients.pem", "client_ca_file"},
		"cert without key":        {tlsconfig.Files{CertFile: cert}, "set both cert_file and key_file", "", ""},
		"mTLS without a CA":       {tlsconfig.Files{CertFile: cert, KeyFile: key, RequireClientCert: true}, "needs client_ca_file (or ca_file)", "", ""},
	} {
		_, err := tlsconfig.New(tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
			continue
		}
		var fe *tlsconfig.FileError
		switch blamed := errors.As(err, &fe); {
		case tc.file == "" && blamed:
			t.Errorf("%s: blames %s, want no file", name, fe.Path)
		case tc.file != "" && (!blamed || fe.Path != tc.file || fe.Setting != tc.by):
			t.Errorf("%s: %v blames no file or another, want %s named by %s", name, err, tc.file, tc.by)
		case tc.file != "" && !strings.Contains(err.Error(), tc.by):
			t.Errorf("%s: %v does not name %s", name, err, tc.by)
		}
	}

	r := newReloader(t, tlsconfig.Files{CertFile: cert, KeyFile: key, PollInterval: time.Hour})
	authtest.Write(t, dir, "key.pem", otherKey)
	if changed, err := r.Reload(); err == nil || changed {
		t.Fatalf("reloading a mismatched pair: changed %v, err %v", changed, err)
	}
	if _, err := r.ServerConfig(); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenFileLoggedOnce checks a problem that lasts is logged once, not at
// every poll, and logged again once it was fixed and comes back.
func TestBrokenFileLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "ca")
	c, k := ca.Issue(t, authtest.Leaf{CommonName: "a"})
	cert := authtest.Write(t, dir, "cert.pem", c)
	key := authtest.Write(t, dir, "key.pem", k)
	_, otherKey := ca.Issue(t, authtest.Leaf{CommonName: "b"})

	var mu sync.Mutex
	var problems, reloads int
	logf := func(msg string, _ ...any) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(msg, "cannot be loaded") {
			problems++
		} else {
			reloads++
		}
	}
	r, err := tlsconfig.New(tlsconfig.Files{CertFile: cert, KeyFile: key, PollInterval: time.Millisecond}, tlsconfig.Logger(logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return problems, reloads }

	authtest.Write(t, dir, "key.pem", otherKey) // breaks the pair
	eventually(t, "the problem logged", func() error {
		if p, _ := count(); p == 0 {
			return &reloadPending{"no problem logged"}
		}
		return nil
	})
	// Many polls later, still logged once.
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if p, _ := count(); p != 1 {
		t.Fatalf("a lasting problem was logged %d times, want once", p)
	}
	c2, k2 := ca.Issue(t, authtest.Leaf{CommonName: "c"}) // fixed with a new pair
	authtest.Write(t, dir, "key.pem", k2)
	authtest.Write(t, dir, "cert.pem", c2)
	eventually(t, "the reload logged", func() error {
		if _, rl := count(); rl == 0 {
			return &reloadPending{"no reload logged"}
		}
		return nil
	})
	before, _ := count()                        // a poll between the two writes may have seen a mismatch too
	authtest.Write(t, dir, "key.pem", otherKey) // broken again: reported again
	eventually(t, "the new problem logged", func() error {
		if p, _ := count(); p <= before {
			return &reloadPending{"problem not logged again"}
		}
		return nil
	})
}
