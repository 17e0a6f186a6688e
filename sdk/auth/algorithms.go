package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"
)

// Algorithm families: a key's type fixes which algorithms it can verify, so an
// RSA public key can never be used as an HMAC secret ("HS/RS confusion") and no
// key verifies "none".
var (
	hmacAlgs   = []string{"HS256", "HS384", "HS512"}
	rsaAlgs    = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Alg = []string{"EdDSA"}
)

// allAlgorithms is every algorithm a verifier may accept.
var allAlgorithms = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// Algorithms returns every JWT algorithm a key may be limited to ("none" is
// never one of them).
func Algorithms() []string { return slices.Clone(allAlgorithms) }

// algorithmsFor returns the algorithms key's type can verify.
func algorithmsFor(key any) ([]string, error) {
	switch k := key.(type) {
	case []byte:
		return hmacAlgs, nil
	case *rsa.PublicKey:
		return rsaAlgs, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not supported (use P-256, P-384 or P-521)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return ed25519Alg, nil
	}
	return nil, fmt.Errorf("key type %T is not supported (use an HMAC secret, RSA, ECDSA or Ed25519 key)", key)
}

// allowList narrows what key's type can verify to the configured algorithms,
// refusing any the type cannot do.
func allowList(key any, configured []string) ([]string, error) {
	possible, err := algorithmsFor(key)
	if err != nil {
		return nil, err
	}
	if len(configured) == 0 {
		return possible, nil
	}
	out := make([]string, 0, len(configured))
	for _, a := range configured {
		if !slices.Contains(possible, a) {
			return nil, fmt.Errorf("algorithm %q cannot be used with a %s (it allows %v)", a, keyKind(key), possible)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func keyKind(key any) string {
	switch key.(type) {
	case []byte:
		return "HMAC secret"
	case *rsa.PublicKey:
		return "RSA key"
	case *ecdsa.PublicKey:
		return "ECDSA key"
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T", key)
}
