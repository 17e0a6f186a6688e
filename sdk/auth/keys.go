package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinSecretBytes is the shortest HMAC secret accepted: shorter ones can be
// brute-forced offline from any token.
const MinSecretBytes = 32

// verificationKey is one key and the algorithms it may verify.
type verificationKey struct {
	id   string
	algs []string
	key  any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// allows reports whether k may verify a token signed with alg.
func (k *verificationKey) allows(alg string) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// loadKey reads and checks one configured key.
func loadKey(c KeyConfig) (*verificationKey, error) {
	name := c.ID
	if name == "" {
		name = "(no id)"
	}
	key, err := readKeyMaterial(c.Secret, c.SecretFile, c.PEM, c.File, parsePublicPEM)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	algs, err := allowList(key, c.Algorithms)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	return &verificationKey{id: c.ID, algs: algs, key: key}, nil
}

// readKeyMaterial returns the HMAC secret or the parsed PEM key from exactly one
// of the four sources.
func readKeyMaterial(secret, secretFile, pemText, file string, parse func([]byte) (any, error)) (any, error) {
	set := 0
	for _, s := range []string{secret, secretFile, pemText, file} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("set exactly one of secret, secret_file, pem and file")
	}
	switch {
	case secret != "":
		return checkSecret([]byte(secret))
	case secretFile != "":
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("reading the secret: %w", err)
		}
		return checkSecret([]byte(strings.TrimSpace(string(b))))
	case pemText != "":
		return parse([]byte(pemText))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the key file: %w", err)
	}
	k, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

func checkSecret(b []byte) ([]byte, error) {
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("the HMAC secret has %d bytes; use at least %d random bytes", len(b), MinSecretBytes)
	}
	return b, nil
}

// parsePublicPEM reads the first PEM block as a public key or a certificate.
func parsePublicPEM(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found; expected a PUBLIC KEY or CERTIFICATE")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the public key: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the RSA public key: %w", err)
		}
		return k, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the certificate: %w", err)
		}
		return cert.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("found a %s where a public key belongs; give verifiers the public key only", block.Type)
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
}

// parsePrivatePEM reads the first PEM block as a private key.
func parsePrivatePEM(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found; expected a PRIVATE KEY")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	return k, nil
}
