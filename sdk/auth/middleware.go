package auth

import (
	"context"
	"fmt"
	"strings"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/server"
)

// ServerOptions configures the server middleware.
type ServerOptions struct {
	// ID names the service in error envelopes.
	ID string
	// Tokens verifies bearer tokens; nil ignores the Authorization header.
	Tokens *Verifier
	// Internal verifies internal tokens (metadata.Principal); nil drops them.
	Internal *Verifier
	// Policy maps roles to permissions (nil: no roles grant anything).
	Policy *Policy
	// Guards protect endpoints; an endpoint no guard matches admits anonymous
	// callers, though a presented credential is still verified.
	Guards Guards
	// Realm is named in WWW-Authenticate challenges (default "microhost").
	Realm string
}

// ServerMiddleware authenticates every call, then applies the endpoint's guard:
// credentials are an internal token from a trusted upstream, else a bearer
// token, else a verified client certificate. Headers that merely claim an
// identity are removed first, so no handler or downstream call sees them. A
// missing or bad credential where one is needed is a 401 with a
// WWW-Authenticate challenge; a principal without the rights is a 403.
func ServerMiddleware(o ServerOptions) server.Middleware {
	if o.Policy == nil {
		o.Policy = &Policy{}
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	return func(next server.Handler) server.Handler {
		return func(ctx context.Context, req *server.Request) (any, error) {
			p, note, err := o.authenticate(ctx, req)
			if err != nil {
				metadata.SetResponse(ctx, metadata.Challenge, Challenge(o.Realm, err))
				return nil, errors.Unauthorized(o.ID, "%s: %v", req.Endpoint, err)
			}
			if g := o.Guards.For(req.Endpoint); g != nil {
				if err := g.Check(o.Policy, p, o.ID, req.Endpoint); err != nil {
					if p == nil {
						metadata.SetResponse(ctx, metadata.Challenge, Challenge(o.Realm, nil))
						if note != "" {
							e := errors.FromError(err)
							return nil, errors.Unauthorized(e.ID, "%s (%s)", e.Detail, note)
						}
					}
					return nil, err
				}
			}
			if p != nil {
				ctx = NewContext(ctx, p)
			}
			return next(ctx, req)
		}
	}
}

// authenticate establishes the caller. It returns a nil principal for an
// anonymous call, with a note when an identity header was dropped.
func (o *ServerOptions) authenticate(ctx context.Context, req *server.Request) (*Principal, string, error) {
	internal := req.Header[metadata.Principal]
	note := stripIdentityHeaders(req.Header)
	if internal != "" {
		if o.Internal == nil {
			note = "the " + metadata.Principal + " header was ignored: this service accepts no forwarded principals"
		} else {
			p, err := o.Internal.Verify(ctx, internal)
			if err != nil {
				return nil, "", prefixed("the "+metadata.Principal+" header", err)
			}
			return p, "", nil
		}
	}
	if h := req.Header[metadata.Auth]; h != "" && o.Tokens != nil {
		tok, ok := ParseBearer(h)
		if !ok {
			return nil, "", fmt.Errorf("%w: the Authorization header is not \"Bearer <token>\"", ErrInvalidToken)
		}
		p, err := o.Tokens.Verify(ctx, tok)
		if err != nil {
			return nil, "", err
		}
		return p, note, nil
	}
	if p, ok := PeerPrincipal(ctx); ok {
		return p, note, nil
	}
	return nil, note, nil
}

// stripIdentityHeaders removes every header that claims an identity without
// proof (metadata.Principal, Micro-User, Micro-Roles, ...) from h, which is also
// the call's incoming metadata. It describes what it removed besides the
// internal token, for the error a guard may return.
func stripIdentityHeaders(h map[string]string) string {
	var dropped []string
	for k := range h {
		if k == metadata.Principal {
			delete(h, k)
			continue
		}
		if identityHeader(k) {
			dropped = append(dropped, k)
			delete(h, k)
		}
	}
	if len(dropped) == 0 {
		return ""
	}
	return "identity headers are never trusted and were ignored: " + strings.Join(dropped, ", ")
}

// identityHeader reports whether a Micro-* header name looks like it asserts
// who the caller is.
func identityHeader(name string) bool {
	rest, ok := strings.CutPrefix(name, metadata.Prefix)
	if !ok {
		return false
	}
	for _, p := range []string{"Principal", "User", "Subject", "Identity", "Role", "Scope", "Auth", "Claims"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// bearer extracts the token of an "Authorization: Bearer <token>" value.
// ParseBearer returns the token of an Authorization header value
// "Bearer <token>" (the scheme in any letter case); false for anything else.
func ParseBearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// prefixedError keeps err's chain and says which credential failed.
type prefixedError struct {
	what string
	err  error
}

func (e *prefixedError) Error() string { return e.what + ": " + e.err.Error() }
func (e *prefixedError) Unwrap() error { return e.err }

func prefixed(what string, err error) error { return &prefixedError{what: what, err: err} }
