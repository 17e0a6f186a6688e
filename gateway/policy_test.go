package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
)

func TestCORS(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "echo", &Echo{})
	cfg := gateway.Config{
		CORS: &gateway.CORS{
			AllowOrigins:     []string{"https://app.example.com", "*.example.com"},
			ExposeHeaders:    []string{"Micro-Request-Id"},
			AllowCredentials: true,
			MaxAge:           10 * time.Minute,
		},
		Routes: []*gateway.Route{
			{Pattern: "POST /echo", Service: "echo", Endpoint: "Echo.Say"},
			{Pattern: "POST /open", Service: "echo", Endpoint: "Echo.Say", CORS: &gateway.CORS{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*"}}},
		},
	}
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct {
		name, path, origin, want string
	}{
		{"exact origin", "/echo", "https://app.example.com", "https://app.example.com"},
		{"subdomain pattern", "/echo", "https://api.example.com", "https://api.example.com"},
		{"nested subdomain", "/echo", "http://a.b.example.com", "http://a.b.example.com"},
		{"suffix without the dot", "/echo", "https://evilexample.com", ""},
		{"the bare domain", "/echo", "https://example.com", ""},
		{"a port the pattern lacks", "/echo", "https://a.example.com:8443", ""},
		{"lookalike host", "/echo", "https://example.com.evil.org", ""},
		{"not http", "/echo", "ftp://a.example.com", ""},
		{"per-route wildcard", "/open", "https://anyone.org", "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", base+tc.path, `{}`, "Origin: "+tc.origin)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tc.want)
			}
			if tc.want != "" && tc.path == "/echo" && (r.header.Get("Access-Control-Allow-Credentials") != "true" || r.header.Get("Access-Control-Expose-Headers") != "Micro-Request-Id") {
				t.Errorf("credentials/expose headers: %v", r.header)
			}
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
				t.Error("no Vary: Origin")
			}
		})
	}
	t.Run("preflight", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/echo", "", "Origin: https://api.example.com", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: Content-Type")
		h := r.header
		if r.status != 204 || h.Get("Access-Control-Allow-Origin") != "https://api.example.com" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") != "600" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Fatalf("%d %v", r.status, h)
		}
	})
	t.Run("preflight from a refused origin", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/echo", "", "Origin: https://evilexample.com", "Access-Control-Request-Method: POST")
		if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
	t.Run("per-route preflight echoes requested headers", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/open", "", "Origin: https://x.org", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: X-Custom")
		if r.status != 204 || r.header.Get("Access-Control-Allow-Headers") != "X-Custom" || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
	t.Run("OPTIONS without Access-Control-Request-Method is not a preflight", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/echo", "", "Origin: https://api.example.com")
		if r.status != 405 || r.header.Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("%d %v", r.status, r.header)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "https://api.example.com" {
			t.Error("an error answer lacks CORS headers, so a browser cannot read it")
		}
	})
}

func TestBackendPolicy(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	startBackend(t, reg, "echo", &Echo{})
	cfg := routingConfig()
	cfg.Backends = []*gateway.Backend{
		{Service: "users", Block: []string{"Users.Delete"}},
		{Service: "echo", Allow: []string{"Echo.Say"}, BlockedStatus: 404},
	}
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"allowed", "GET", "/users/7", "", 200},
		{"blocked: 403", "DELETE", "/users/7", "", 403},
		{"allowed by the allow list", "POST", "/rpc/echo/Echo.Say", "{}", 200},
		{"not on the allow list: 404", "POST", "/rpc/echo/Echo.Other", "{}", 404},
		{"blocked through a templated route", "POST", "/rpc/users/Users.Delete", "{}", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, base+tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.status != 200 {
				if p := r.problem(t); p.Status != tc.status || p.ID != "gateway" {
					t.Fatalf("%+v", p)
				}
			}
		})
	}
}

// caseInsensitive answers lookups whatever the case of the name, as Consul's
// health and catalog lookups do, with the names the services registered.
type caseInsensitive struct{ registry.Registry }

func (r caseInsensitive) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	return r.Registry.GetService(ctx, strings.ToLower(name))
}

// A backend policy is keyed by the service's name: a templated route must not
// reach the service under another spelling its registry also answers to.
func TestBackendPolicyHoldsForOtherSpellingsOfTheService(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	cfg := routingConfig()
	cfg.Backends = []*gateway.Backend{{Service: "users", Block: []string{"Users.Delete"}}}
	_, base := startGateway(t, cfg, caseInsensitive{reg})

	if r := do(t, "POST", base+"/rpc/users/Users.Get", `{"id":7}`); r.status != 200 {
		t.Fatalf("exact name: %d %s", r.status, r.body)
	}
	for _, svc := range []string{"USERS", "Users"} {
		r := do(t, "POST", base+"/rpc/"+svc+"/Users.Delete", `{"id":7}`)
		if p := r.problem(t); r.status != 503 || p.ID != "gateway" {
			t.Fatalf("%s: %d %s", svc, r.status, r.body)
		}
	}
}

// A backend's answer to an endpoint it does not have lists the endpoints it
// has, blocked ones included: through a templated route, a service with a
// backend policy is refused such a call as it is a blocked one, so the answer
// tells neither what is blocked nor that it exists.
func TestBackendPolicyDoesNotRevealBlockedEndpoints(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	cfg := routingConfig()
	cfg.Backends = []*gateway.Backend{{Service: "users", Block: []string{"Users.Delete"}}}
	_, base := startGateway(t, cfg, reg)

	blocked := do(t, "POST", base+"/rpc/users/Users.Delete", `{"id":7}`)
	unknown := do(t, "POST", base+"/rpc/users/Users.Nope", `{"id":7}`)
	pb, pu := blocked.problem(t), unknown.problem(t)
	if blocked.status != 403 || unknown.status != blocked.status || pu.ID != "gateway" {
		t.Fatalf("blocked: %d %+v; unknown: %d %+v", blocked.status, pb, unknown.status, pu)
	}
	if strings.Contains(unknown.body, "Users.Delete") {
		t.Fatalf("the answer names the blocked endpoint: %s", unknown.body)
	}
}

func TestTransform(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	cfg := gateway.Config{Routes: []*gateway.Route{{
		Pattern: "GET /users/{id}", Service: "users", Endpoint: "Users.Get",
		Transform: &gateway.Transform{
			Remove: []string{"internal", "profile.city"},
			Rename: map[string]string{"name": "display_name", "id": "user.id"},
			Add:    map[string]json.RawMessage{"source": json.RawMessage(`"gateway"`), "profile.tier": json.RawMessage(`2`)},
		},
	}}}
	_, base := startGateway(t, cfg, reg)

	r := do(t, "GET", base+"/users/5", "")
	var got map[string]any
	r.json(t, &got)
	want := `{"display_name":"user5","profile":{"tier":2},"source":"gateway","user":{"id":5}}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	// msgpack in, msgpack out: the transform works in the response's codec.
	r = do(t, "GET", base+"/users/5", "", "Accept: application/msgpack")
	if r.status != 200 || r.header.Get("Content-Type") != "application/msgpack" || strings.Contains(r.body, "secret") || !strings.Contains(r.body, "display_name") {
		t.Fatalf("msgpack: %d %q %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	// Errors are not transformed.
	if r := do(t, "GET", base+"/users/404", ""); r.status != 404 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// The values a transform adds are shared by every request; adding into one of
// them (a nested path under an added object) must write into the request's
// own copy.
func TestTransformIsSafeForConcurrentRequests(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	cfg := gateway.Config{Routes: []*gateway.Route{{
		Pattern: "GET /users/{id}", Service: "users", Endpoint: "Users.Get",
		Transform: &gateway.Transform{Add: map[string]json.RawMessage{
			"meta":           json.RawMessage(`{"tags":["a"],"source":{"name":"gateway"}}`),
			"meta.source.id": json.RawMessage(`7`),
			"meta.seen":      json.RawMessage(`true`),
		}},
	}}}
	_, base := startGateway(t, cfg, reg)

	const want = `"meta":{"seen":true,"source":{"id":7,"name":"gateway"},"tags":["a"]}`
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				r, err := send("GET", base+"/users/5", "")
				if err != nil {
					errs <- err
					return
				}
				if r.status != 200 || !strings.Contains(r.body, want) {
					errs <- fmt.Errorf("%d %s, want it to hold %s", r.status, r.body, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
