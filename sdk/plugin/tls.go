package plugin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// tlsServerName is the name in every plugin certificate and what the host verifies.
const tlsServerName = "microhost-plugin"

// HostTLS is the mutual-TLS material one host run uses with all its plugins: a
// private CA, the host's client certificate, and a fresh leaf for each plugin
// start. Keys are ECDSA P-256, so a plugin start spends well under a millisecond on
// them (go-plugin's AutoMTLS generates P-521 keys on both sides instead).
type HostTLS struct {
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	caPEM   []byte
	client  tls.Certificate
	started time.Time
}

// NewHostTLS creates the CA and the host's client certificate.
func NewHostTLS() (*HostTLS, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("plugin tls: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "microhost plugin CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("plugin tls: CA certificate: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	h := &HostTLS{caCert: caCert, caKey: caKey, caPEM: pemBlock("CERTIFICATE", caDER), started: now}
	certPEM, keyPEM, err := h.leaf("microhost host", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	h.client, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("plugin tls: host certificate: %w", err)
	}
	return h, nil
}

// ClientConfig is the TLS configuration the host dials its plugins with.
func (h *HostTLS) ClientConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(h.caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{h.client},
		RootCAs:      pool,
		ServerName:   tlsServerName,
		MinVersion:   tls.VersionTLS13,
	}
}

// PluginEnv returns the environment entry that hands one plugin start its own
// certificate, key and the CA that signs the host's certificate.
func (h *HostTLS) PluginEnv() (string, error) {
	certPEM, keyPEM, err := h.leaf(tlsServerName, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return "", err
	}
	return EnvTLS + "=" + string(certPEM) + string(keyPEM) + string(h.caPEM), nil
}

func (h *HostTLS) leaf(cn string, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin tls: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{tlsServerName},
		NotBefore:    h.started.Add(-time.Minute),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, h.caCert, &key.PublicKey, h.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin tls: certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin tls: key: %w", err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
}

// ServerBundle returns a fresh server certificate and key and the CA as one PEM
// bundle, for a server that clients of this HostTLS must trust.
func (h *HostTLS) ServerBundle() (string, error) {
	certPEM, keyPEM, err := h.leaf(tlsServerName, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return "", err
	}
	return string(certPEM) + string(keyPEM) + string(h.caPEM), nil
}

// ClientBundle returns a fresh client certificate and key and the CA as one PEM
// bundle, for a process that calls a server holding a ServerBundle.
func (h *HostTLS) ClientBundle() (string, error) {
	certPEM, keyPEM, err := h.leaf("microhost client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return "", err
	}
	return string(certPEM) + string(keyPEM) + string(h.caPEM), nil
}

// ClientTLSFromBundle builds a mutual-TLS client configuration from a
// ClientBundle.
func ClientTLSFromBundle(bundle string) (*tls.Config, error) {
	cert, pool, err := parseBundle(bundle)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: tlsServerName, MinVersion: tls.VersionTLS13}, nil
}

// ServerTLSFromBundle builds a mutual-TLS server configuration from a
// ServerBundle (or what PluginEnv hands a plugin).
func ServerTLSFromBundle(bundle string) (*tls.Config, error) {
	cert, pool, err := parseBundle(bundle)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// serverTLSFromEnv builds the plugin's TLS configuration from what the host put
// in EnvTLS: its own certificate and key, and the CA that must have signed the
// host's client certificate.
func serverTLSFromEnv(value string) (*tls.Config, error) {
	if value == "" {
		return nil, fmt.Errorf("%s is not set: plugins must be started by a Microhost host", EnvTLS)
	}
	return ServerTLSFromBundle(value)
}

// parseBundle reads a certificate, its key and a CA certificate from PEM.
func parseBundle(value string) (tls.Certificate, *x509.CertPool, error) {
	var certPEM, keyPEM, caPEM []byte
	rest := []byte(value)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		enc := pem.EncodeToMemory(b)
		switch {
		case b.Type == "CERTIFICATE" && certPEM == nil:
			certPEM = enc
		case strings.Contains(b.Type, "PRIVATE KEY"):
			keyPEM = enc
		case b.Type == "CERTIFICATE":
			caPEM = enc
		}
	}
	if certPEM == nil || keyPEM == nil || caPEM == nil {
		return tls.Certificate{}, nil, fmt.Errorf("a TLS bundle must hold a certificate, a key and a CA certificate")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("plugin tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("plugin tls: unreadable CA certificate")
	}
	return cert, pool, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
