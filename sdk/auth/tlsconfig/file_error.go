package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// FileError is a TLS file that cannot be read or used, so a caller can point
// at the setting that names it.
type FileError struct {
	Setting string // what names the file: cert_file, key_file, ca_file or client_ca_file
	Path    string // the file at fault
	Err     error  // what is wrong with it
}

func (e *FileError) Error() string {
	if e.Setting == "" {
		return fmt.Sprintf("tls: %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("tls: %s %s: %v", e.Setting, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// loadKeyPair loads a certificate chain and its key, blaming the file at
// fault: the certificate file when it holds no usable certificate, the key
// file when the key is missing, unreadable or does not match.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &FileError{Setting: "cert_file", Path: certFile, Err: err}
	}
	if err := checkCertificate(certPEM); err != nil {
		return tls.Certificate{}, &FileError{Setting: "cert_file", Path: certFile, Err: err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &FileError{Setting: "key_file", Path: keyFile, Err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate parsed above, so what is left is the key.
		return tls.Certificate{}, &FileError{Setting: "key_file", Path: keyFile, Err: err}
	}
	return cert, nil
}

// loadPool reads the CA bundle at path, which setting names.
func loadPool(setting, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Setting: setting, Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, &FileError{Setting: setting, Path: path, Err: errors.New("it holds no PEM certificate")}
	}
	return pool, nil
}

// checkCertificate reports whether b starts a chain with a parseable PEM
// certificate.
func checkCertificate(b []byte) error {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return errors.New("it holds no PEM certificate")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("its certificate does not parse: %w", err)
		}
		return nil
	}
}
