package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the length of a token accepted for verification.
const MaxTokenBytes = 16 << 10

// ErrInvalidToken marks every verification failure; the wrapped error says why.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks JWTs against configured keys and claims and turns a good one
// into a Principal. It is safe for concurrent use; Close stops its background
// key refresh.
type Verifier struct {
	parser      *jwt.Parser
	methods     []string // the algorithms tokens may be signed with
	keys        []*verificationKey
	set         *jwks // nil without a JWKS URL
	rolesClaim  string
	scopesClaim string
	internal    bool // tokens carry a forwarded principal (see InternalConfig)
}

// VerifierOption tunes a Verifier.
type VerifierOption func(*verifierOptions)

type verifierOptions struct {
	client *http.Client
	logf   func(msg string, args ...any)
}

// HTTPClient sets the client the JWKS is fetched with (default: a plain client;
// the fetch has its own timeout).
func HTTPClient(c *http.Client) VerifierOption { return func(o *verifierOptions) { o.client = c } }

// Logger receives background problems (a failed JWKS refresh, a skipped key) as
// a message and key/value pairs.
func Logger(f func(msg string, args ...any)) VerifierOption {
	return func(o *verifierOptions) { o.logf = f }
}

// NewVerifier checks cfg, loads its keys and fetches its JWKS once; a key that
// cannot be read or used is an error, so a bad config stops start-up.
func NewVerifier(ctx context.Context, cfg JWTConfig, opts ...VerifierOption) (*Verifier, error) {
	o := verifierOptions{client: &http.Client{}, logf: func(string, ...any) {}}
	for _, opt := range opts {
		opt(&o)
	}
	if len(cfg.Keys) == 0 && cfg.JWKS == nil {
		return nil, errors.New("auth: jwt: configure at least one key or a jwks url")
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: jwt: leeway %s is negative", cfg.Leeway)
	}
	v := &Verifier{rolesClaim: cfg.RolesClaim, scopesClaim: cfg.ScopesClaim}
	if v.rolesClaim == "" {
		v.rolesClaim = DefaultRolesClaim
	}
	if v.scopesClaim == "" {
		v.scopesClaim = DefaultScopesClaim
	}
	var methods []string
	for _, kc := range cfg.Keys {
		k, err := loadKey(kc)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt: %w", err)
		}
		v.keys = append(v.keys, k)
		methods = appendNew(methods, k.algs...)
	}
	if cfg.JWKS != nil {
		set, err := newJWKS(ctx, *cfg.JWKS, o.client, o.logf)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt: %w", err)
		}
		v.set = set
		if len(cfg.JWKS.Algorithms) > 0 {
			methods = appendNew(methods, cfg.JWKS.Algorithms...)
		} else {
			// Keys may rotate to another type; each key still allows only its own.
			methods = appendNew(methods, allAlgorithms...)
		}
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		popts = append(popts, jwt.WithAudience(cfg.Audience...))
	}
	v.parser = jwt.NewParser(popts...)
	v.methods = methods
	return v, nil
}

// Close stops the background JWKS refresh.
func (v *Verifier) Close() error {
	if v.set != nil {
		v.set.close()
	}
	return nil
}

// Verify checks token's signature, algorithm and claims and returns its
// principal. Every failure wraps ErrInvalidToken and says what was wrong.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: the token is empty", ErrInvalidToken)
	}
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: the token is %d bytes, over the %d byte limit", ErrInvalidToken, len(token), MaxTokenBytes)
	}
	claims := jwt.MapClaims{}
	if tok, err := v.parser.ParseWithClaims(token, claims, v.keyfunc(ctx)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidToken, v.describe(tok, err), err)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: the token has no sub claim", ErrInvalidToken)
	}
	p := &Principal{
		Subject: sub,
		Roles:   stringsClaim(claims, v.rolesClaim),
		Scopes:  stringsClaim(claims, v.scopesClaim),
		Source:  SourceJWT,
		Claims:  claims,
	}
	if v.internal {
		return internalPrincipal(p, claims)
	}
	return p, nil
}

// keyfunc picks the keys that may verify t: by kid when the token names one,
// and only keys whose allow-list has the token's alg. An unknown kid refreshes
// the JWKS (rate-limited) once.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		kid := ""
		if raw, ok := t.Header["kid"]; ok {
			s, ok := raw.(string)
			if !ok {
				return nil, keyError("the kid header is not a string")
			}
			kid = s
		}
		cands := v.candidates(kid, alg)
		if len(cands) == 0 && kid != "" && v.set != nil && !v.knownStatic(kid) && !v.set.known(kid) {
			v.set.refreshFor(ctx, kid)
			cands = v.candidates(kid, alg)
		}
		switch len(cands) {
		case 0:
			return nil, v.noKey(kid, alg)
		case 1:
			return cands[0], nil
		}
		return jwt.VerificationKeySet{Keys: cands}, nil
	}
}

// candidates lists the keys for kid that allow alg.
func (v *Verifier) candidates(kid, alg string) []jwt.VerificationKey {
	var out []jwt.VerificationKey
	named := kid != "" && v.knownStatic(kid)
	for _, k := range v.keys {
		if !k.allows(alg) {
			continue
		}
		if kid == "" || k.id == kid || (!named && k.id == "") {
			out = append(out, k.key)
		}
	}
	if v.set != nil {
		for _, k := range v.set.lookup(kid, alg) {
			out = append(out, k.key)
		}
	}
	return out
}

func (v *Verifier) knownStatic(kid string) bool {
	return slices.ContainsFunc(v.keys, func(k *verificationKey) bool { return k.id == kid })
}

// noKey explains why no key could verify the token.
func (v *Verifier) noKey(kid, alg string) error {
	if kid != "" && !v.knownStatic(kid) && (v.set == nil || !v.set.known(kid)) &&
		!slices.ContainsFunc(v.keys, func(k *verificationKey) bool { return k.id == "" }) {
		return keyError(fmt.Sprintf("unknown kid %q", kid))
	}
	if kid != "" {
		return keyError(fmt.Sprintf("no key for kid %q allows alg %s", kid, alg))
	}
	return keyError("no configured key allows alg " + alg)
}

// keyError says why no key could be chosen for a token.
type keyError string

func (e keyError) Error() string { return string(e) }

// describe turns the library's error about tok into a short reason for the
// caller.
func (v *Verifier) describe(tok *jwt.Token, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		var ke keyError
		if errors.As(err, &ke) {
			return string(ke)
		}
		return "no key can verify it"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && !slices.Contains(v.methods, headerAlg(tok)) {
			return "signing algorithm not allowed"
		}
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token was issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer not accepted"
	}
	return "rejected"
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// headerAlg is the algorithm tok's header names, "" when it names none.
func headerAlg(tok *jwt.Token) string {
	alg, _ := tok.Header["alg"].(string)
	return alg
}
