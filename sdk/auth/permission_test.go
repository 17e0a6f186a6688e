package auth_test

import (
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
)

func TestPermissionGrants(t *testing.T) {
	cases := []struct {
		held, want string
		ok         bool
	}{
		{"orders:read", "orders:read", true},
		{"orders:read", "orders:write", false},
		{"orders:*", "orders:delete", true},
		{"orders:*", "billing:read", false},
		{"*:read", "billing:read", true},
		{"*", "anything:at:all", true},
		{"orders:read", "orders:read:own", true},
		{"orders:read:own", "orders:read:own", true},
		{"orders:read:own", "orders:read", false},
		{"orders:read:own", "orders:read:team", false},
		{"orders:read:*", "orders:read:team", true},
		{"orders:read", "orders:*", false},
	}
	for _, tc := range cases {
		held, err := auth.ParsePermission(tc.held)
		if err != nil {
			t.Fatal(err)
		}
		want, err := auth.ParsePermission(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := held.Grants(want); got != tc.ok {
			t.Errorf("%s grants %s = %v, want %v", tc.held, tc.want, got, tc.ok)
		}
	}
	for _, bad := range []string{"", "orders", "orders:", ":read", "a:b:c:d", "orders: read"} {
		if _, err := auth.ParsePermission(bad); err == nil {
			t.Errorf("ParsePermission(%q) accepted it", bad)
		}
	}
}

// TestConfigErrors checks each unusable setting is refused with a message
// naming the problem and what to do.
func TestConfigErrors(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"short secret", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: "short"}}}}, "use at least 32 random bytes"},
		{"HS256 on an RSA key", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{PEM: publicPEM(t, &k.rsa.PublicKey), Algorithms: []string{"HS256"}}}}}, `"HS256" cannot be used with a RSA key`},
		{"none", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: testSecret, Algorithms: []string{"none"}}}}}, `"none" cannot be used`},
		{"private key", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{PEM: privatePEM(t, k.ec256)}}}}, "give verifiers the public key only"},
		{"two sources", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: testSecret, File: "/x.pem"}}}}, "set exactly one of"},
		{"unreadable file", auth.Config{JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{File: "/nonexistent/key.pem"}}}}, "/nonexistent/key.pem"},
		{"no keys", auth.Config{JWT: &auth.JWTConfig{}}, "at least one key or a jwks url"},
		{"bad permission", auth.Config{RBAC: auth.RBACConfig{Roles: map[string][]string{"r": {"orders"}}}}, "want resource:action"},
		{"bad match", auth.Config{RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "*", Match: "some"}}}}, `want "any" or "all"`},
		{"public with roles", auth.Config{RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "*", Public: true, Roles: []string{"a"}}}}}, "cannot require roles"},
		{"guard matching nothing", auth.Config{RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "Orders", Roles: []string{"a"}}}}}, `"Handler.Method"`},
		{"client certificates required without a certificate", auth.Config{TLS: &tlsconfig.Files{CAFile: "/ca.crt", RequireClientCert: true}}, "cert_file and key_file"},
	} {
		_, err := auth.New(t.Context(), tc.cfg, "orders")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestBindingsOnlyForCertificates checks a binding grants its roles to the
// certificate identity it names, never to a token whose sub is the same name.
func TestBindingsOnlyForCertificates(t *testing.T) {
	p, err := auth.NewPolicy(auth.RBACConfig{
		Roles:    map[string][]string{"reader": {"orders:read"}},
		Bindings: map[string][]string{"spiffe://prod/billing": {"reader"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	read, _ := auth.ParsePermission("orders:read")
	cert := &auth.Principal{Subject: "spiffe://prod/billing", Source: auth.SourceMTLS}
	token := &auth.Principal{Subject: "spiffe://prod/billing", Source: auth.SourceJWT}
	if !p.HasRole(cert, "reader") || !p.Granted(cert, read) {
		t.Error("the bound certificate identity lacks its role")
	}
	if p.HasRole(token, "reader") || p.Granted(token, read) || len(p.Roles(token)) != 0 {
		t.Error("a token whose sub names a bound identity got the binding's role")
	}
}

// TestGuardEndpointChecked checks a guard naming no endpoint shape is refused:
// one that matched nothing would leave the endpoint it meant open.
func TestGuardEndpointChecked(t *testing.T) {
	for _, e := range []string{"", "Orders", "orders.get.now", "Orders.", ".Get", "Orders.G-et"} {
		if _, err := auth.NewGuard(auth.GuardConfig{Endpoint: e, Roles: []string{"admin"}}); err == nil || !strings.Contains(err.Error(), `"Handler.Method"`) {
			t.Errorf("NewGuard(%q) = %v; want a refusal naming the accepted shapes", e, err)
		}
	}
	for _, e := range []string{"*", "Orders.*", "Orders.Get"} {
		if _, err := auth.NewGuard(auth.GuardConfig{Endpoint: e, Roles: []string{"admin"}}); err != nil {
			t.Errorf("NewGuard(%q): %v", e, err)
		}
	}
}
