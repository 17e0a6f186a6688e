package gateway

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/registry"
)

// fuzzRoutes is the route table FuzzRouter matches against, most specific
// first (the order a reference matcher must try them in).
var fuzzRoutes = []string{
	"GET /users/me",
	"GET /users/{id}/orders",
	"GET /users/{id}",
	"DELETE /users/{id}",
	"GET /files/{path...}",
	"POST /echo",
	"/any/{x}",
}

// FuzzRouter checks that routing never panics and never picks a route the
// path does not match, or misses the one it does (its seed corpus runs as a
// plain test).
func FuzzRouter(f *testing.F) {
	var routes []*Route
	for _, p := range fuzzRoutes {
		routes = append(routes, &Route{Pattern: p, Service: "s", Endpoint: "S.M"})
	}
	g, err := New(Config{Routes: routes}, Registry(registry.NewMemory()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	mux := g.state.Load().mux
	for _, seed := range [][2]string{
		{"GET", "/users/me"}, {"GET", "/users/42"}, {"HEAD", "/users/42"}, {"DELETE", "/users/42"},
		{"PUT", "/users/42"}, {"GET", "/users/42/orders"}, {"GET", "/users/"}, {"GET", "/users"},
		{"GET", "/files/"}, {"GET", "/files"}, {"GET", "/files/a/b/c"}, {"POST", "/echo"}, {"POST", "/echo/"},
		{"PATCH", "/any/1"}, {"GET", "/health"}, {"GET", "/api/docs/openapi.json"}, {"GET", "/users/a%2Fb"},
		{"GET", "/users/ü"}, {"GET", "/users/{id}"}, {"GET", "/"}, {"BREW", "/any/pot"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, method, p string) {
		if !isToken(method) || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\x00") || !clean(p) {
			return
		}
		r := &http.Request{Method: method, URL: &url.URL{Path: p}, Host: "gw", Header: http.Header{}}
		_, got := mux.Handler(r)
		if want := reference(method, p); got != want {
			t.Fatalf("%s %q routed to %q, want %q", method, p, got, want)
		}
	})
}

// clean reports whether ServeMux serves p as is rather than redirecting to
// its cleaned form.
func clean(p string) bool {
	c := path.Clean(p)
	return c == p || c+"/" == p && c != "/"
}

// reference is the route a request should reach: the first of fuzzRoutes and
// the built-ins whose method and path match, or "" (a 404 or 405).
func reference(method, p string) string {
	for _, pat := range append(fuzzRoutes, builtinPaths...) {
		m, pp, ok := strings.Cut(pat, " ")
		if !ok {
			m, pp = "", pat
		}
		if m != "" && m != method && !(m == "GET" && method == "HEAD") {
			continue
		}
		if matchPath(pp, p) {
			return pat
		}
	}
	return ""
}

// matchPath matches a path against a pattern's path: {x} takes one non-empty
// segment, {x...} the rest (possibly empty), anything else itself.
func matchPath(pattern, p string) bool {
	ps := strings.Split(pattern[1:], "/")
	segs := strings.Split(p[1:], "/")
	for i, s := range ps {
		if strings.HasSuffix(s, "...}") {
			return i <= len(segs)
		}
		if i >= len(segs) {
			return false
		}
		if strings.HasPrefix(s, "{") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if s != segs[i] {
			return false
		}
	}
	return len(ps) == len(segs)
}
