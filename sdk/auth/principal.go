package auth

import (
	"context"
	"slices"
)

// Where a principal's identity was established.
const (
	SourceJWT  = "jwt"  // a verified bearer token
	SourceMTLS = "mtls" // a verified client certificate
)

// Principal is the authenticated caller of one request.
type Principal struct {
	// Subject identifies the caller: the token's sub, or the certificate's URI SAN
	// (else its common name).
	Subject string
	// Roles are the caller's roles, from the configured roles claim.
	Roles []string
	// Scopes are the OAuth scopes the token grants.
	Scopes []string
	// Source says how the identity was established: SourceJWT or SourceMTLS.
	Source string
	// Claims are the token's claims as decoded JSON (nil for certificates).
	Claims map[string]any
}

// HasRole reports whether p has role.
func (p *Principal) HasRole(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// HasScope reports whether p was granted scope.
func (p *Principal) HasScope(scope string) bool { return p != nil && slices.Contains(p.Scopes, scope) }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the auth middleware established for the
// current call; false for an anonymous call.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
