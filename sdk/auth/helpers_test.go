package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/transport"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "orders"
	testSecret   = "0123456789abcdef0123456789abcdef-hmac"
)

// keySet is one key of every supported type, made once per test binary.
type keySet struct {
	rsa   *rsa.PrivateKey
	ec256 *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *keySet {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return &keySet{rsa: r, ec256: e256, ec384: e384, ed: ed}
})

func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func privatePEM(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// claims returns good claims for sub, changed by the given key/value pairs (a
// nil value deletes the claim).
func claims(sub string, kv ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
			continue
		}
		c[k] = kv[i+1]
	}
	return c
}

// mint signs c with alg and key, naming kid when not empty.
func mint(t testing.TB, alg string, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Orders reports who called it, for the tests to inspect.
type Orders struct{}

type WhoReq struct{}

type WhoResp struct {
	Subject string            `json:"subject"`
	Source  string            `json:"source"`
	Roles   []string          `json:"roles"`
	Scopes  []string          `json:"scopes"`
	Headers map[string]string `json:"headers"` // incoming Micro-* metadata
}

func who(ctx context.Context) *WhoResp {
	out := &WhoResp{Headers: map[string]string{}}
	if p, ok := auth.FromContext(ctx); ok {
		out.Subject, out.Source, out.Roles, out.Scopes = p.Subject, p.Source, p.Roles, p.Scopes
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, v := range md {
		if strings.HasPrefix(k, metadata.Prefix) {
			out.Headers[k] = v
		}
	}
	return out
}

func (Orders) Get(ctx context.Context, _ *WhoReq) (*WhoResp, error)    { return who(ctx), nil }
func (Orders) Delete(ctx context.Context, _ *WhoReq) (*WhoResp, error) { return who(ctx), nil }
func (Orders) Audit(ctx context.Context, _ *WhoReq) (*WhoResp, error)  { return who(ctx), nil }
func (Orders) Public(ctx context.Context, _ *WhoReq) (*WhoResp, error) { return who(ctx), nil }

// testRBAC guards the Orders endpoints.
var testRBAC = auth.RBACConfig{
	Roles: map[string][]string{
		"reader":  {"orders:read"},
		"admin":   {"orders:*"},
		"auditor": {"audit:read"},
	},
	Bindings: map[string][]string{"spiffe://test/billing": {"reader"}},
	Guards: []auth.GuardConfig{
		{Endpoint: "Orders.Public", Public: true},
		{Endpoint: "Orders.Delete", Permissions: []string{"orders:delete"}},
		{Endpoint: "Orders.Audit", Match: "all", Roles: []string{"reader", "auditor"}},
		{Endpoint: "Orders.*", Permissions: []string{"orders:read"}},
	},
}

// serve runs the Orders service behind mw on a free loopback port and returns
// its address.
func serve(t testing.TB, mw server.Middleware, httpOpts ...transport.HTTPOption) string {
	t.Helper()
	var opts []server.Option
	if mw != nil {
		opts = append(opts, server.WithMiddleware(mw))
	}
	srv := server.New("orders", opts...)
	if err := srv.Handle(Orders{}); err != nil {
		t.Fatal(err)
	}
	tr := transport.NewHTTP(httpOpts...)
	ln, err := tr.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ln.Serve(srv) }()
	t.Cleanup(func() {
		ln.Close()
		<-done
		tr.Close()
	})
	return ln.Addr()
}

// newSecurity provisions cfg for the orders service.
func newSecurity(t testing.TB, cfg auth.Config) *auth.Security {
	t.Helper()
	sec, err := auth.New(context.Background(), cfg, "orders")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sec.Close() })
	return sec
}

// result is what a plain HTTP client sees.
type result struct {
	status    int
	challenge string
	who       WhoResp
	err       errors.Error
}

// post calls endpoint at addr the way any HTTP client can, with headers.
func post(t testing.TB, addr, endpoint string, headers map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/"+endpoint, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate")}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r.who); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	} else if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r.err); err != nil {
		t.Fatalf("decoding the error %s: %v", body, err)
	}
	return r
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
