package auth_test

import (
	"testing"

	"github.com/microhost/micro/sdk/auth"
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

func TestConfigErrors(t *testing.T) {
	k := testKeys()
	cases := map[string]auth.Config{
		"short secret":        {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: "short"}}}},
		"HS256 on an RSA key": {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{PEM: publicPEM(t, &k.rsa.PublicKey), Algorithms: []string{"HS256"}}}}},
		"none":                {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: testSecret, Algorithms: []string{"none"}}}}},
		"private key":         {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{PEM: privatePEM(t, k.ec256)}}}},
		"two sources":         {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{Secret: testSecret, File: "/x.pem"}}}},
		"unreadable file":     {JWT: &auth.JWTConfig{Keys: []auth.KeyConfig{{File: "/nonexistent/key.pem"}}}},
		"no keys":             {JWT: &auth.JWTConfig{}},
		"bad permission":      {RBAC: auth.RBACConfig{Roles: map[string][]string{"r": {"orders"}}}},
		"bad match":           {RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "*", Match: "some"}}}},
		"public with roles":   {RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "*", Public: true, Roles: []string{"a"}}}}},
	}
	for name, cfg := range cases {
		if _, err := auth.New(t.Context(), cfg, "orders"); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
