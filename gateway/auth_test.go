package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
)

const (
	tokenSecret    = "gateway-test-token-secret-0123456789"
	internalSecret = "gateway-test-internal-secret-0123456789"
	tokenIssuer    = "https://login.test"
)

// WhoamiResponse is who the backend believes called it, and the identity
// headers that reached its handler.
type WhoamiResponse struct {
	Subject string   `json:"subject"`
	Source  string   `json:"source"`
	Roles   []string `json:"roles"`
	Leaked  []string `json:"leaked,omitempty"`
}

// Whoami answers with the caller its auth middleware established.
type Whoami struct{}

// Get reports the principal.
func (Whoami) Get(ctx context.Context, _ *struct{}) (*WhoamiResponse, error) {
	out := &WhoamiResponse{}
	if p, ok := auth.FromContext(ctx); ok {
		out.Subject, out.Source, out.Roles = p.Subject, p.Source, p.Roles
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for k := range md {
		if k == metadata.Principal || strings.HasPrefix(k, "Micro-User") || strings.HasPrefix(k, "Micro-Role") {
			out.Leaked = append(out.Leaked, k)
		}
	}
	return out, nil
}

// startWhoami runs the Whoami backend behind auth middleware that believes
// only internal tokens signed with internalSecret and addressed to it.
func startWhoami(t *testing.T, reg registry.Registry) {
	t.Helper()
	internal, err := auth.NewInternalVerifier(auth.InternalConfig{Keys: []auth.KeyConfig{{Secret: internalSecret}}}, "whoami")
	if err != nil {
		t.Fatal(err)
	}
	mw := auth.ServerMiddleware(auth.ServerOptions{ID: "whoami", Internal: internal})
	svc := service.New("whoami", service.Registry(reg), service.HandleSignals(false), service.DrainTimeout(time.Second),
		service.ServerOptions(server.WithMiddleware(mw)))
	if err := svc.Handle(Whoami{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatal(err)
	}
}

// gatewayAuth is what the gateway under test checks callers with: tokens
// with roles under realm_access.roles, forwarded as internal tokens.
func gatewayAuth(t *testing.T) gateway.AuthOptions {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.JWTConfig{
		Issuer: tokenIssuer, RolesClaim: "realm_access.roles",
		Keys: []auth.KeyConfig{{Secret: tokenSecret, Algorithms: []string{"HS256"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	s, err := auth.NewSigner(auth.InternalConfig{Signing: &auth.SigningKeyConfig{Secret: internalSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return gateway.AuthOptions{Verifier: v, Signer: s, Realm: "shop"}
}

// userToken mints a token for sub with roles in a nested claim.
func userToken(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": tokenIssuer, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}).SignedString([]byte(tokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRouteAuth(t *testing.T) {
	reg := registry.NewMemory()
	startWhoami(t, reg)
	startBackend(t, reg, "echo", &Echo{instance: "e"})
	off := false
	route := func(pattern string, a gateway.Access) *gateway.Route {
		return &gateway.Route{Pattern: pattern, Service: "whoami", Endpoint: "Whoami.Get", Access: a}
	}
	cfg := gateway.Config{
		Auth: true,
		Routes: []*gateway.Route{
			route("GET /me", gateway.Access{}),
			route("GET /public", gateway.Access{Auth: &off}),
			route("GET /staff", gateway.Access{RequiredRoles: []string{"admin", "ops"}}),
			route("GET /root", gateway.Access{RequiredRoles: []string{"admin", "ops"}, RolesMatch: gateway.RolesAll}),
			{Pattern: "GET /echo", Service: "echo", Endpoint: "Echo.Say", Access: gateway.Access{Auth: &off}},
		},
		Aggregates: []*gateway.Aggregate{{Pattern: "GET /both", Access: gateway.Access{RequiredRoles: []string{"ops"}},
			Parts: []*gateway.Part{{Name: "me", Service: "whoami", Endpoint: "Whoami.Get"}}}},
	}
	a := gatewayAuth(t)
	_, base := startGateway(t, cfg, reg, gateway.Auth(a))

	// A client cannot claim an identity with headers, not even with a genuine
	// internal token it got hold of: the gateway never forwards them.
	stolen, err := a.Signer.Sign(&auth.Principal{Subject: "mallory", Roles: []string{"admin"}, Source: auth.SourceJWT}, "whoami")
	if err != nil {
		t.Fatal(err)
	}
	fake := []string{metadata.Principal + ": " + stolen, "Micro-User: root", "Micro-Roles: admin"}
	bearer := func(tok string) string { return "Authorization: Bearer " + tok }

	tests := []struct {
		name    string
		path    string
		header  []string
		status  int
		subject string // the backend's principal on success
		realm   string // a WWW-Authenticate challenge is expected
	}{
		{name: "no token", path: "/me", status: 401, realm: `Bearer realm="shop"`},
		{name: "fake identity headers only", path: "/me", header: fake, status: 401, realm: `Bearer realm="shop"`},
		{name: "bad token", path: "/me", header: []string{bearer("not.a.token")}, status: 401, realm: `error="invalid_token"`},
		{name: "not bearer", path: "/me", header: []string{"Authorization: Basic YTpi"}, status: 401, realm: `error="invalid_token"`},
		{name: "token of another key", path: "/me", header: []string{bearer(forged(t))}, status: 401, realm: `error="invalid_token"`},
		{name: "good token", path: "/me", header: []string{bearer(userToken(t, "alice"))}, status: 200, subject: "alice"},
		{name: "good token beats fake headers", path: "/me", header: append([]string{bearer(userToken(t, "alice"))}, fake...), status: 200, subject: "alice"},
		{name: "public route", path: "/public", header: fake, status: 200, subject: ""},
		{name: "any: no token is 401 before roles", path: "/staff", status: 401, realm: `Bearer realm="shop"`},
		{name: "any: no roles", path: "/staff", header: []string{bearer(userToken(t, "bob"))}, status: 403},
		{name: "any: one role", path: "/staff", header: []string{bearer(userToken(t, "bob", "ops"))}, status: 200, subject: "bob"},
		{name: "all: one of two", path: "/root", header: []string{bearer(userToken(t, "bob", "ops"))}, status: 403},
		{name: "all: both", path: "/root", header: []string{bearer(userToken(t, "carol", "ops", "admin"))}, status: 200, subject: "carol"},
		{name: "aggregate: no token", path: "/both", status: 401, realm: `Bearer realm="shop"`},
		{name: "aggregate: role missing", path: "/both", header: []string{bearer(userToken(t, "bob", "admin"))}, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, http.MethodGet, base+tt.path, "", tt.header...)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			challenge := resp.header.Get("WWW-Authenticate")
			if tt.realm != "" && !strings.Contains(challenge, tt.realm) {
				t.Errorf("WWW-Authenticate %q, want it to contain %s", challenge, tt.realm)
			}
			if tt.realm == "" && challenge != "" {
				t.Errorf("unexpected WWW-Authenticate %q", challenge)
			}
			if tt.status != 200 {
				if p := resp.problem(t); p.Status != tt.status || p.ID != "gateway" {
					t.Errorf("problem %+v", p)
				}
				return
			}
			var who WhoamiResponse
			resp.json(t, &who)
			if who.Subject != tt.subject || len(who.Leaked) > 0 {
				t.Errorf("backend saw %+v, want subject %q and no identity headers", who, tt.subject)
			}
			if tt.subject != "" && who.Source != auth.SourceJWT {
				t.Errorf("source %q, want %q", who.Source, auth.SourceJWT)
			}
		})
	}

	t.Run("aggregate forwards the caller", func(t *testing.T) {
		resp := do(t, http.MethodGet, base+"/both", "", bearer(userToken(t, "dave", "ops")))
		var out struct{ Me WhoamiResponse }
		resp.json(t, &out)
		if resp.status != 200 || out.Me.Subject != "dave" || strings.Join(out.Me.Roles, ",") != "ops" {
			t.Errorf("status %d, %+v", resp.status, out)
		}
	})
	t.Run("backend without middleware sees no principal header", func(t *testing.T) {
		resp := do(t, http.MethodGet, base+"/echo", "", fake...)
		var out EchoResponse
		resp.json(t, &out)
		for k := range out.Header {
			if k == metadata.Principal || strings.HasPrefix(k, "Micro-User") || strings.HasPrefix(k, "Micro-Role") {
				t.Errorf("client header %s reached the backend", k)
			}
		}
	})
}

// forged is a well-formed token signed with a key the gateway does not trust.
func forged(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": tokenIssuer, "sub": "mallory", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": []string{"admin", "ops"}},
	}).SignedString([]byte("another-secret-another-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRouteAuthConfig(t *testing.T) {
	reg := registry.NewMemory()
	off := false
	r := func(a gateway.Access) gateway.Config {
		return gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /x", Service: "s", Endpoint: "S.M", Access: a}}}
	}
	bad := []struct {
		name string
		cfg  gateway.Config
		want string
	}{
		{"roles_match", r(gateway.Access{RequiredRoles: []string{"a"}, RolesMatch: "some"}), `route[0].roles_match: expected "any" or "all", got "some"`},
		{"empty role", r(gateway.Access{RequiredRoles: []string{" "}}), "route[0].required_roles: expected role names"},
		{"roles without auth", r(gateway.Access{Auth: &off, RequiredRoles: []string{"a"}}), "route[0].required_roles: roles need an authenticated caller"},
	}
	for _, tt := range bad {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Auth without a verifier cannot be served.
	for _, cfg := range []gateway.Config{r(gateway.Access{RequiredRoles: []string{"a"}}), {Auth: true, Routes: r(gateway.Access{}).Routes}} {
		if _, err := gateway.New(cfg, gateway.Registry(reg)); err == nil || !strings.Contains(err.Error(), "no token verifier") {
			t.Errorf("New without a verifier: %v", err)
		}
	}
	// Routes that need nobody's identity need no verifier.
	g, err := gateway.New(gateway.Config{Auth: true, Routes: r(gateway.Access{Auth: &off}).Routes}, gateway.Registry(reg))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

// TestOpenAPIDocumentsAuth checks the document says which operations need a
// bearer token and what a caller without one, or without the roles, gets.
func TestOpenAPIDocumentsAuth(t *testing.T) {
	reg := registry.NewMemory()
	startWhoami(t, reg)
	off := false
	cfg := gateway.Config{
		Auth: true,
		Routes: []*gateway.Route{
			{Pattern: "GET /me", Service: "whoami", Endpoint: "Whoami.Get"},
			{Pattern: "GET /public", Service: "whoami", Endpoint: "Whoami.Get", Access: gateway.Access{Auth: &off}},
			{Pattern: "GET /root", Service: "whoami", Endpoint: "Whoami.Get", Access: gateway.Access{RequiredRoles: []string{"admin", "ops"}, RolesMatch: gateway.RolesAll}},
		},
	}
	_, base := startGateway(t, cfg, reg, gateway.Auth(gatewayAuth(t)))
	r := do(t, "GET", base+"/api/docs/openapi.json", "")
	validateOpenAPI(t, r.body)
	var doc struct {
		Paths map[string]map[string]struct {
			Security  []map[string][]string     `json:"security"`
			Responses map[string]map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]map[string]string `json:"securitySchemes"`
		} `json:"components"`
	}
	r.json(t, &doc)
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s["type"] != "http" || s["scheme"] != "bearer" {
		t.Errorf("securitySchemes: %v", doc.Components.SecuritySchemes)
	}
	for _, tc := range []struct {
		path          string
		secured, r403 bool
	}{{"/me", true, false}, {"/public", false, false}, {"/root", true, true}} {
		op := doc.Paths[tc.path]["get"]
		if secured := len(op.Security) == 1 && op.Security[0]["bearerAuth"] != nil; secured != tc.secured {
			t.Errorf("%s: security %v, want bearer required = %v", tc.path, op.Security, tc.secured)
		}
		if _, has := op.Responses["401"]; has != tc.secured {
			t.Errorf("%s: 401 documented = %v, want %v", tc.path, has, tc.secured)
		}
		if _, has := op.Responses["403"]; has != tc.r403 {
			t.Errorf("%s: 403 documented = %v, want %v", tc.path, has, tc.r403)
		}
	}
	if d := mustJSON(doc.Paths["/root"]["get"].Responses["403"]); !strings.Contains(d, "all of admin, ops") {
		t.Errorf("the 403 does not say which roles: %s", d)
	}
}
