package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// pattern is a parsed route pattern: "[METHOD ]/path" as net/http's ServeMux
// reads it, without a host.
type pattern struct {
	raw    string
	method string   // "" for every method
	path   string   // "/greet/{name}"
	params []string // wildcard names in path order; the last may be a catch-all
	rest   bool     // the last wildcard is {name...}
}

// parsePattern checks a route pattern and returns its parts. It accepts what
// ServeMux accepts minus hosts, and names every problem.
func parsePattern(s string) (*pattern, error) {
	p := &pattern{raw: s}
	if !utf8.ValidString(s) {
		// Its path is the route's metrics label, which must be UTF-8.
		return nil, fmt.Errorf("the pattern is not valid UTF-8; write other bytes percent-encoded, as %%FF")
	}
	rest := s
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		p.method, rest = s[:i], strings.TrimLeft(s[i:], " \t")
		if !isToken(p.method) {
			return nil, fmt.Errorf("method %q is not an HTTP method token", p.method)
		}
	}
	if rest == "" || rest[0] != '/' {
		return nil, fmt.Errorf(`the path must start with "/" (a pattern is "[METHOD ]/path", no host), got %q`, rest)
	}
	p.path = rest
	segs := strings.Split(rest[1:], "/")
	seen := map[string]bool{}
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		if seg == "{$}" {
			if i != len(segs)-1 {
				return nil, fmt.Errorf("{$} must be the last segment")
			}
			continue
		}
		if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			return nil, fmt.Errorf("segment %q: a wildcard is a whole segment, {name} or {name...}", seg)
		}
		name := seg[1 : len(seg)-1]
		if n, ok := strings.CutSuffix(name, "..."); ok {
			if i != len(segs)-1 {
				return nil, fmt.Errorf("segment %q: {%s} must be the last segment", seg, name)
			}
			name, p.rest = n, true
		}
		if !isIdent(name) {
			return nil, fmt.Errorf("segment %q: wildcard name %q is not a Go identifier", seg, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("wildcard {%s} appears twice", name)
		}
		seen[name] = true
		p.params = append(p.params, name)
	}
	// ServeMux is the authority on what it accepts.
	if err := tryHandle(http.NewServeMux(), s); err != nil {
		return nil, err
	}
	return p, nil
}

// label is the route template as telemetry records it: the path part only.
func (p *pattern) label() string { return p.path }

// has reports whether name is one of the pattern's wildcards.
func (p *pattern) has(name string) bool {
	for _, n := range p.params {
		if n == name {
			return true
		}
	}
	return false
}

// tryHandle registers a no-op handler for pat on mux and turns ServeMux's panic
// on a bad or conflicting pattern into an error.
func tryHandle(mux *http.ServeMux, pat string) error {
	return tryRegister(mux, pat, http.NotFoundHandler())
}

// tryRegister registers h for pat, turning ServeMux's panic into an error.
func tryRegister(mux *http.ServeMux, pat string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// ServeMux names where each pattern was registered: noise here.
			err = fmt.Errorf("%s", registeredAt.ReplaceAllString(strings.ReplaceAll(fmt.Sprint(p), "\n", " "), ""))
		}
	}()
	mux.Handle(pat, h)
	return nil
}

// registeredAt matches the source positions in ServeMux's conflict messages.
var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// templateParams returns the {name} references in a service or endpoint template.
func templateParams(s string) ([]string, error) {
	var names []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf(`unbalanced "}"`)
			}
			return names, nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf(`unbalanced "{"`)
		}
		name := s[i+1 : i+j]
		if !isIdent(name) {
			return nil, fmt.Errorf("{%s} is not a path parameter reference", name)
		}
		names = append(names, name)
		s = s[i+j+1:]
	}
}

// expand replaces {name} references with the request's path values.
func expand(tmpl string, r *http.Request) string {
	if strings.IndexByte(tmpl, '{') < 0 {
		return tmpl
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		b.WriteString(tmpl[:i])
		b.WriteString(r.PathValue(tmpl[i+1 : i+j]))
		tmpl = tmpl[i+j+1:]
	}
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
