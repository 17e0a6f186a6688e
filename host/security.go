package host

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
	"github.com/microhost/micro/sdk/transport"
)

// securityName is the name the host's shared auth.Security is built under: the
// gateway's, as it is the one upstream that authenticates callers itself.
const securityName = "gateway"

// security is the config's security block made real for this host: one
// auth.Security whose TLS reloader serves the transport and whose token
// verifier, signer and guards the gateway and every service share (each
// service accepting the internal tokens addressed to it by name).
type security struct {
	cfg *config.Security
	sec *auth.Security
}

// newSecurity loads the security block: every key and certificate file first
// (each bad one reported at its position), then the JWKS. Nil without a
// security block.
func newSecurity(ctx context.Context, cfg *config.Security, log hclog.Logger) (*security, error) {
	if cfg == nil {
		return nil, nil
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	sec, err := auth.New(ctx, cfg.Config, securityName,
		auth.WithVerifierOptions(auth.Logger(log.Named("auth").Warn)),
		auth.WithTLSOptions(tlsconfig.Logger(log.Named("tls").Info)))
	if err != nil {
		at := cfg.Range
		if cfg.JWT != nil && cfg.JWT.JWKS != nil {
			at = cfg.JWKSRange
		}
		return nil, fmt.Errorf("%s: security: %w", rangeString(at), err)
	}
	return &security{cfg: cfg, sec: sec}, nil
}

// httpOptions make the built-in http transport serve and dial TLS with the
// reloading certificates; none without a tls block.
func (s *security) httpOptions() []transport.HTTPOption {
	if s == nil {
		return nil
	}
	return s.sec.HTTPOptions()
}

// serviceOptions protect the service called name: its server authenticates
// every call (internal token, bearer token or client certificate) and applies
// the guards, and its client forwards the caller being served as an internal
// token when a signing key is configured.
func (s *security) serviceOptions(name string) ([]service.Option, error) {
	if s == nil {
		return nil, nil
	}
	mw, err := s.sec.ServerMiddlewareFor(name)
	if err != nil {
		return nil, fmt.Errorf("%s: service %s: %w", rangeString(s.cfg.Range), name, err)
	}
	opts := []service.Option{service.ServerOptions(server.WithMiddleware(mw))}
	if co := s.clientOptions(); len(co) > 0 {
		opts = append(opts, service.ClientOptions(co...))
	}
	return opts, nil
}

// clientOptions make a client forward the caller being served to the services
// it calls, as an internal token, when a signing key is configured.
func (s *security) clientOptions() []client.Option {
	if s == nil {
		return nil
	}
	if cm := s.sec.ClientMiddleware(); len(cm) > 0 {
		return []client.Option{client.WithMiddleware(cm...)}
	}
	return nil
}

// gatewayOption lets the gateway authenticate callers of routes that need it
// and forward them to backends as internal tokens.
func (s *security) gatewayOption() gateway.Option {
	a := gateway.AuthOptions{Policy: s.sec.Policy(), Realm: s.cfg.Realm}
	// Typed nils would make non-nil interfaces.
	if v := s.sec.Verifier(); v != nil {
		a.Verifier = v
	}
	if sg := s.sec.Signer(); sg != nil {
		a.Signer = sg
	}
	return gateway.Auth(a)
}

// close stops the JWKS refresh and the certificate watch.
func (s *security) close() error {
	if s == nil {
		return nil
	}
	return s.sec.Close()
}
