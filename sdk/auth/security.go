package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/transport"
)

// Security is a Config made real for one service (or the gateway): its
// verifiers, signer, policy, guards and TLS files, checked and loaded. Close
// stops its background work.
type Security struct {
	name        string
	realm       string
	tokens      *Verifier
	internal    *Verifier
	internalCfg *InternalConfig // to verify internal tokens addressed to other services
	signer      *Signer
	policy      *Policy
	guards      Guards
	tls         *tlsconfig.Reloader

	mu     sync.Mutex
	others []*Verifier // internal verifiers ServerMiddlewareFor built, closed by Close
}

// SecurityOption tunes New.
type SecurityOption func(*securityOptions)

type securityOptions struct {
	verifier []VerifierOption
	tls      []tlsconfig.Option
}

// WithVerifierOptions passes options to the bearer token verifier.
func WithVerifierOptions(opts ...VerifierOption) SecurityOption {
	return func(o *securityOptions) { o.verifier = append(o.verifier, opts...) }
}

// WithTLSOptions passes options to the TLS file reloader.
func WithTLSOptions(opts ...tlsconfig.Option) SecurityOption {
	return func(o *securityOptions) { o.tls = append(o.tls, opts...) }
}

// New validates cfg for the service called name and loads everything it
// names: keys, the JWKS, certificates. Any unreadable or invalid part is an
// error that says which, so a bad config stops start-up.
func New(ctx context.Context, cfg Config, name string, opts ...SecurityOption) (*Security, error) {
	var o securityOptions
	for _, opt := range opts {
		opt(&o)
	}
	s := &Security{name: name, realm: cfg.Realm}
	if s.realm == "" {
		s.realm = DefaultRealm
	}
	var err error
	if s.policy, err = NewPolicy(cfg.RBAC); err != nil {
		return nil, err
	}
	if s.guards, err = NewGuards(cfg.RBAC.Guards); err != nil {
		return nil, err
	}
	if cfg.JWT != nil {
		if s.tokens, err = NewVerifier(ctx, *cfg.JWT, o.verifier...); err != nil {
			return nil, err
		}
	}
	if cfg.Internal != nil {
		s.internalCfg = cfg.Internal
		if len(cfg.Internal.Keys) > 0 {
			if s.internal, err = NewInternalVerifier(*cfg.Internal, name); err != nil {
				return nil, errors.Join(err, s.Close())
			}
		}
		if cfg.Internal.Signing != nil {
			if s.signer, err = NewSigner(*cfg.Internal); err != nil {
				return nil, errors.Join(err, s.Close())
			}
		}
	}
	if cfg.TLS != nil {
		if cfg.TLS.RequireClientCert && (cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "") {
			return nil, errors.Join(errors.New("auth: tls: require_client_cert is for a server, which serves TLS with cert_file and key_file; give both"), s.Close())
		}
		if s.tls, err = tlsconfig.New(*cfg.TLS, o.tls...); err != nil {
			return nil, errors.Join(fmt.Errorf("auth: %w", err), s.Close())
		}
	}
	return s, nil
}

// Close stops the JWKS refresh and the TLS file watch.
func (s *Security) Close() error {
	var errs []error
	s.mu.Lock()
	others := s.others
	s.others = nil
	s.mu.Unlock()
	for _, v := range append([]*Verifier{s.tokens, s.internal}, others...) {
		if v != nil {
			errs = append(errs, v.Close())
		}
	}
	if s.tls != nil {
		errs = append(errs, s.tls.Close())
	}
	return errors.Join(errs...)
}

// ServerMiddleware authenticates calls and applies the guards; see
// ServerMiddleware.
func (s *Security) ServerMiddleware() server.Middleware {
	return ServerMiddleware(ServerOptions{
		ID: s.name, Tokens: s.tokens, Internal: s.internal,
		Policy: s.policy, Guards: s.guards, Realm: s.realm,
	})
}

// ServerMiddlewareFor is ServerMiddleware for the service called name, which
// accepts internal tokens addressed to name: one Security can protect every
// service a host runs.
func (s *Security) ServerMiddlewareFor(name string) (server.Middleware, error) {
	internal := s.internal
	if name != s.name && s.internalCfg != nil && len(s.internalCfg.Keys) > 0 {
		v, err := NewInternalVerifier(*s.internalCfg, name)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.others = append(s.others, v)
		s.mu.Unlock()
		internal = v
	}
	return ServerMiddleware(ServerOptions{
		ID: name, Tokens: s.tokens, Internal: internal,
		Policy: s.policy, Guards: s.guards, Realm: s.realm,
	}), nil
}

// ClientMiddleware forwards the principal being served to called services when
// a signing key is configured; it is empty otherwise.
func (s *Security) ClientMiddleware() []client.Middleware {
	if s.signer == nil {
		return nil
	}
	return []client.Middleware{ForwardPrincipal(s.signer)}
}

// HTTPOptions makes the built-in http transport serve and dial TLS with the
// configured files (mutual TLS when client certificates are required); empty
// without TLS. Without a certificate (a CA only) it configures dialing alone:
// that is a caller's setting, and a server built with it serves plain HTTP.
func (s *Security) HTTPOptions() []transport.HTTPOption {
	if s.tls == nil {
		return nil
	}
	opts := []transport.HTTPOption{transport.ClientTLS(s.tls.ClientConfig())}
	if srv, err := s.tls.ServerConfig(); err == nil { // fails only without a certificate
		opts = append(opts, transport.ServerTLS(srv))
	}
	return opts
}

// Verifier returns the bearer token verifier (nil when JWT is off).
func (s *Security) Verifier() *Verifier { return s.tokens }

// Signer returns the internal token signer (nil without a signing key).
func (s *Security) Signer() *Signer { return s.signer }

// Policy returns the role to permission map.
func (s *Security) Policy() *Policy { return s.policy }

// Guards returns the endpoint guards in order.
func (s *Security) Guards() Guards { return s.guards }

// TLS returns the TLS file reloader (nil without TLS).
func (s *Security) TLS() *tlsconfig.Reloader { return s.tls }
