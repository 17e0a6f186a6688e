package auth_test

import (
	"context"
	"testing"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/metadata"
)

// BenchmarkVerify measures verifying one token with its key already loaded.
func BenchmarkVerify(b *testing.B) {
	k := testKeys()
	v, err := auth.NewVerifier(context.Background(), *jwtConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	for _, tc := range []struct {
		alg, kid string
		key      any
	}{
		{"HS256", "hs-1", []byte(testSecret)},
		{"ES256", "ec-256", k.ec256},
		{"RS256", "rsa-1", k.rsa},
		{"EdDSA", "ed-1", k.ed},
	} {
		tok := mint(b, tc.alg, tc.key, tc.kid, claims("alice", "realm_access", roles("reader")))
		b.Run(tc.alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRPC compares a call through the auth middleware (a bearer token
// signed with ES256 or HS256, a guard with a permission check) with the same
// call without auth.
func BenchmarkRPC(b *testing.B) {
	k := testKeys()
	sec := newSecurity(b, auth.Config{JWT: jwtConfig(b), RBAC: testRBAC})
	es := mint(b, "ES256", k.ec256, "ec-256", claims("alice", "realm_access", roles("reader")))
	hs := mint(b, "HS256", []byte(testSecret), "hs-1", claims("alice", "realm_access", roles("reader")))
	for _, tc := range []struct {
		name string
		mw   bool
		tok  string
	}{{"no-auth", false, es}, {"auth-ES256", true, es}, {"auth-HS256", true, hs}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serve(b, nil)
			if tc.mw {
				addr = serve(b, sec.ServerMiddleware())
			}
			c := client.New(client.Retries(0))
			b.Cleanup(func() { c.Close() })
			ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{metadata.Auth: "Bearer " + tc.tok})
			var out WhoResp
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Call(ctx, "orders", "Orders.Get", &WhoReq{}, &out, client.WithAddress(addr)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
