// Package tlsconfig builds server and client TLS configurations from PEM files
// and keeps them current: certificates, keys and CA bundles are read again when
// their files change, without a restart.
package tlsconfig

import "time"

// Files names the PEM files of a TLS identity and the CAs it trusts: the plain
// data a config decoder fills in.
type Files struct {
	// CertFile holds the certificate chain presented to peers (leaf first).
	CertFile string `json:"cert_file,omitempty"`
	// KeyFile holds the certificate's private key.
	KeyFile string `json:"key_file,omitempty"`
	// CAFile is the CA bundle server certificates are verified against (empty:
	// the system roots). Without ClientCAFile it also admits client certificates,
	// so a public CA bundle here admits any publicly issued client certificate.
	CAFile string `json:"ca_file,omitempty"`
	// ClientCAFile, when set, is the only CA bundle a server admits client
	// certificates from, keeping callers apart from the servers CAFile trusts.
	ClientCAFile string `json:"client_ca_file,omitempty"`
	// RequireClientCert makes a server demand a client certificate signed by a
	// CA in ClientCAFile, else in CAFile (mutual TLS).
	RequireClientCert bool `json:"require_client_cert,omitempty"`
	// ServerName is the name a client expects in the server's certificate; empty
	// uses the host name dialed.
	ServerName string `json:"server_name,omitempty"`
	// PollInterval is how often the files are checked for changes (default 5s).
	PollInterval time.Duration `json:"poll_interval,omitempty"`
}

// DefaultPollInterval is how often files are checked when PollInterval is 0.
const DefaultPollInterval = 5 * time.Second
