package auth

import (
	"time"

	"github.com/microhost/micro/sdk/auth/tlsconfig"
)

// Config is the whole security setup of a service or the gateway: the plain
// data a config decoder fills in. New validates it and builds what it describes.
// Its JSON form leaves inline secrets and private keys out.
type Config struct {
	// JWT says which bearer tokens are accepted; nil accepts none.
	JWT *JWTConfig `json:"jwt,omitempty"`
	// Internal sets up the signed tokens that carry a principal from a trusted
	// upstream to a backend; nil neither accepts nor mints them.
	Internal *InternalConfig `json:"internal,omitempty"`
	// TLS turns on (mutual) TLS for the transport; nil keeps plain text.
	TLS *tlsconfig.Files `json:"tls,omitempty"`
	// RBAC maps roles to permissions and guards endpoints.
	RBAC RBACConfig `json:"rbac"`
	// Realm names the protected space in WWW-Authenticate challenges (default
	// "microhost").
	Realm string `json:"realm,omitempty"`
}

// JWTConfig says which bearer tokens are accepted and how to read them.
type JWTConfig struct {
	// Issuer is the required iss; empty accepts any issuer.
	Issuer string `json:"issuer,omitempty"`
	// Audience lists accepted audiences: a token's aud must name one of them.
	// Empty skips the aud check.
	Audience []string `json:"audience,omitempty"`
	// Leeway is the clock skew allowed when checking exp, nbf and iat (default 0).
	Leeway time.Duration `json:"leeway,omitempty"`
	// RolesClaim is the dotted path of the roles claim, e.g. "realm_access.roles"
	// (default "roles").
	RolesClaim string `json:"roles_claim,omitempty"`
	// ScopesClaim is the dotted path of the scopes: a space-separated string or a
	// list (default "scope").
	ScopesClaim string `json:"scopes_claim,omitempty"`
	// Keys are keys given in config or as PEM files.
	Keys []KeyConfig `json:"keys,omitempty"`
	// JWKS fetches keys from a JSON Web Key Set URL.
	JWKS *JWKSConfig `json:"jwks,omitempty"`
}

// KeyConfig is one verification key. Exactly one of Secret, SecretFile, PEM and
// File is set.
type KeyConfig struct {
	// ID is the kid this key answers to; a key without one verifies tokens
	// whatever their kid.
	ID string `json:"id,omitempty"`
	// Algorithms is the allow-list of algorithms this key verifies; empty allows
	// every algorithm of the key's type. An algorithm of another type is an error.
	Algorithms []string `json:"algorithms,omitempty"`
	// Secret is an HMAC secret (HS256/384/512), at least 32 bytes.
	Secret string `json:"-"`
	// SecretFile is a file holding an HMAC secret (surrounding space is trimmed).
	SecretFile string `json:"secret_file,omitempty"`
	// PEM is a public key (PKIX or PKCS#1) or a certificate, PEM encoded.
	PEM string `json:"pem,omitempty"`
	// File is a PEM file holding a public key or certificate.
	File string `json:"file,omitempty"`
}

// JWKSConfig fetches verification keys from a JSON Web Key Set.
type JWKSConfig struct {
	// URL serves the key set.
	URL string `json:"url"`
	// RefreshInterval is how often the set is fetched in the background
	// (default 15m).
	RefreshInterval time.Duration `json:"refresh_interval,omitempty"`
	// MinRefreshInterval bounds refreshes caused by tokens with an unknown kid:
	// at most one per interval, so bad tokens cannot hammer the key server
	// (default 30s).
	MinRefreshInterval time.Duration `json:"min_refresh_interval,omitempty"`
	// Timeout bounds one fetch (default 10s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Algorithms, when set, restricts what the set's keys may verify.
	Algorithms []string `json:"algorithms,omitempty"`
}

// InternalConfig sets up internal tokens: short-lived JWTs in the
// metadata.Principal header that carry an authenticated principal from a
// trusted upstream (the gateway, or a service calling on a user's behalf) to a
// backend, which verifies them before it believes them.
type InternalConfig struct {
	// Issuer is the iss of internal tokens (default "microhost-internal").
	Issuer string `json:"issuer,omitempty"`
	// TTL is the lifetime of a minted token (default 1m).
	TTL time.Duration `json:"ttl,omitempty"`
	// Leeway is the clock skew allowed when verifying (default 0).
	Leeway time.Duration `json:"leeway,omitempty"`
	// Keys verify internal tokens; a backend that has none ignores them.
	Keys []KeyConfig `json:"keys,omitempty"`
	// Signing mints internal tokens; only upstreams need it.
	Signing *SigningKeyConfig `json:"signing,omitempty"`
}

// SigningKeyConfig is the key internal tokens are signed with. Exactly one of
// Secret, SecretFile, PEM and File is set.
type SigningKeyConfig struct {
	// ID is written as the tokens' kid.
	ID string `json:"id,omitempty"`
	// Algorithm overrides the default for the key type (HS256, PS256 for RSA,
	// ES256/384/512 by curve, EdDSA).
	Algorithm string `json:"algorithm,omitempty"`
	// Secret is an HMAC secret, at least 32 bytes.
	Secret string `json:"-"`
	// SecretFile is a file holding an HMAC secret.
	SecretFile string `json:"secret_file,omitempty"`
	// PEM is a private key (PKCS#8, PKCS#1 or SEC 1), PEM encoded.
	PEM string `json:"-"`
	// File is a PEM file holding a private key.
	File string `json:"file,omitempty"`
}

// RBACConfig maps roles to permissions and guards endpoints.
type RBACConfig struct {
	// Roles maps a role to its permissions ("orders:read", "orders:*:own", "*").
	Roles map[string][]string `json:"roles,omitempty"`
	// Bindings grants roles to certificate identities ("spiffe://prod/orders",
	// else the certificate's CN). They never apply to token callers, whose
	// tokens carry their own roles.
	Bindings map[string][]string `json:"bindings,omitempty"`
	// Guards protect endpoints; the first whose Endpoint matches a call applies.
	Guards []GuardConfig `json:"guards,omitempty"`
}

// GuardConfig protects the endpoints it matches.
type GuardConfig struct {
	// Endpoint is "Handler.Method", "Handler.*" or "*".
	Endpoint string `json:"endpoint"`
	// Match is "any" (default: one listed role or permission suffices) or "all".
	Match string `json:"match,omitempty"`
	// Roles the caller must have.
	Roles []string `json:"roles,omitempty"`
	// Permissions the caller must be granted, "resource:action[:scope]".
	Permissions []string `json:"permissions,omitempty"`
	// Public lets anonymous calls through; a presented credential is still
	// verified and a bad one refused.
	Public bool `json:"public,omitempty"`
}

// Defaults for fields left zero.
const (
	DefaultRealm              = "microhost"
	DefaultRolesClaim         = "roles"
	DefaultScopesClaim        = "scope"
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultMinRefreshInterval = 30 * time.Second
	DefaultJWKSTimeout        = 10 * time.Second
	DefaultInternalIssuer     = "microhost-internal"
	DefaultInternalTTL        = time.Minute
)
