package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/microhost/micro/sdk/auth"
)

// keyServer serves a JSON Web Key Set that tests can rotate, counting fetches.
type keyServer struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
	url     string
}

func newKeyServer(t *testing.T, keys ...jose.JSONWebKey) *keyServer {
	ks := &keyServer{keys: keys}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks.keys})
		ks.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	ks.url = srv.URL + "/.well-known/jwks.json"
	return ks
}

func (ks *keyServer) rotate(keys ...jose.JSONWebKey) {
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

func jwk(pub any, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

func jwksVerifier(t *testing.T, c auth.JWKSConfig) *auth.Verifier {
	v, err := auth.NewVerifier(context.Background(), auth.JWTConfig{Issuer: testIssuer, Audience: []string{testAudience}, JWKS: &c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func TestJWKSRotationOverTheWire(t *testing.T) {
	k := testKeys()
	ks := newKeyServer(t, jwk(&k.ec256.PublicKey, "k1", "ES256"))
	sec := newSecurity(t, auth.Config{
		JWT:  &auth.JWTConfig{Issuer: testIssuer, Audience: []string{testAudience}, JWKS: &auth.JWKSConfig{URL: ks.url, MinRefreshInterval: time.Nanosecond}},
		RBAC: auth.RBACConfig{Guards: []auth.GuardConfig{{Endpoint: "*"}}},
	})
	addr := serve(t, sec.ServerMiddleware())

	if r := post(t, addr, "Orders.Get", bearer(mint(t, "ES256", k.ec256, "k1", claims("alice")))); r.status != 200 {
		t.Fatalf("k1: %d %s", r.status, r.err.Detail)
	}
	// The issuer rotates to an RSA key under a new kid: the first token naming
	// it makes the verifier fetch the set again.
	ks.rotate(jwk(&k.rsa.PublicKey, "k2", "RS256"))
	if r := post(t, addr, "Orders.Get", bearer(mint(t, "RS256", k.rsa, "k2", claims("alice")))); r.status != 200 {
		t.Fatalf("k2 after rotation: %d %s", r.status, r.err.Detail)
	}
	// The retired key is gone; the new key allows only its published alg.
	for name, tc := range map[string]struct{ token, want string }{
		"retired kid":        {mint(t, "ES256", k.ec256, "k1", claims("alice")), `unknown kid "k1"`},
		"alg beside the JWK": {mint(t, "PS256", k.rsa, "k2", claims("alice")), `no key for kid "k2" allows alg PS256`},
		"HS256 with the JWK": {mint(t, "HS256", []byte(publicPEM(t, &k.rsa.PublicKey)), "k2", claims("alice")), `allows alg HS256`},
	} {
		r := post(t, addr, "Orders.Get", bearer(tc.token))
		if r.status != 401 || !strings.Contains(r.err.Detail, tc.want) {
			t.Errorf("%s: %d %q, want 401 saying %q", name, r.status, r.err.Detail, tc.want)
		}
	}
}

func TestJWKSUnknownKidRefreshIsRateLimited(t *testing.T) {
	k := testKeys()
	ks := newKeyServer(t, jwk(&k.ec256.PublicKey, "k1", ""))
	v := jwksVerifier(t, auth.JWKSConfig{URL: ks.url, MinRefreshInterval: time.Hour, RefreshInterval: time.Hour})
	ks.rotate(jwk(&k.ec256.PublicKey, "k1", ""), jwk(k.ed.Public(), "k2", ""))
	for i := range 20 {
		tok := mint(t, "ES256", k.ec256, fmt.Sprintf("bogus-%d", i), claims("mallory"))
		if _, err := v.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "unknown kid") {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches; unknown kids within the interval must not fetch again", n)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	k := testKeys()
	ks := newKeyServer(t, jwk(&k.ec256.PublicKey, "k1", ""))
	v := jwksVerifier(t, auth.JWKSConfig{URL: ks.url, MinRefreshInterval: time.Hour, RefreshInterval: 10 * time.Millisecond})
	ks.rotate(jwk(k.ed.Public(), "k2", ""))
	tok := mint(t, "EdDSA", k.ed, "k2", claims("alice"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(context.Background(), tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background refresh never picked up k2: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSStartupErrors(t *testing.T) {
	k := testKeys()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	symmetric := newKeyServer(t, jose.JSONWebKey{Key: []byte(testSecret), KeyID: "oct", Algorithm: "HS256"})
	encOnly := newKeyServer(t, jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "enc", Use: "enc"})
	for name, tc := range map[string]struct{ url, want string }{
		"unreachable":    {down.URL, "connection refused"},
		"symmetric keys": {symmetric.url, "no usable signature verification key"},
		"encryption key": {encOnly.url, "no usable signature verification key"},
	} {
		_, err := auth.NewVerifier(context.Background(), auth.JWTConfig{JWKS: &auth.JWKSConfig{URL: tc.url}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
