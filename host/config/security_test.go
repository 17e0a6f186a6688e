package config

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/auth/authtest"
)

// keyFiles writes a certificate and its key, a second unrelated key, a public
// key, a file that is not PEM and an HMAC secret into dir.
func keyFiles(t *testing.T, dir string) {
	t.Helper()
	ca := authtest.NewCA(t, "test")
	certPEM, keyPEM := ca.Issue(t, authtest.Leaf{CommonName: "test"})
	_, otherPEM := ca.Issue(t, authtest.Leaf{CommonName: "other"})
	authtest.Write(t, dir, "tls.crt", certPEM)
	authtest.Write(t, dir, "tls.key", keyPEM)
	authtest.Write(t, dir, "other.key", otherPEM)
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(key.(*ecdsa.PrivateKey).Public())
	authtest.Write(t, dir, "jwt.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	authtest.Write(t, dir, "garbage.pem", []byte("not pem\n"))
	authtest.Write(t, dir, "internal.key", []byte(strings.Repeat("k", 40)+"\n"))
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
	if !errors.As(err, &cerr) {
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

	// Each TLS file at fault is reported at the attribute naming it, which the
	// message names with the file and what is wrong.
	for _, tc := range []struct{ cert, key, ca, clientCA, pos, blamed, text string }{
		{"garbage.pem", "tls.key", "tls.crt", "tls.crt", ":3:17:", "cert_file garbage.pem", "holds no PEM certificate"},
		{"tls.crt", "garbage.pem", "tls.crt", "tls.crt", ":4:17:", "key_file garbage.pem", "PEM"},
		{"tls.crt", "tls.key", "garbage.pem", "tls.crt", ":5:17:", "ca_file garbage.pem", "holds no PEM certificate"},
		{"tls.crt", "tls.key", "missing.crt", "tls.crt", ":5:17:", "ca_file missing.crt", "no such file"},
		{"tls.crt", "tls.key", "tls.crt", "garbage.pem", ":6:22:", "client_ca_file garbage.pem", "holds no PEM certificate"},
		{"tls.crt", "tls.key", "tls.crt", "missing.crt", ":6:22:", "client_ca_file missing.crt", "no such file"},
	} {
		cfg := load(t, fmt.Sprintf(`security {
  tls {
    cert_file = %q
    key_file  = %q
    ca_file   = %q
    client_ca_file = %q
  }
}`, tc.cert, tc.key, tc.ca, tc.clientCA))
		err := cfg.Security.Check()
		setting, name, _ := strings.Cut(tc.blamed, " ")
		blamed := setting + " " + filepath.Join(dir, name)
		if err == nil || !strings.HasPrefix(err.Error(), file+tc.pos+" Unusable TLS files") || !strings.Contains(err.Error(), blamed) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("cert %s, key %s, ca %s, client ca %s: %v; want it at %s naming %s, saying %q", tc.cert, tc.key, tc.ca, tc.clientCA, err, tc.pos, blamed, tc.text)
		}
	}
}
