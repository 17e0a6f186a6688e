package auth

import (
	"context"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// TokenSource returns the bearer token for a call, e.g. from a token cache that
// refreshes before expiry.
type TokenSource func(ctx context.Context) (string, error)

// StaticToken always returns token.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// BearerToken is client middleware that sends "Authorization: Bearer <token>"
// from src on every call that does not carry an Authorization header already.
func BearerToken(src TokenSource) client.Middleware {
	return func(next client.Handler) client.Handler {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			if _, set := req.Header[metadata.Auth]; !set {
				tok, err := src(ctx)
				if err != nil {
					return errors.Unauthorized(req.Service, "getting a token for %s: %v", req.Service, err)
				}
				req.Header[metadata.Auth] = "Bearer " + tok
			}
			return next(ctx, req, rsp)
		}
	}
}

// ForwardPrincipal is client middleware that forwards the principal of the
// call being served (from ctx) to the called service as an internal token
// addressed to it, signed by s. Calls made outside a served call send none.
func ForwardPrincipal(s *Signer) client.Middleware {
	return func(next client.Handler) client.Handler {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			if p, ok := FromContext(ctx); ok {
				tok, err := s.Sign(p, req.Service)
				if err != nil {
					return errors.Internal(req.Service, "forwarding the caller to %s: %v", req.Service, err)
				}
				req.Header[metadata.Principal] = tok
			}
			return next(ctx, req, rsp)
		}
	}
}
