package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microhost/micro/sdk/auth"
)

// jwtConfig accepts one key of every type, each under its own kid.
func jwtConfig(t testing.TB) *auth.JWTConfig {
	k := testKeys()
	return &auth.JWTConfig{
		Issuer:     testIssuer,
		Audience:   []string{testAudience, "other-audience"},
		RolesClaim: "realm_access.roles",
		Keys: []auth.KeyConfig{
			{ID: "rsa-1", PEM: publicPEM(t, &k.rsa.PublicKey)},
			{ID: "ec-256", PEM: publicPEM(t, &k.ec256.PublicKey)},
			{ID: "ec-384", PEM: publicPEM(t, &k.ec384.PublicKey)},
			{ID: "ed-1", PEM: publicPEM(t, k.ed.Public())},
			{ID: "hs-1", Secret: testSecret},
		},
	}
}

func roles(r ...string) map[string]any {
	out := make([]any, len(r))
	for i, s := range r {
		out[i] = s
	}
	return map[string]any{"roles": out}
}

func TestGoodTokensPass(t *testing.T) {
	k := testKeys()
	sec := newSecurity(t, auth.Config{JWT: jwtConfig(t), RBAC: testRBAC})
	addr := serve(t, sec.ServerMiddleware())
	cases := []struct {
		alg, kid string
		key      any
	}{
		{"RS256", "rsa-1", k.rsa},
		{"RS512", "rsa-1", k.rsa},
		{"PS256", "rsa-1", k.rsa},
		{"ES256", "ec-256", k.ec256},
		{"ES384", "ec-384", k.ec384},
		{"EdDSA", "ed-1", k.ed},
		{"HS256", "hs-1", []byte(testSecret)},
		{"HS384", "hs-1", []byte(testSecret)},
		{"HS512", "hs-1", []byte(testSecret)},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			tok := mint(t, tc.alg, tc.key, tc.kid, claims("alice", "realm_access", roles("reader"), "scope", "orders.read profile"))
			r := post(t, addr, "Orders.Get", bearer(tok))
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.err.Detail)
			}
			if r.who.Subject != "alice" || r.who.Source != auth.SourceJWT {
				t.Errorf("principal %+v", r.who)
			}
			if strings.Join(r.who.Roles, ",") != "reader" || strings.Join(r.who.Scopes, ",") != "orders.read,profile" {
				t.Errorf("roles %v scopes %v", r.who.Roles, r.who.Scopes)
			}
		})
	}
}

// TestAttacksFail is the table of forged, stale and misdirected credentials:
// each is refused with its status and a message that says why.
func TestAttacksFail(t *testing.T) {
	k := testKeys()
	sec := newSecurity(t, auth.Config{JWT: jwtConfig(t), RBAC: testRBAC})
	addr := serve(t, sec.ServerMiddleware())

	good := mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "realm_access", roles("reader")))
	parts := strings.Split(good, ".")
	forged, _ := json.Marshal(claims("alice", "realm_access", roles("admin")))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	none := mint(t, "none", jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims("alice", "realm_access", roles("admin")))
	rsaPub := []byte(publicPEM(t, &k.rsa.PublicKey))
	hsWithRSA := mint(t, "HS256", rsaPub, "rsa-1", claims("alice", "realm_access", roles("admin")))
	hsWithRSANoKid := mint(t, "HS256", rsaPub, "", claims("alice", "realm_access", roles("admin")))
	attacker := mint(t, "HS256", []byte("attacker-secret-attacker-secret-!!"), "", jwt.MapClaims{"sub": "root", "roles": []string{"admin"}, "src": "jwt"})

	cases := []struct {
		name     string
		endpoint string
		headers  map[string]string
		status   int
		want     string // in the error detail
		invalid  bool   // the challenge carries error="invalid_token"
	}{
		{"no credentials", "Orders.Get", nil, 401, "requires authentication", false},
		{"alg none", "Orders.Get", bearer(none), 401, "signing algorithm not allowed", true},
		{"HS256 signed with the RSA public key", "Orders.Get", bearer(hsWithRSA), 401, `no key for kid "rsa-1" allows alg HS256`, true},
		{"HS256 signed with the RSA public key, no kid", "Orders.Get", bearer(hsWithRSANoKid), 401, "signature is invalid", true},
		{"expired", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "exp", time.Now().Add(-time.Hour).Unix()))), 401, "token has expired", true},
		{"not yet valid", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "nbf", time.Now().Add(time.Hour).Unix()))), 401, "not valid yet", true},
		{"issued in the future", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "iat", time.Now().Add(time.Hour).Unix()))), 401, "issued in the future", true},
		{"no exp", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "exp", nil))), 401, "required claim is missing", true},
		{"wrong aud", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "aud", "billing"))), 401, "audience not accepted", true},
		{"wrong iss", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("alice", "iss", "https://evil.test"))), 401, "issuer not accepted", true},
		{"unknown kid", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-9", claims("alice"))), 401, `unknown kid "rsa-9"`, true},
		{"key of another kid", "Orders.Get", bearer(mint(t, "ES256", k.ec256, "rsa-1", claims("alice"))), 401, `no key for kid "rsa-1" allows alg ES256`, true},
		{"tampered payload", "Orders.Get", bearer(tampered), 401, "signature is invalid", true},
		{"truncated signature", "Orders.Get", bearer(good[:len(good)-12]), 401, "signature is invalid", true},
		{"truncated token", "Orders.Get", bearer(parts[0] + "." + parts[1]), 401, "malformed token", true},
		{"not a bearer", "Orders.Get", map[string]string{"Authorization": "Basic YWxpY2U6cHc="}, 401, `not "Bearer <token>"`, true},
		{"oversized token", "Orders.Get", bearer(strings.Repeat("a", auth.MaxTokenBytes+1)), 401, "byte limit", true},
		{"no sub", "Orders.Get", bearer(mint(t, "RS256", k.rsa, "rsa-1", claims("", "sub", nil))), 401, "no sub claim", true},
		{"fake principal header", "Orders.Get", map[string]string{"Micro-Principal": attacker}, 401, "accepts no forwarded principals", false},
		{"fake identity headers", "Orders.Get", map[string]string{"Micro-User": "root", "Micro-Roles": "admin"}, 401, "identity headers are never trusted", false},
		{"fake role header beside a real token", "Orders.Delete", map[string]string{"Authorization": "Bearer " + good, "Micro-Roles": "admin"}, 403, "needs any of permission orders:delete", false},
		{"bad token on a public endpoint", "Orders.Public", bearer(tampered), 401, "signature is invalid", true},
		{"lacks the permission", "Orders.Delete", bearer(good), 403, `jwt "alice" may not call Orders.Delete`, false},
		{"lacks one of all roles", "Orders.Audit", bearer(good), 403, "all of role reader, auditor", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, addr, tc.endpoint, tc.headers)
			t.Logf("%d %s | %s", r.status, r.err.Detail, r.challenge)
			if r.status != tc.status || int(r.err.Code) != tc.status {
				t.Fatalf("status %d (envelope %d), want %d: %s", r.status, r.err.Code, tc.status, r.err.Detail)
			}
			if !strings.Contains(r.err.Detail, tc.want) {
				t.Errorf("detail %q does not say %q", r.err.Detail, tc.want)
			}
			if tc.status == 401 {
				if !strings.HasPrefix(r.challenge, `Bearer realm="microhost"`) {
					t.Errorf("WWW-Authenticate %q", r.challenge)
				}
				if got := strings.Contains(r.challenge, `error="invalid_token"`); got != tc.invalid {
					t.Errorf("WWW-Authenticate %q: invalid_token %v, want %v", r.challenge, got, tc.invalid)
				}
			} else if r.challenge != "" {
				t.Errorf("a %d carries WWW-Authenticate %q", tc.status, r.challenge)
			}
		})
	}
}

func TestGuards(t *testing.T) {
	k := testKeys()
	sec := newSecurity(t, auth.Config{JWT: jwtConfig(t), RBAC: testRBAC})
	addr := serve(t, sec.ServerMiddleware())
	tok := func(r ...string) map[string]string {
		return bearer(mint(t, "ES256", k.ec256, "ec-256", claims("bob", "realm_access", roles(r...))))
	}
	cases := []struct {
		endpoint string
		headers  map[string]string
		status   int
	}{
		{"Orders.Public", nil, 200},
		{"Orders.Get", tok("reader"), 200},
		{"Orders.Get", tok(), 403},
		{"Orders.Delete", tok("admin"), 200},
		{"Orders.Delete", tok("reader"), 403},
		{"Orders.Audit", tok("reader", "auditor"), 200},
		{"Orders.Audit", tok("auditor"), 403},
	}
	for _, tc := range cases {
		r := post(t, addr, tc.endpoint, tc.headers)
		if r.status != tc.status {
			t.Errorf("%s with %v: status %d, want %d (%s)", tc.endpoint, tc.headers, r.status, tc.status, r.err.Detail)
		}
	}
	// The identity headers never reach the handler, even next to a good token.
	h := tok("reader")
	h["Micro-Roles"] = "admin"
	h["Micro-Principal"] = "forged"
	r := post(t, addr, "Orders.Get", h)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.err.Detail)
	}
	for _, name := range []string{"Micro-Roles", "Micro-Principal"} {
		if v, ok := r.who.Headers[name]; ok {
			t.Errorf("the handler saw %s: %q", name, v)
		}
	}
}
