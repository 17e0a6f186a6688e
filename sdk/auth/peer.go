package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"github.com/microhost/micro/sdk/transport"
)

// CertificateIdentity names a certificate's holder: its first URI SAN (a SPIFFE
// ID, say), else its subject common name.
func CertificateIdentity(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	if len(cert.URIs) > 0 {
		return cert.URIs[0].String()
	}
	return cert.Subject.CommonName
}

// PeerPrincipal returns the principal of the client certificate the TLS
// handshake verified for the current request; false when there is none (plain
// text, no certificate, or a certificate that was not verified).
func PeerPrincipal(ctx context.Context) (*Principal, bool) {
	peer, ok := transport.PeerFromContext(ctx)
	if !ok {
		return nil, false
	}
	return TLSPrincipal(peer.TLS)
}

// TLSPrincipal returns the principal of the client certificate the handshake
// of cs verified (its identity: URI SAN, else CN); false when there is none.
func TLSPrincipal(cs *tls.ConnectionState) (*Principal, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, false
	}
	id := CertificateIdentity(cs.VerifiedChains[0][0])
	if id == "" {
		return nil, false
	}
	return &Principal{Subject: id, Source: SourceMTLS}, true
}
