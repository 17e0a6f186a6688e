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
	serverCfg, err := srv.ServerConfig()
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
	caFile := authtest.Write(t, dir, "ca.pem", ca.PEM)
	for _, name := range []string{"", "127.0.0.1"} {
		cli := newReloader(t, tlsconfig.Files{CAFile: caFile, ServerName: name})
		if cn, err := handshake(ln.Addr().String(), cli.ClientConfig()); err == nil {
			t.Errorf("server name %q: the handshake with %q succeeded; want the certificate refused", name, cn)
		}
	}
	cli := newReloader(t, tlsconfig.Files{CAFile: caFile, ServerName: "billing.test"})
	if _, err := handshake(ln.Addr().String(), cli.ClientConfig()); err != nil {
		t.Errorf("server name billing.test: %v", err)
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
	}{
		"missing file":      {tlsconfig.Files{CertFile: dir + "/nope.pem", KeyFile: key}, "no such file", dir + "/nope.pem"},
		"missing key":       {tlsconfig.Files{CertFile: cert, KeyFile: dir + "/nope.key"}, "no such file", dir + "/nope.key"},
		"garbage cert":      {tlsconfig.Files{CertFile: garbage, KeyFile: key}, "holds no PEM certificate", garbage},
		"key as cert":       {tlsconfig.Files{CertFile: key, KeyFile: key}, "holds no PEM certificate", key},
		"garbage key":       {tlsconfig.Files{CertFile: cert, KeyFile: garbage}, "find any PEM data", garbage},
		"key of another":    {tlsconfig.Files{CertFile: cert, KeyFile: mismatched}, "private key does not match", mismatched},
		"CA without certs":  {tlsconfig.Files{CAFile: garbage}, "holds no PEM certificate", garbage},
		"missing CA":        {tlsconfig.Files{CAFile: dir + "/nope-ca.pem"}, "no such file", dir + "/nope-ca.pem"},
		"cert without key":  {tlsconfig.Files{CertFile: cert}, "set both cert_file and key_file", ""},
		"mTLS without a CA": {tlsconfig.Files{CertFile: cert, KeyFile: key, RequireClientCert: true}, "needs ca_file", ""},
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
		case tc.file != "" && (!blamed || fe.Path != tc.file):
			t.Errorf("%s: %v blames no file or another, want %s", name, err, tc.file)
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
