package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerConfig returns a server configuration that answers every handshake
// with the current certificate and client CA pool, offering HTTP/2 and
// HTTP/1.1. It needs CertFile and KeyFile.
func (r *Reloader) ServerConfig() (*tls.Config, error) {
	if r.files.CertFile == "" {
		return nil, errors.New("tls: a server needs cert_file and key_file")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().server, nil
		},
	}, nil
}

// ClientConfig returns a client configuration that presents the current
// certificate (when one is configured) and verifies servers against the
// current CA bundle. The server certificate's chain is always checked; its name
// is checked against ServerName, else the host dialed: a server dialed by IP
// address needs that IP among its certificate's SANs (or set ServerName).
// TLS does not carry an IP address as the server name, so a dialer other than
// the Microhost http transport (which supplies it) needs ServerName set to dial
// one; without a name to check, the handshake fails.
func (r *Reloader) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: r.files.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := r.cur.Load().cert; c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // none configured: send no certificate
		},
		// The CA bundle can change at run time, which a fixed RootCAs cannot
		// follow, so the standard chain verification runs in VerifyConnection
		// with the current pool instead.
		InsecureSkipVerify: true,
		VerifyConnection:   r.verifyServer,
	}
}

// verifyServer checks the server's chain against the current CA pool (the
// system roots when none is configured) and its name.
func (r *Reloader) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         r.cur.Load().pool,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSName:       cs.ServerName,
	}
	if opts.DNSName == "" {
		opts.DNSName = r.files.ServerName
	}
	if opts.DNSName == "" {
		// TLS sends no name for an IP address: without one, any certificate
		// from a trusted CA would do.
		return errors.New("tls: no server name to check the server certificate against: set server_name, or dial with the name or IP address as the configuration's ServerName")
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: verifying the server certificate: %w", err)
	}
	return nil
}
