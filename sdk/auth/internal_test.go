package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/errors"
)

const internalSecret = "internal-secret-internal-secret-internal"

// TestInternalTokenForwardsThePrincipal: an upstream that authenticated a user
// forwards the principal to a backend in a signed internal token; the backend
// believes it only because it verifies the signature and its own name as aud.
func TestInternalTokenForwardsThePrincipal(t *testing.T) {
	backend := newSecurity(t, auth.Config{
		Internal: &auth.InternalConfig{Keys: []auth.KeyConfig{{Secret: internalSecret}}},
		RBAC:     testRBAC,
	})
	addr := serve(t, backend.ServerMiddleware())

	upstream := newSecurity(t, auth.Config{Internal: &auth.InternalConfig{Signing: &auth.SigningKeyConfig{Secret: internalSecret}}})
	c := client.New(client.WithMiddleware(upstream.ClientMiddleware()...), client.Retries(0))
	t.Cleanup(func() { c.Close() })

	user := &auth.Principal{Subject: "alice", Roles: []string{"reader"}, Scopes: []string{"profile"}, Source: auth.SourceJWT,
		Claims: map[string]any{"email": "alice@example.test"}}
	ctx := auth.NewContext(context.Background(), user)
	var out WhoResp
	if err := c.Call(ctx, "orders", "Orders.Get", &WhoReq{}, &out, client.WithAddress(addr)); err != nil {
		t.Fatal(err)
	}
	if out.Subject != "alice" || out.Source != auth.SourceJWT || strings.Join(out.Roles, ",") != "reader" || strings.Join(out.Scopes, ",") != "profile" {
		t.Errorf("backend saw %+v", out)
	}
	if _, ok := out.Headers["Micro-Principal"]; ok {
		t.Error("the internal token reached the handler's metadata")
	}
	// The forwarded roles still go through the backend's guards.
	if err := c.Call(ctx, "orders", "Orders.Delete", &WhoReq{}, &out, client.WithAddress(addr)); errors.Code(err) != 403 {
		t.Errorf("Delete: %v, want 403", err)
	}
	// Without a principal in the context nothing is forwarded.
	if err := c.Call(context.Background(), "orders", "Orders.Get", &WhoReq{}, &out, client.WithAddress(addr)); errors.Code(err) != 401 {
		t.Errorf("anonymous: %v, want 401", err)
	}

	// A token for another service, or from another key, is refused.
	signer := upstream.Signer()
	forOther, err := signer.Sign(user, "billing")
	if err != nil {
		t.Fatal(err)
	}
	evil := newSecurity(t, auth.Config{Internal: &auth.InternalConfig{Signing: &auth.SigningKeyConfig{Secret: strings.Repeat("x", 40)}}})
	forged, err := evil.Signer().Sign(&auth.Principal{Subject: "root", Roles: []string{"admin"}, Source: auth.SourceJWT}, "orders")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ token, want string }{
		"addressed to another service": {forOther, "audience not accepted"},
		"signed with another key":      {forged, "signature is invalid"},
	} {
		r := post(t, addr, "Orders.Get", map[string]string{"Micro-Principal": tc.token})
		if r.status != http.StatusUnauthorized || !strings.Contains(r.err.Detail, tc.want) || !strings.Contains(r.err.Detail, "Micro-Principal") {
			t.Errorf("%s: %d %q, want 401 saying %q", name, r.status, r.err.Detail, tc.want)
		}
	}
}

func TestInternalSigningKeys(t *testing.T) {
	k := testKeys()
	cases := []struct {
		name string
		sign auth.SigningKeyConfig
		key  auth.KeyConfig
	}{
		{"ES256", auth.SigningKeyConfig{ID: "gw-1", PEM: privatePEM(t, k.ec256)}, auth.KeyConfig{ID: "gw-1", PEM: publicPEM(t, &k.ec256.PublicKey)}},
		{"EdDSA", auth.SigningKeyConfig{PEM: privatePEM(t, k.ed)}, auth.KeyConfig{PEM: publicPEM(t, k.ed.Public())}},
		{"PS256", auth.SigningKeyConfig{PEM: privatePEM(t, k.rsa)}, auth.KeyConfig{PEM: publicPEM(t, &k.rsa.PublicKey), Algorithms: []string{"PS256"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := auth.NewSigner(auth.InternalConfig{Signing: &tc.sign})
			if err != nil {
				t.Fatal(err)
			}
			v, err := auth.NewInternalVerifier(auth.InternalConfig{Keys: []auth.KeyConfig{tc.key}}, "orders")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { v.Close() })
			tok, err := s.Sign(&auth.Principal{Subject: "svc", Source: auth.SourceMTLS}, "orders")
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != "svc" || p.Source != auth.SourceMTLS {
				t.Errorf("principal %+v", p)
			}
		})
	}
}
