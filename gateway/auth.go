package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// TokenVerifier checks a bearer token and returns the caller it names;
// *auth.Verifier is one.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Principal, error)
}

// PrincipalSigner mints the internal token that carries a verified caller to
// one backend service; *auth.Signer is one.
type PrincipalSigner interface {
	Sign(p *auth.Principal, audience string) (string, error)
}

// AuthOptions are what routes with Auth or RequiredRoles check callers with.
type AuthOptions struct {
	// Verifier checks bearer tokens; required once any route needs auth.
	Verifier TokenVerifier
	// Signer forwards the verified caller to the backend as an internal token
	// in metadata.Principal; nil forwards none, and backends see only the
	// client's own Authorization header.
	Signer PrincipalSigner
	// Policy adds the roles it binds to a caller's subject (nil: only the
	// roles the token carries).
	Policy *auth.Policy
	// Realm is named in WWW-Authenticate challenges (default "microhost").
	Realm string
}

// Auth sets how callers of routes that need auth are checked; it takes effect
// at New and at every Reload.
func Auth(a AuthOptions) Option { return func(o *options) { o.auth = a } }

// access is a route's compiled Access: nil when anyone may call it.
type access struct {
	opts  AuthOptions
	roles []string
	all   bool
}

// newAccess compiles a route's Access against the gateway default; it fails
// when the route needs auth and there is no verifier.
func newAccess(a Access, def bool, o AuthOptions, pattern string) (*access, error) {
	required := def
	if a.Auth != nil {
		required = *a.Auth
	}
	if !required && len(a.RequiredRoles) == 0 {
		return nil, nil
	}
	if o.Verifier == nil {
		return nil, fmt.Errorf("gateway: route %q needs authenticated callers, but no token verifier is configured (gateway.Auth; in micro.hcl a security jwt block)", pattern)
	}
	if o.Realm == "" {
		o.Realm = auth.DefaultRealm
	}
	return &access{opts: o, roles: a.RequiredRoles, all: a.RolesMatch == RolesAll}, nil
}

// check authenticates the caller of r, then checks its roles. A failure is
// written as a problem document (with a WWW-Authenticate challenge for a 401)
// and returns ok false. Identity headers the client sent are never read: the
// caller is who its verified token says.
func (a *access) check(w http.ResponseWriter, r *http.Request) (p *auth.Principal, ok bool) {
	if a == nil {
		return nil, true
	}
	h := r.Header.Get(metadata.Auth)
	if h == "" {
		if p, ok := auth.TLSPrincipal(r.TLS); ok { // roles from the policy's bindings
			return p, a.allow(w, r, p)
		}
		w.Header().Set(metadata.Challenge, auth.Challenge(a.opts.Realm, nil))
		writeError(w, r, errors.Unauthorized("gateway", "%s %s requires authentication: send Authorization: Bearer <token>, or a client certificate", r.Method, r.URL.Path))
		return nil, false
	}
	tok, ok := auth.ParseBearer(h)
	var err error
	if !ok {
		err = fmt.Errorf("%w: the Authorization header is not \"Bearer <token>\"", auth.ErrInvalidToken)
	} else {
		p, err = a.opts.Verifier.Verify(r.Context(), tok)
	}
	if err != nil {
		w.Header().Set(metadata.Challenge, auth.Challenge(a.opts.Realm, err))
		writeError(w, r, errors.Unauthorized("gateway", "%v", err))
		return nil, false
	}
	return p, a.allow(w, r, p)
}

// allow checks p's roles, writing the 403 when they fall short.
func (a *access) allow(w http.ResponseWriter, r *http.Request, p *auth.Principal) bool {
	if a.hasRoles(p) {
		return true
	}
	how := "one of"
	if a.all {
		how = "all of"
	}
	writeError(w, r, errors.Forbidden("gateway", "%q may not call %s %s: it needs %s the roles %s",
		p.Subject, r.Method, r.URL.Path, how, strings.Join(a.roles, ", ")))
	return false
}

// hasRoles reports whether p holds the required roles.
func (a *access) hasRoles(p *auth.Principal) bool {
	if len(a.roles) == 0 {
		return true
	}
	has := func(role string) bool {
		if a.opts.Policy != nil {
			return a.opts.Policy.HasRole(p, role)
		}
		return p.HasRole(role)
	}
	if a.all {
		return !slices.ContainsFunc(a.roles, func(r string) bool { return !has(r) })
	}
	return slices.ContainsFunc(a.roles, has)
}

// forward puts an internal token for p addressed to service into header, when
// the gateway has a signer. Whatever the client sent under that name never
// reaches a backend: header is built by outHeader from an allow-list.
func (a *access) forward(header map[string]string, p *auth.Principal, service string) *errors.Error {
	if a == nil || p == nil || a.opts.Signer == nil {
		return nil
	}
	tok, err := a.opts.Signer.Sign(p, service)
	if err != nil {
		return errors.Internal("gateway", "forwarding the caller to %s: %v", service, err)
	}
	header[metadata.Principal] = tok
	return nil
}
