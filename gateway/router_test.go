package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// routingConfig routes a users service and an echo service.
func routingConfig() gateway.Config {
	return gateway.Config{Routes: []*gateway.Route{
		{Pattern: "GET /users/{id}", Service: "users", Endpoint: "Users.Get"},
		{Pattern: "DELETE /users/{id}", Service: "users", Endpoint: "Users.Delete"},
		{Pattern: "POST /echo", Service: "echo", Endpoint: "Echo.Say"},
		{Pattern: "GET /files/{path...}", Service: "echo", Endpoint: "Echo.Say"},
		{Pattern: "POST /rpc/{service}/{endpoint}", Service: "{service}", Endpoint: "{endpoint}"},
	}}
}

func TestRouting(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	startBackend(t, reg, "echo", &Echo{instance: "e1"})
	_, base := startGateway(t, routingConfig(), reg)

	t.Run("path param and query reach the handler typed", func(t *testing.T) {
		r := do(t, "GET", base+"/users/42?verbose=true", "")
		var u User
		r.json(t, &u)
		if r.status != 200 || u.ID != 42 || !u.Verbose || u.Name != "user42" {
			t.Fatalf("%d %+v", r.status, u)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("catch-all", func(t *testing.T) {
		r := do(t, "GET", base+"/files/a/b/c.txt?text=hi&tags=x&tags=y", "")
		var e EchoResponse
		r.json(t, &e)
		if r.status != 200 || e.Path != "a/b/c.txt" || e.Text != "hi" || strings.Join(e.Tags, ",") != "x,y" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("body passes through", func(t *testing.T) {
		r := do(t, "POST", base+"/echo", `{"text":"hello"}`)
		var e EchoResponse
		r.json(t, &e)
		if r.status != 200 || e.Text != "hello" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("templated service and endpoint", func(t *testing.T) {
		r := do(t, "POST", base+"/rpc/echo/Echo.Say", `{"text":"dyn"}`)
		if r.status != 200 || !strings.Contains(r.body, `"text":"dyn"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("404 as a problem", func(t *testing.T) {
		r := do(t, "GET", base+"/nowhere", "")
		p := r.problem(t)
		if r.status != 404 || p.Status != 404 || p.Code != 404 || !strings.Contains(p.Detail, "/nowhere") {
			t.Fatalf("%d %+v", r.status, p)
		}
	})
	t.Run("405 with Allow as a problem", func(t *testing.T) {
		r := do(t, "PUT", base+"/users/1", `{}`)
		p := r.problem(t)
		allow := r.header.Get("Allow")
		if r.status != 405 || p.Status != 405 || !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
			t.Fatalf("%d Allow=%q %+v", r.status, allow, p)
		}
	})
	t.Run("backend errors pass through as problems", func(t *testing.T) {
		for _, tc := range []struct {
			url    string
			status int
			id     string
		}{
			{"/users/404", 404, "users"},
			{"/users/-1", 422, "users"},
		} {
			r := do(t, "GET", base+tc.url, "")
			p := r.problem(t)
			if r.status != tc.status || p.Status != tc.status || p.Code != int32(tc.status) || p.ID != tc.id || p.Detail == "" {
				t.Errorf("%s: %d %+v", tc.url, r.status, p)
			}
			if tc.status == 422 && (len(p.Fields) != 1 || p.Fields[0].Field != "id") {
				t.Errorf("field errors lost: %+v", p.Fields)
			}
		}
		r := do(t, "POST", base+"/echo", `{"fail":409}`)
		if p := r.problem(t); r.status != 409 || p.ID != "echo" || p.Title != "Conflict" {
			t.Errorf("%d %+v", r.status, p)
		}
	})
	t.Run("unknown service is 503", func(t *testing.T) {
		r := do(t, "POST", base+"/rpc/nobody/X.Y", `{}`)
		if p := r.problem(t); r.status != 503 || !strings.Contains(p.Detail, "nobody") {
			t.Fatalf("%d %+v", r.status, p)
		}
	})
	t.Run("an endpoint the service does not register is not named in metrics", func(t *testing.T) {
		r := do(t, "POST", base+"/rpc/echo/Made.Up", `{}`)
		if r.status != 404 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("metrics label routes by template", func(t *testing.T) {
		r := do(t, "GET", base+"/metrics", "")
		for _, want := range []string{
			`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/users/{id}"}`,
			`http_route="/files/{path...}"`,
			`http_route="unmatched"`,
			`http_client_request_duration_seconds_count{http_response_status_code="200",rpc_method="Users.Get",rpc_service="users"}`,
			`micro_gateway_breaker_state{backend="users"} 0`,
			`rpc_method="_other",rpc_service="echo"`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// Names clients make up create neither series nor breakers.
		for _, raw := range []string{`"/users/42"`, `"/nowhere"`, `a/b/c.txt`, `"nobody"`, `"Made.Up"`} {
			if strings.Contains(r.body, raw) {
				t.Errorf("metrics carry the raw path %s", raw)
			}
		}
	})
}

func TestRequestIDAndForwarded(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "echo", &Echo{})
	_, base := startGateway(t, routingConfig(), reg)

	// The gateway is the edge: a client's word on the host and scheme is not
	// passed on, its address chain is.
	r := do(t, "POST", base+"/echo", `{}`, "Micro-Request-Id: req-123", "X-Forwarded-For: 10.0.0.9", "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example", "Forwarded: for=10.0.0.9;host=evil.example;proto=https")
	var e EchoResponse
	r.json(t, &e)
	h := e.Header
	if r.header.Get(metadata.RequestID) != "req-123" || h[metadata.RequestID] != "req-123" {
		t.Errorf("request id not forwarded: response %q, backend %q", r.header.Get(metadata.RequestID), h[metadata.RequestID])
	}
	host := strings.TrimPrefix(base, "http://")
	if h[metadata.ForwardedFor] != "10.0.0.9, 127.0.0.1" || h[metadata.ForwardedProto] != "http" || h[metadata.ForwardedHost] != host {
		t.Errorf("X-Forwarded-*: %v", h)
	}
	if want := `for=127.0.0.1;host="` + host + `";proto=http`; h[metadata.Forwarded] != want {
		t.Errorf("Forwarded: %q", h[metadata.Forwarded])
	}
	if h[metadata.TraceParent] == "" {
		t.Error("traceparent not forwarded")
	}

	r1, r2 := do(t, "POST", base+"/echo", `{}`), do(t, "POST", base+"/echo", `{}`)
	id1, id2 := r1.header.Get(metadata.RequestID), r2.header.Get(metadata.RequestID)
	if len(id1) != 32 || id1 == id2 {
		t.Errorf("generated ids %q %q", id1, id2)
	}
	var e1 EchoResponse
	r1.json(t, &e1)
	if e1.Header[metadata.RequestID] != id1 {
		t.Errorf("backend saw %q, client got %q", e1.Header[metadata.RequestID], id1)
	}
	// An error carries the id too.
	if p := do(t, "GET", base+"/nowhere", "", "X-Request-Id: legacy-1").problem(t); p.RequestID != "legacy-1" {
		t.Errorf("problem request id %q", p.RequestID)
	}
}

func TestBadInput(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "echo", &Echo{})
	cfg := routingConfig()
	cfg.MaxBody = 1024
	cfg.Routes = append(cfg.Routes, &gateway.Route{Pattern: "POST /echo/{text}", Service: "echo", Endpoint: "Echo.Say"})
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct {
		name, url, body, ctype string
		status                 int
		detail                 string
	}{
		{"malformed JSON", "/echo/x", `{"text":`, "application/json", 400, "malformed json body"},
		{"not an object", "/echo/x", `[1,2]`, "application/json", 400, "expected an object"},
		{"JSON null", "/echo/x", `null`, "application/json", 400, "expected a JSON object, got null"},
		{"msgpack nil", "/echo/x", "\xc0", "application/msgpack", 400, "expected a msgpack object, got nil"},
		// A map of two entries cut off inside its first key; then a map whose
		// value is 0xc1, a byte msgpack never uses.
		{"malformed msgpack", "/echo/x", "\x82\xa4te", "application/msgpack", 400, "malformed msgpack body"},
		{"malformed msgpack passed through", "/echo", "\x81\xa4text\xc1", "application/msgpack", 400, "malformed msgpack body"},
		{"msgpack not an object", "/echo/x", "\x92\x01\x02", "application/msgpack", 400, "malformed msgpack body"},
		{"malformed JSON passed through", "/echo", `{"text":`, "application/json", 400, "malformed json body"},
		{"unknown content type", "/echo", `<a/>`, "application/xml", 415, "application/json"},
		{"oversized", "/echo", `{"text":"` + strings.Repeat("x", 2000) + `"}`, "application/json", 413, "1024 byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", base+tc.url, tc.body, "Content-Type: "+tc.ctype)
			p := r.problem(t)
			if r.status != tc.status || p.Status != tc.status || !strings.Contains(strings.ToLower(p.Detail), strings.ToLower(tc.detail)) {
				t.Fatalf("%d %+v", r.status, p)
			}
		})
	}
	t.Run("oversized without Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/echo", strings.NewReader(strings.Repeat("x", 5000)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		detail, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(detail), "the request body is over the gateway's 1024 byte limit") {
			t.Fatalf("status %d: %s", resp.StatusCode, detail)
		}
	})
}

// postChunked sends body without a Content-Length, so only reading it can
// tell how long it is.
func postChunked(t *testing.T, url, body string) response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// An aggregate reads the body once for all its parts: one over the limit is
// refused before any part is called, and a malformed one is a 400 naming the
// problem, whether the gateway decodes it (to merge path parameters in) or
// passes it to the parts as sent, and even under the partial policy.
func TestAggregateBadInput(t *testing.T) {
	reg := registry.NewMemory()
	echo := &Echo{}
	startBackend(t, reg, "echo", echo)
	startBackend(t, reg, "users", Users{})
	cfg := gateway.Config{MaxBody: 1024, Aggregates: []*gateway.Aggregate{
		{Pattern: "POST /profile/{id}", Parts: []*gateway.Part{
			{Name: "user", Service: "users", Endpoint: "Users.Get"},
			{Name: "echo", Service: "echo", Endpoint: "Echo.Say"},
		}},
		{Pattern: "POST /twice", Partial: gateway.PartialAllow, Parts: []*gateway.Part{
			{Name: "one", Service: "echo", Endpoint: "Echo.Say"},
			{Name: "two", Service: "echo", Endpoint: "Echo.Say"},
		}},
	}}
	_, base := startGateway(t, cfg, reg)

	if r := do(t, "POST", base+"/profile/3", `{"text":"ok"}`); r.status != 200 || !strings.Contains(r.body, `"text":"ok"`) {
		t.Fatalf("a good body: %d %s", r.status, r.body)
	}
	big := `{"text":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name, path, body, ctype string
		status                  int
		detail                  string
		reachesEcho             bool // the body goes to the backend as sent
	}{
		{"malformed JSON, decoded", "/profile/3", `{"text":`, "application/json", 400, "malformed json body", false},
		{"malformed msgpack, decoded", "/profile/3", "\x82\xa4te", "application/msgpack", 400, "malformed msgpack body", false},
		{"JSON null, decoded", "/profile/3", `null`, "application/json", 400, "expected a JSON object, got null", false},
		{"unknown content type", "/profile/3", `<a/>`, "application/xml", 415, "application/json", false},
		{"malformed JSON, passed through", "/twice", `{"text":`, "application/json", 400, "malformed json body", true},
		{"malformed msgpack, passed through", "/twice", "\x81\xa4text\xc1", "application/msgpack", 400, "malformed msgpack body", true},
		{"oversized", "/profile/3", big, "application/json", 413, "1024 byte limit", false},
		{"oversized, partial policy", "/twice", big, "application/json", 413, "1024 byte limit", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo.calls.Store(0)
			r := do(t, "POST", base+tc.path, tc.body, "Content-Type: "+tc.ctype)
			p := r.problem(t)
			if r.status != tc.status || p.Status != tc.status || !strings.Contains(strings.ToLower(p.Detail), strings.ToLower(tc.detail)) {
				t.Fatalf("%d %+v", r.status, p)
			}
			if n := echo.calls.Load(); n != 0 && !tc.reachesEcho {
				t.Errorf("the echo backend was called %d times for a body the gateway refuses", n)
			}
		})
	}
	for _, path := range []string{"/profile/3", "/twice"} {
		t.Run("oversized without Content-Length "+path, func(t *testing.T) {
			echo.calls.Store(0)
			r := postChunked(t, base+path, big)
			if p := r.problem(t); r.status != 413 || p.Status != 413 || !strings.Contains(p.Detail, "1024 byte limit") {
				t.Fatalf("%d %+v", r.status, p)
			}
			if n := echo.calls.Load(); n != 0 {
				t.Errorf("the echo backend was called %d times for an oversized body", n)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	reg := registry.NewMemory()
	for _, tc := range []struct {
		name string
		cfg  gateway.Config
		want string
	}{
		{"bad pattern", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET users", Service: "a", Endpoint: "A.B"}}}, "route[0].pattern"},
		{"conflict", gateway.Config{Routes: []*gateway.Route{
			{Pattern: "GET /a/{x}", Service: "a", Endpoint: "A.B"}, {Pattern: "GET /a/{y}", Service: "a", Endpoint: "A.B"}}}, "route[1].pattern"},
		{"builtin taken", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /health", Service: "a", Endpoint: "A.B"}}}, "conflicts"},
		{"unknown reference", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /a", Service: "{svc}", Endpoint: "A.B"}}}, "{svc}"},
		{"bad origin", gateway.Config{CORS: &gateway.CORS{AllowOrigins: []string{"ftp://x"}}}, "cors.allow_origins"},
		{"credentials for any origin", gateway.Config{CORS: &gateway.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}}, "cors.allow_credentials"},
		{"credentials for any origin on a route", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /a", Service: "a", Endpoint: "A.B",
			CORS: &gateway.CORS{AllowOrigins: []string{"https://a.example.com", "*"}, AllowCredentials: true}}}}, "route[0].cors.allow_credentials"},
		{"bad blocked status", gateway.Config{Backends: []*gateway.Backend{{Service: "a", BlockedStatus: 500}}}, "blocked_status"},
		{"duplicate part", gateway.Config{Aggregates: []*gateway.Aggregate{{Pattern: "GET /x", Parts: []*gateway.Part{
			{Name: "a", Service: "a", Endpoint: "A.B"}, {Name: "a", Service: "a", Endpoint: "A.B"}}}}}, "part[1].name"},
		// Patterns, endpoints and part names become metrics labels, which
		// must be UTF-8: a route with "/caf\xe9" used to panic on every request.
		{"pattern not UTF-8", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /caf\xe9", Service: "a", Endpoint: "A.B"}}}, "route[0].pattern: invalid pattern \"GET /caf\\xe9\": the pattern is not valid UTF-8"},
		{"endpoint not UTF-8", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /a", Service: "a", Endpoint: "A.\xff"}}}, "route[0].endpoint: \"A.\\xff\" is not valid UTF-8"},
		{"service not UTF-8", gateway.Config{Routes: []*gateway.Route{{Pattern: "GET /a", Service: "\xff", Endpoint: "A.B"}}}, "route[0].service: \"\\xff\" is not valid UTF-8"},
		{"part name not UTF-8", gateway.Config{Aggregates: []*gateway.Aggregate{{Pattern: "GET /x", Parts: []*gateway.Part{
			{Name: "\xff", Service: "a", Endpoint: "A.B"}}}}}, "part[0].name: \"\\xff\" is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.New(tc.cfg, gateway.Registry(reg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func TestBackendAnswerNeitherSuccessNorErrorIsBadGateway(t *testing.T) {
	reg := registry.NewMemory()
	startRawBackend(t, reg, "moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	_, base := startGateway(t, gateway.Config{Routes: []*gateway.Route{
		{Pattern: "GET /moved", Service: "moved", Endpoint: "Moved.Get"},
	}}, reg)
	r := do(t, "GET", base+"/moved", "")
	p := r.problem(t)
	if r.status != 502 || p.Status != 502 || p.Code != 502 || !strings.Contains(p.Detail, "302") {
		t.Fatalf("%d %+v", r.status, p)
	}
}

// What a transport says about a failed call names the backend's address: the
// client is told which call failed and how, never where the backend runs.
func TestTransportFailuresDoNotNameTheBackendsAddress(t *testing.T) {
	reg := registry.NewMemory()
	// Nothing listens on port 1 of the loopback address: dialing it is refused.
	dead := &registry.Service{Name: "dead", Version: "1", Nodes: []*registry.Node{{ID: "dead-1", Address: "127.0.0.1:1"}}}
	if err := reg.Register(context.Background(), dead, 0); err != nil {
		t.Fatal(err)
	}
	startRawBackend(t, reg, "stalled", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices the gateway hanging up
		<-r.Context().Done()
	})
	startRawBackend(t, reg, "huge", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`"` + strings.Repeat("x", transport.DefaultMaxBodyBytes) + `"`))
	})
	cfg := gateway.Config{Breaker: gateway.Breaker{Disabled: true}, Routes: []*gateway.Route{
		{Pattern: "GET /dead", Service: "dead", Endpoint: "Dead.Get"},
		{Pattern: "GET /stalled", Service: "stalled", Endpoint: "Stalled.Get", Timeout: 100 * time.Millisecond},
		{Pattern: "GET /huge", Service: "huge", Endpoint: "Huge.Get"},
	}}
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/dead", 503},
		{"/stalled", 504},
		{"/huge", 502},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, "GET", base+tc.path, "")
			p := r.problem(t)
			if r.status != tc.status || p.ID != "gateway" || !strings.Contains(p.Detail, tc.path[1:]) {
				t.Fatalf("%d %+v", r.status, p)
			}
			if strings.Contains(r.body, "127.0.0.1") {
				t.Fatalf("the answer names the backend's address: %s", r.body)
			}
		})
	}
}
