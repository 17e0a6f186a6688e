package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims of an internal token besides the registered ones.
const (
	claimSource = "src" // SourceJWT or SourceMTLS: how the upstream authenticated the caller
	claimExtra  = "ext" // the original token's claims
)

// NewInternalVerifier returns a verifier for internal tokens addressed to
// audience (the receiving service's name): it accepts only cfg's keys and
// issuer, and restores the forwarded principal with its original source.
func NewInternalVerifier(cfg InternalConfig, audience string) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("auth: internal: no verification keys")
	}
	if audience == "" {
		return nil, errors.New("auth: internal: the receiving service's name is required as the audience")
	}
	iss := cfg.Issuer
	if iss == "" {
		iss = DefaultInternalIssuer
	}
	v, err := NewVerifier(context.Background(), JWTConfig{
		Issuer:      iss,
		Audience:    []string{audience},
		Leeway:      cfg.Leeway,
		RolesClaim:  "roles",
		ScopesClaim: "scope",
		Keys:        cfg.Keys,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: internal: %w", err)
	}
	v.internal = true
	return v, nil
}

// internalPrincipal restores the source and original claims an upstream put in
// an internal token.
func internalPrincipal(p *Principal, claims map[string]any) (*Principal, error) {
	src, _ := claims[claimSource].(string)
	if src != SourceJWT && src != SourceMTLS {
		return nil, fmt.Errorf("%w: internal token has source %q; want %q or %q", ErrInvalidToken, src, SourceJWT, SourceMTLS)
	}
	p.Source = src
	ext, _ := claims[claimExtra].(map[string]any)
	p.Claims = ext
	return p, nil
}

// Signer mints internal tokens that forward a principal to one backend.
type Signer struct {
	method jwt.SigningMethod
	key    any
	kid    string
	issuer string
	ttl    time.Duration
	now    func() time.Time
}

// NewSigner loads cfg.Signing; the key type picks the algorithm unless
// cfg.Signing.Algorithm overrides it within the same family.
func NewSigner(cfg InternalConfig) (*Signer, error) {
	sc := cfg.Signing
	if sc == nil {
		return nil, errors.New("auth: internal: no signing key configured")
	}
	key, err := readKeyMaterial(sc.Secret, sc.SecretFile, sc.PEM, sc.File, parsePrivatePEM)
	if err != nil {
		return nil, fmt.Errorf("auth: internal: signing key: %w", err)
	}
	pub, alg, err := signingDefaults(key)
	if err != nil {
		return nil, fmt.Errorf("auth: internal: signing key: %w", err)
	}
	if sc.Algorithm != "" {
		if _, err := allowList(pub, []string{sc.Algorithm}); err != nil {
			return nil, fmt.Errorf("auth: internal: signing key: %w", err)
		}
		alg = sc.Algorithm
	}
	s := &Signer{method: jwt.GetSigningMethod(alg), key: key, kid: sc.ID, issuer: cfg.Issuer, ttl: cfg.TTL, now: time.Now}
	if s.issuer == "" {
		s.issuer = DefaultInternalIssuer
	}
	if s.ttl <= 0 {
		s.ttl = DefaultInternalTTL
	}
	return s, nil
}

// signingDefaults returns the public half of key (for algorithm checks) and the
// default algorithm for its type.
func signingDefaults(key any) (any, string, error) {
	switch k := key.(type) {
	case []byte:
		return k, "HS256", nil
	case *rsa.PrivateKey:
		return &k.PublicKey, "PS256", nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return &k.PublicKey, "ES256", nil
		case elliptic.P384():
			return &k.PublicKey, "ES384", nil
		case elliptic.P521():
			return &k.PublicKey, "ES512", nil
		}
	case ed25519.PrivateKey:
		return k.Public(), "EdDSA", nil
	}
	return nil, "", fmt.Errorf("key type %T is not supported (use an HMAC secret, RSA, ECDSA P-256/384/521 or Ed25519 key)", key)
}

// Sign returns an internal token carrying p for the service named audience.
func (s *Signer) Sign(p *Principal, audience string) (string, error) {
	if p == nil || p.Subject == "" {
		return "", errors.New("auth: internal: no principal to sign")
	}
	now := s.now()
	claims := jwt.MapClaims{
		"iss":       s.issuer,
		"aud":       audience,
		"sub":       p.Subject,
		"iat":       now.Unix(),
		"exp":       now.Add(s.ttl).Unix(),
		"roles":     p.Roles,
		"scope":     strings.Join(p.Scopes, " "),
		claimSource: p.Source,
	}
	if len(p.Claims) > 0 {
		claims[claimExtra] = p.Claims
	}
	t := jwt.NewWithClaims(s.method, claims)
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: internal: signing: %w", err)
	}
	return out, nil
}
