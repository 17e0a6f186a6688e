package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/microhost/micro/sdk/auth/tlsconfig"
)

// TestCallTLSDialsWithClientSettingsOnly: micro call takes the tls block's
// certificate, key and ca_file, not the server-only client_ca_file, so a
// client CA bundle the caller cannot read does not stop it dialing.
func TestCallTLSDialsWithClientSettingsOnly(t *testing.T) {
	dir := t.TempDir()
	writeTestPKI(t, dir)
	cfg := `security {
  tls {
    cert_file           = "host.crt"
    key_file            = "host.key"
    ca_file             = "ca.crt"
    client_ca_file      = "unreadable-clients-ca.crt"
    require_client_cert = true
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "micro.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := dirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := callTLS(c, tlsconfig.Files{})
	if err != nil {
		t.Fatal(err)
	}
	if files == nil {
		t.Fatal("callTLS found no TLS settings")
	}
	if files.ClientCAFile != "" || files.RequireClientCert {
		t.Errorf("micro call dials with the server settings client_ca_file %q, require_client_cert %v", files.ClientCAFile, files.RequireClientCert)
	}
	if files.CertFile != filepath.Join(dir, "host.crt") || files.CAFile != filepath.Join(dir, "ca.crt") {
		t.Errorf("files = %+v, want the block's certificate and ca_file", files)
	}
	r, err := tlsconfig.New(*files)
	if err != nil {
		t.Fatalf("loading micro call's TLS files: %v", err)
	}
	r.Close()
}
