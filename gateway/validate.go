package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem in a Config, located so that a config file decoder
// can point at the line it came from.
type FieldError struct {
	// Kind is "route", "aggregate" or "backend" for an element of those lists,
	// "" for the top level.
	Kind string
	// Index is the element's index in Routes, Aggregates or Backends.
	Index int
	// Part is the index of the part in an aggregate's Parts, or -1.
	Part int
	// Field is the setting, named as in micro.hcl, dotted inside a nested
	// block: "pattern", "cors.allow_origins", "transform.add".
	Field string
	// Err says what is wrong and what was expected.
	Err error
}

// Error renders the location and the problem.
func (e *FieldError) Error() string {
	var where string
	switch {
	case e.Kind == "":
		where = e.Field
	case e.Part >= 0:
		where = fmt.Sprintf("%s[%d].part[%d].%s", e.Kind, e.Index, e.Part, e.Field)
	default:
		where = fmt.Sprintf("%s[%d].%s", e.Kind, e.Index, e.Field)
	}
	return "gateway config: " + where + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// builtinPaths are the patterns the gateway itself serves; routes may not take them.
var builtinPaths = []string{"GET /health", "GET /ready", "GET /metrics", "GET /api/docs", "GET /api/docs/{file}"}

// Validate reports every problem in c, each a *FieldError, joined with errors.Join.
func (c *Config) Validate() error {
	v := &validator{}
	if c.MaxBody < 0 {
		v.add("", 0, -1, "max_body", "expected a positive size, got %d", c.MaxBody)
	}
	if c.Timeout < 0 {
		v.add("", 0, -1, "timeout", "expected a positive duration, got %s", c.Timeout)
	}
	v.cors("", 0, "cors", c.CORS)
	v.breaker("", 0, "breaker", &c.Breaker)
	mux := http.NewServeMux()
	for _, p := range builtinPaths {
		_ = tryHandle(mux, p)
	}
	seenBackend := map[string]bool{}
	for i, b := range c.Backends {
		switch {
		case b == nil:
			v.add("backend", i, -1, "service", "is nil")
			continue
		case b.Service == "":
			v.add("backend", i, -1, "service", "expected a service name")
		case seenBackend[b.Service]:
			v.add("backend", i, -1, "service", "service %q has a backend policy already; expected one per service", b.Service)
		}
		seenBackend[b.Service] = true
		for _, field := range []struct {
			name string
			list []string
		}{{"allow", b.Allow}, {"block", b.Block}} {
			for _, g := range field.list {
				if _, err := path.Match(g, ""); err != nil || g == "" {
					v.add("backend", i, -1, field.name, "%q is not an endpoint name or glob such as \"Greeter.*\"", g)
				}
			}
		}
		if b.BlockedStatus != 0 && b.BlockedStatus != http.StatusForbidden && b.BlockedStatus != http.StatusNotFound {
			v.add("backend", i, -1, "blocked_status", "expected 403 or 404, got %d", b.BlockedStatus)
		}
		if b.Breaker != nil {
			v.breaker("backend", i, "breaker", b.Breaker)
		}
	}
	for i, r := range c.Routes {
		if r == nil {
			v.add("route", i, -1, "pattern", "is nil")
			continue
		}
		p := v.pattern("route", i, mux, r.Pattern)
		v.target("route", i, -1, p, r.Service, r.Endpoint)
		v.duration("route", i, -1, "timeout", r.Timeout)
		v.retry("route", i, -1, r.Retry)
		v.cors("route", i, "cors", r.CORS)
		v.transform("route", i, r.Transform)
		v.access("route", i, r.Access)
	}
	for i, a := range c.Aggregates {
		if a == nil {
			v.add("aggregate", i, -1, "pattern", "is nil")
			continue
		}
		p := v.pattern("aggregate", i, mux, a.Pattern)
		v.duration("aggregate", i, -1, "timeout", a.Timeout)
		v.cors("aggregate", i, "cors", a.CORS)
		v.access("aggregate", i, a.Access)
		switch a.Partial {
		case "", PartialFail, PartialAllow:
		default:
			v.add("aggregate", i, -1, "partial", "expected %q or %q, got %q", PartialFail, PartialAllow, a.Partial)
		}
		if len(a.Parts) == 0 {
			v.add("aggregate", i, -1, "part", `expected at least one part "<name>" { service = ..., endpoint = ... }`)
		}
		names := map[string]bool{}
		for j, part := range a.Parts {
			if part == nil {
				v.add("aggregate", i, j, "name", "is nil")
				continue
			}
			switch {
			case part.Name == "":
				v.add("aggregate", i, j, "name", "expected a name to merge the answer under")
			case names[part.Name]:
				v.add("aggregate", i, j, "name", "part %q appears twice; expected unique names", part.Name)
			case !utf8.ValidString(part.Name):
				// Metrics name failed parts, and a label must be UTF-8.
				v.add("aggregate", i, j, "name", "%q is not valid UTF-8", part.Name)
			}
			names[part.Name] = true
			v.target("aggregate", i, j, p, part.Service, part.Endpoint)
			v.duration("aggregate", i, j, "timeout", part.Timeout)
			v.retry("aggregate", i, j, part.Retry)
		}
	}
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) add(kind string, index, part int, field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Kind: kind, Index: index, Part: part, Field: field, Err: fmt.Errorf(format, args...)})
}

// pattern checks a route pattern and that it conflicts with no earlier one.
func (v *validator) pattern(kind string, i int, mux *http.ServeMux, s string) *pattern {
	p, err := parsePattern(s)
	if err != nil {
		v.add(kind, i, -1, "pattern", "invalid pattern %q: %v", s, err)
		return nil
	}
	if err := tryHandle(mux, s); err != nil {
		v.add(kind, i, -1, "pattern", "pattern %q conflicts with another route or a built-in path (/health, /ready, /metrics, /api/docs): %v", s, err)
	}
	return p
}

// target checks a service and endpoint, and that their {references} are
// wildcards of the pattern.
func (v *validator) target(kind string, i, part int, p *pattern, service, endpoint string) {
	for _, f := range []struct{ name, val, example string }{{"service", service, `"greeter"`}, {"endpoint", endpoint, `"Greeter.Hello"`}} {
		if f.val == "" {
			v.add(kind, i, part, f.name, "expected the %s to call, such as %s", f.name, f.example)
			continue
		}
		if !utf8.ValidString(f.val) {
			// Metrics name the endpoint, and a label must be UTF-8.
			v.add(kind, i, part, f.name, "%q is not valid UTF-8", f.val)
			continue
		}
		refs, err := templateParams(f.val)
		if err != nil {
			v.add(kind, i, part, f.name, "%q: %v", f.val, err)
			continue
		}
		for _, ref := range refs {
			if p != nil && !p.has(ref) {
				v.add(kind, i, part, f.name, "%q refers to {%s}, which the pattern %q does not have", f.val, ref, p.raw)
			}
		}
		if f.name == "endpoint" && len(refs) == 0 && !strings.Contains(f.val, ".") {
			v.add(kind, i, part, f.name, "expected Handler.Method, such as \"Greeter.Hello\", got %q", f.val)
		}
	}
}

func (v *validator) duration(kind string, i, part int, field string, d interface{ Seconds() float64 }) {
	if d.Seconds() < 0 {
		v.add(kind, i, part, field, "expected a positive duration")
	}
}

func (v *validator) retry(kind string, i, part int, r *Retry) {
	if r == nil {
		return
	}
	if r.Attempts < 0 || r.Attempts > 10 {
		v.add(kind, i, part, "retry.attempts", "expected 0 to 10 more tries, got %d", r.Attempts)
	}
	if r.PerTryTimeout < 0 || r.Backoff < 0 || r.MaxBackoff < 0 {
		v.add(kind, i, part, "retry", "expected positive durations")
	}
}

func (v *validator) breaker(kind string, i int, field string, b *Breaker) {
	if b.OpenTimeout < 0 {
		v.add(kind, i, -1, field+".open_timeout", "expected a positive duration")
	}
}

func (v *validator) cors(kind string, i int, field string, c *CORS) {
	if c == nil {
		return
	}
	if len(c.AllowOrigins) == 0 {
		v.add(kind, i, -1, field+".allow_origins", `expected at least one origin, such as "https://app.example.com", "*.example.com" or "*"`)
	}
	for _, o := range c.AllowOrigins {
		if _, err := parseOrigin(o); err != nil {
			v.add(kind, i, -1, field+".allow_origins", "%v", err)
		}
		if o == "*" && c.AllowCredentials {
			v.add(kind, i, -1, field+".allow_credentials", `credentials with the origin "*" would let every site read answers with its visitors' cookies and tokens; list the origins (or "*.example.com" patterns) that may`)
		}
	}
	for _, m := range c.AllowMethods {
		if !isToken(m) {
			v.add(kind, i, -1, field+".allow_methods", "%q is not an HTTP method", m)
		}
	}
	for _, h := range c.AllowHeaders {
		if h != "*" && !isToken(h) {
			v.add(kind, i, -1, field+".allow_headers", "%q is not a header name", h)
		}
	}
	for _, h := range c.ExposeHeaders {
		if !isToken(h) {
			v.add(kind, i, -1, field+".expose_headers", "%q is not a header name", h)
		}
	}
	if c.MaxAge < 0 {
		v.add(kind, i, -1, field+".max_age", "expected a positive duration")
	}
}

func (v *validator) access(kind string, i int, a Access) {
	switch a.RolesMatch {
	case "", RolesAny, RolesAll:
	default:
		v.add(kind, i, -1, "roles_match", "expected %q or %q, got %q", RolesAny, RolesAll, a.RolesMatch)
	}
	for _, r := range a.RequiredRoles {
		if strings.TrimSpace(r) == "" {
			v.add(kind, i, -1, "required_roles", "expected role names, got an empty one")
		}
	}
	if len(a.RequiredRoles) > 0 && a.Auth != nil && !*a.Auth {
		v.add(kind, i, -1, "required_roles", "roles need an authenticated caller, but auth is false; expected auth = true (or left out), or no required_roles")
	}
}

func (v *validator) transform(kind string, i int, t *Transform) {
	if t == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(t.Add)) {
		raw := t.Add[k]
		if !validFieldPath(k) {
			v.add(kind, i, -1, "transform.add", "%q is not a field name or dotted path", k)
		}
		if !json.Valid(raw) {
			v.add(kind, i, -1, "transform.add", "the value of %q is not valid JSON", k)
		}
	}
	for _, k := range t.Remove {
		if !validFieldPath(k) {
			v.add(kind, i, -1, "transform.remove", "%q is not a field name or dotted path", k)
		}
	}
	for _, from := range slices.Sorted(maps.Keys(t.Rename)) {
		to := t.Rename[from]
		if !validFieldPath(from) || !validFieldPath(to) {
			v.add(kind, i, -1, "transform.rename", "%q = %q: expected field names or dotted paths", from, to)
		}
	}
}

func validFieldPath(p string) bool {
	if p == "" {
		return false
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}
