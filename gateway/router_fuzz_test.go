package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
)

// routerSeed is one FuzzRouter input: a route and a request for it.
type routerSeed struct {
	pattern, service, endpoint string
	method, path               string
}

var routerSeeds = []routerSeed{
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users/42"},
	{"GET /users/{id}", "users", "Users.Get", "HEAD", "/users/42"},
	{"GET /users/{id}", "users", "Users.Get", "PUT", "/users/42"},
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users/"},
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users"},
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users/a%2Fb"},
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users/ü"},
	{"GET /users/{id}", "users", "Users.Get", "GET", "/users/../users/1"},
	{"GET /users/{id}/orders", "users", "Orders.List", "GET", "/users/7/orders"},
	{"DELETE /users/{id}", "users", "Users.Delete", "DELETE", "/users/7"},
	{"GET /files/{path...}", "files", "Files.Get", "GET", "/files/a/b/c"},
	{"GET /files/{path...}", "files", "Files.Get", "GET", "/files/"},
	{"GET /files/{path...}", "files", "Files.Get", "GET", "/files"},
	{"GET /tree/", "tree", "Tree.Get", "GET", "/tree/x/y"},
	{"GET /tree/", "tree", "Tree.Get", "GET", "/tree"},
	{"GET /exact/{$}", "exact", "Exact.Get", "GET", "/exact/"},
	{"GET /exact/{$}", "exact", "Exact.Get", "GET", "/exact/x"},
	{"POST /rpc/{service}/{endpoint}", "{service}", "{endpoint}", "POST", "/rpc/echo/Echo.Say"},
	{"POST /rpc/{service}/{endpoint}", "{service}", "{endpoint}", "GET", "/rpc/echo/Echo.Say"},
	{"/v1/{svc}/{rest...}", "{svc}", "Api.{rest}", "BREW", "/v1/pot/tea/earl-grey"},
	{"/v1/{svc}/{rest...}", "{svc}", "Api.{rest}", "CONNECT", "/v1/pot/"},
	{"/", "root", "Root.Any", "OPTIONS", "/anything/at/all"},
	{"/{$}", "root", "Root.Index", "GET", "/"},
	{"GET /a%20b", "spaced", "Spaced.Get", "GET", "/a b"},
	{"POST /health", "health", "Health.Post", "POST", "/health"},
	{"POST /health", "health", "Health.Post", "GET", "/health"},
	{"/api/{x}/{y}", "api", "Api.Get", "GET", "/api/docs/openapi.json"},
	{"/api/{x}/{y}", "api", "Api.Get", "GET", "/api/docs/nothing"},
	// Configurations Validate must refuse.
	{"GET /health", "health", "Health.Get", "GET", "/health"},
	{"GET users", "users", "Users.Get", "GET", "/users"},
	{"GET /a/{x}/{x}", "a", "A.B", "GET", "/a/1/2"},
	{"GET /a/{x...}/b", "a", "A.B", "GET", "/a/1/b"},
	{"GET /a/{x}", "{y}", "A.B", "GET", "/a/1"},
	{"GET /a/{x}", "a", "{x", "GET", "/a/1"},
	{"GET /a/{x}", "a", "B", "GET", "/a/1"},
	{"GET /a/{1x}", "a", "A.B", "GET", "/a/1"},
	{"GET /a/x{y}", "a", "A.B", "GET", "/a/xy"},
	{"G(T /a", "a", "A.B", "G(T", "/a"},
	{"GET /\xff", "a", "A.B", "GET", "/\xff"},
}

// FuzzRouter drives the gateway through its public surface: a route built
// from the fuzzed pattern and service and endpoint templates, and a request
// sent through ServeHTTP. New must agree with Validate and neither may panic;
// the answer must be a problem document whenever it is an error, a path the
// pattern matches must reach the route (or get 405 for another method), and
// an unclean path must be redirected. No backend is registered, so a request
// the route takes is answered 503 by the route itself. The seed corpus runs
// as a plain test.
func FuzzRouter(f *testing.F) {
	for _, s := range routerSeeds {
		f.Add(s.pattern, s.service, s.endpoint, s.method, s.path)
	}
	f.Fuzz(func(t *testing.T, pattern, service, endpoint, method, p string) {
		cfg := gateway.Config{Routes: []*gateway.Route{{Pattern: pattern, Service: service, Endpoint: endpoint}}}
		verr := cfg.Validate()
		g, err := gateway.New(cfg, gateway.Registry(registry.NewMemory()))
		switch {
		case verr != nil && err == nil:
			g.Close()
			t.Fatalf("New accepted %+v, which Validate refuses: %v", cfg.Routes[0], verr)
		case verr != nil:
			return
		case err != nil:
			t.Fatalf("Validate accepts %+v but New fails: %v", cfg.Routes[0], err)
		}
		t.Cleanup(func() { g.Close() })
		if !validMethod(method) || !strings.HasPrefix(p, "/") {
			return // no HTTP server would hand the gateway such a request
		}

		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL = &url.URL{Path: p}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		status := w.Code

		switch {
		case status >= 200 && status < 300:
		case status >= 300 && status < 400:
			if w.Header().Get("Location") == "" {
				t.Fatalf("%s %q: %d without a Location", method, p, status)
			}
		default:
			if ct := w.Header().Get("Content-Type"); ct != gateway.ProblemContentType {
				t.Fatalf("%s %q: %d with Content-Type %q, want %s; body %q", method, p, status, ct, gateway.ProblemContentType, w.Body)
			}
			var prob gateway.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil {
				t.Fatalf("%s %q: %d with a body that is not a problem document: %v; body %q", method, p, status, err, w.Body)
			}
			if prob.Status != status || int(prob.Code) != status {
				t.Fatalf("%s %q: HTTP %d but the problem says status %d, code %d", method, p, status, prob.Status, prob.Code)
			}
		}

		// What the answer must be, where the route table decides it.
		if !cleanPath(p) {
			if method != http.MethodConnect && status != http.StatusTemporaryRedirect {
				t.Fatalf("%s %q: %d, want a redirect to the clean path", method, p, status)
			}
			return
		}
		if builtin(method, p) {
			return // the gateway's own endpoints may answer anything
		}
		pm, pp := splitPattern(pattern)
		if !matchPath(pp, p) {
			return
		}
		switch {
		case status == http.StatusNotFound:
			t.Fatalf("%s %q: 404, but the pattern %q matches the path: %s", method, p, pattern, w.Body)
		case methodMatches(pm, method) && status != http.StatusServiceUnavailable:
			// The route's answer: nothing is registered under any name.
			t.Fatalf("%s %q: %d, want the route %q to answer 503; body %s", method, p, status, pattern, w.Body)
		case !methodMatches(pm, method) && status != http.StatusMethodNotAllowed:
			t.Fatalf("%s %q: %d, want 405 from the route %q for another method; body %s", method, p, status, pattern, w.Body)
		case !methodMatches(pm, method) && !strings.Contains(w.Header().Get("Allow"), pm):
			t.Fatalf("%s %q: Allow %q lacks %s", method, p, w.Header().Get("Allow"), pm)
		}
	})
}

// validMethod reports whether m is an HTTP token, which a server requires
// of a request method.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// cleanPath reports whether the router serves p as is rather than
// redirecting to its clean form (a trailing slash is kept).
func cleanPath(p string) bool {
	c := path.Clean(p)
	return c == p || c+"/" == p && c != "/"
}

// builtinPatterns are the paths the gateway serves itself (all GET).
var builtinPatterns = []string{"/health", "/ready", "/metrics", "/api/docs", "/api/docs/{file}"}

// builtin reports whether one of the gateway's own endpoints takes the request.
func builtin(method, p string) bool {
	if !methodMatches(http.MethodGet, method) {
		return false
	}
	for _, b := range builtinPatterns {
		if matchPath(b, p) {
			return true
		}
	}
	return false
}

// splitPattern splits "[METHOD ]/path" as the gateway and ServeMux do.
func splitPattern(s string) (method, p string) {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimLeft(s[i+1:], " \t")
	}
	return "", s
}

// methodMatches reports whether a pattern's method takes a request's: no
// method takes all, and GET takes HEAD too.
func methodMatches(pattern, method string) bool {
	return pattern == "" || pattern == method || pattern == http.MethodGet && method == http.MethodHead
}

// matchPath is a reference matcher for a clean request path against a
// pattern's path: {x} takes one non-empty segment, {x...} and a trailing
// slash the rest of the path after a slash (possibly nothing), {$} only the
// end of a path that ends in a slash; a literal segment matches itself
// unescaped.
func matchPath(pattern, p string) bool {
	ps := strings.Split(pattern[1:], "/")
	segs := strings.Split(p[1:], "/")
	for i, s := range ps {
		last := i == len(ps)-1
		switch {
		case s == "{$}":
			return len(segs) == i+1 && segs[i] == ""
		case last && (s == "" || strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}")):
			return len(segs) > i
		case i >= len(segs):
			return false
		case strings.HasPrefix(s, "{"):
			if segs[i] == "" {
				return false
			}
		default:
			lit, err := url.PathUnescape(s)
			if err != nil {
				lit = s
			}
			if lit != segs[i] {
				return false
			}
		}
	}
	return len(ps) == len(segs)
}
