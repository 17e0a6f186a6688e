package auth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/auth"
)

// joseSpec is one token for scripts/jose-mint/mint.mjs to sign.
type joseSpec struct {
	Alg    string         `json:"alg"`
	Kid    string         `json:"kid,omitempty"`
	Key    string         `json:"key"`
	Claims map[string]any `json:"claims"`
}

// mintWithJose signs specs with the npm package jose run by node, installing
// the pinned version into the cache first. Only MICRO_TESTENV=off skips it.
func mintWithJose(t *testing.T, specs []joseSpec) []string {
	t.Helper()
	if os.Getenv("MICRO_TESTENV") == "off" {
		fmt.Fprintln(os.Stderr, "SKIP: MICRO_TESTENV=off: tokens minted by npm jose are not tested")
		t.Skip("MICRO_TESTENV=off: tokens minted by npm jose are not tested (needs node and npm)")
	}
	scripts, err := filepath.Abs("../../scripts/jose-mint")
	if err != nil {
		t.Fatal(err)
	}
	install := exec.Command("bash", filepath.Join(scripts, "install"))
	var stderr bytes.Buffer
	install.Stderr = &stderr
	dir, err := install.Output()
	if err != nil {
		t.Fatalf("installing npm jose: %v\n%s", err, stderr.String())
	}
	in, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	mint := exec.Command("node", filepath.Join(scripts, "mint.mjs"))
	mint.Env = append(os.Environ(), "MICRO_JOSE_DIR="+strings.TrimSpace(string(dir)))
	mint.Stdin = bytes.NewReader(in)
	stderr.Reset()
	mint.Stderr = &stderr
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("minting with npm jose: %v\n%s", err, stderr.String())
	}
	var tokens []string
	if err := json.Unmarshal(out, &tokens); err != nil || len(tokens) != len(specs) {
		t.Fatalf("mint.mjs printed %q: %v", out, err)
	}
	return tokens
}

// TestTokensFromNpmJose: tokens signed by another JOSE implementation verify,
// for every supported algorithm, and its expired tokens are refused.
func TestTokensFromNpmJose(t *testing.T) {
	k := testKeys()
	sec := newSecurity(t, auth.Config{JWT: jwtConfig(t), RBAC: testRBAC})
	addr := serve(t, sec.ServerMiddleware())

	now := time.Now()
	good := map[string]any{
		"iss": testIssuer, "aud": []string{"other-audience", testAudience}, "sub": "carol",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": []string{"reader", "admin"}},
		"scope":        "orders.read",
	}
	expired := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "carol", "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}
	specs := []joseSpec{
		{Alg: "RS256", Kid: "rsa-1", Key: privatePEM(t, k.rsa), Claims: good},
		{Alg: "PS256", Kid: "rsa-1", Key: privatePEM(t, k.rsa), Claims: good},
		{Alg: "ES256", Kid: "ec-256", Key: privatePEM(t, k.ec256), Claims: good},
		{Alg: "ES384", Kid: "ec-384", Key: privatePEM(t, k.ec384), Claims: good},
		{Alg: "EdDSA", Kid: "ed-1", Key: privatePEM(t, k.ed), Claims: good},
		{Alg: "HS256", Kid: "hs-1", Key: testSecret, Claims: good},
		{Alg: "HS512", Kid: "hs-1", Key: testSecret, Claims: good},
		{Alg: "ES256", Kid: "ec-256", Key: privatePEM(t, k.ec256), Claims: expired},
	}
	tokens := mintWithJose(t, specs)
	for i, tok := range tokens[:len(tokens)-1] {
		t.Run(specs[i].Alg, func(t *testing.T) {
			r := post(t, addr, "Orders.Delete", bearer(tok))
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.err.Detail)
			}
			if r.who.Subject != "carol" || strings.Join(sorted(r.who.Roles), ",") != "admin,reader" {
				t.Errorf("principal %+v", r.who)
			}
		})
	}
	if r := post(t, addr, "Orders.Get", bearer(tokens[len(tokens)-1])); r.status != 401 || !strings.Contains(r.err.Detail, "expired") {
		t.Errorf("expired jose token: %d %q", r.status, r.err.Detail)
	}
}
