package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePEM writes one PEM block to dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyFiles writes a self-signed certificate, its key, a second unrelated key
// and a public key into dir.
func keyFiles(t *testing.T, dir string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "tls.crt", "CERTIFICATE", der)
	for name, k := range map[string]*ecdsa.PrivateKey{"tls.key": key, "other.key": other} {
		b, _ := x509.MarshalPKCS8PrivateKey(k)
		writePEM(t, dir, name, "PRIVATE KEY", b)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writePEM(t, dir, "jwt.pub", "PUBLIC KEY", pub)
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "internal.key"), []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityCheck loads the files a security block names: good ones pass,
// and every bad one is reported at once, at the attribute that names it,
// saying which file and what was expected.
func TestSecurityCheck(t *testing.T) {
	dir := t.TempDir()
	keyFiles(t, dir)
	file := filepath.Join(dir, FileName)
	load := func(t *testing.T, src string) *Config {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	good := load(t, `security {
  jwt {
    key { file = "jwt.pub" }
  }
  internal {
    key { secret_file = "internal.key" }
    signing { file = "tls.key" }
  }
  tls {
    cert_file = "tls.crt"
    key_file  = "tls.key"
    ca_file   = "tls.crt"
    require_client_cert = true
  }
}`)
	if err := good.Security.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got, want := good.Security.JWT.Keys[0].File, filepath.Join(dir, "jwt.pub"); got != want {
		t.Errorf("relative path resolved to %q, want %q (beside the config file)", got, want)
	}
	var nilSec *Security
	if err := nilSec.Check(); err != nil {
		t.Errorf("no security block: %v", err)
	}

	bad := load(t, `security {
  jwt {
    key { file = "missing.pub" }
    key { file = "garbage.pem" }
    key { file = "jwt.pub" }
  }
  internal {
    key { file = "tls.key" }
    signing { file = "jwt.pub" }
  }
  tls {
    cert_file = "tls.crt"
    key_file  = "other.key"
  }
}`)
	err := bad.Security.Check()
	var cerr *Error
	if err == nil || !errorsAs(err, &cerr) {
		t.Fatalf("Check = %v, want an *Error", err)
	}
	want := []struct{ pos, text string }{
		{file + ":3:18: Unusable jwt key", "missing.pub"},
		{file + ":4:18: Unusable jwt key", "garbage.pem"},
		{file + ":8:18: Unusable internal key", "tls.key"},
		{file + ":9:22: Unusable signing key", "jwt.pub"},
		{file + ":13:17: Unusable TLS files", "other.key"},
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d diagnostics, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w.pos) || !strings.Contains(lines[i], w.text) || !strings.Contains(lines[i], "expected") {
			t.Errorf("diagnostic %d:\n%s\nwant it to start %q and name %s", i, lines[i], w.pos, w.text)
		}
	}
}

func errorsAs(err error, target **Error) bool {
	e, ok := err.(*Error)
	*target = e
	return ok
}
