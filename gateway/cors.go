package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/microhost/micro/sdk/metadata"
)

var (
	defaultCORSMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	defaultCORSHeaders = []string{metadata.ContentType, metadata.Auth, metadata.RequestID}
)

// origin is one AllowOrigins entry: any origin, an exact one, or a subdomain
// suffix with an optional scheme.
type origin struct {
	any    bool
	scheme string // "" matches http and https
	exact  string // "https://app.example.com" (lower case)
	suffix string // ".example.com" for "*.example.com" (lower case, with any port)
}

// parseOrigin reads one AllowOrigins entry.
func parseOrigin(s string) (origin, error) {
	if s == "*" {
		return origin{any: true}, nil
	}
	l := strings.ToLower(s)
	scheme, host, hasScheme := strings.Cut(l, "://")
	if !hasScheme {
		scheme, host = "", l
	}
	if hasScheme && scheme != "http" && scheme != "https" {
		return origin{}, fmt.Errorf("origin %q: expected the http or https scheme", s)
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if rest == "" || strings.ContainsAny(rest, "*/") {
			return origin{}, fmt.Errorf(`origin %q: expected a subdomain pattern such as "*.example.com"`, s)
		}
		return origin{scheme: scheme, suffix: "." + rest}, nil
	}
	if !hasScheme || host == "" || strings.ContainsAny(host, "*/") {
		return origin{}, fmt.Errorf(`origin %q: expected "scheme://host[:port]" such as "https://app.example.com", "*.example.com" or "*"`, s)
	}
	return origin{exact: scheme + "://" + host}, nil
}

// match reports whether the request's Origin header value is allowed.
func (o origin) match(scheme, hostport, full string) bool {
	switch {
	case o.any:
		return true
	case o.exact != "":
		return o.exact == full
	}
	if o.scheme != "" && o.scheme != scheme {
		return false
	}
	sub, ok := strings.CutSuffix(hostport, o.suffix)
	// At least one label before the suffix, and no port smuggled into it:
	// "*.example.com" matches a.example.com, not evilexample.com.
	return ok && sub != "" && !strings.ContainsAny(sub, ":@") && validHostLabels(sub)
}

func validHostLabels(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// corsPolicy is a compiled CORS config.
type corsPolicy struct {
	origins     []origin
	anyOrigin   bool
	credentials bool
	methods     string
	headers     string
	anyHeader   bool
	expose      string
	maxAge      string
}

// newCORS compiles c; nil gives nil (no CORS). c must have been validated.
func newCORS(c *CORS) *corsPolicy {
	if c == nil {
		return nil
	}
	p := &corsPolicy{credentials: c.AllowCredentials}
	for _, s := range c.AllowOrigins {
		o, _ := parseOrigin(s)
		p.origins = append(p.origins, o)
		p.anyOrigin = p.anyOrigin || o.any
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = defaultCORSMethods
	}
	p.methods = strings.Join(methods, ", ")
	headers := c.AllowHeaders
	if len(headers) == 0 {
		headers = defaultCORSHeaders
	}
	for _, h := range headers {
		p.anyHeader = p.anyHeader || h == "*"
	}
	p.headers = strings.Join(headers, ", ")
	p.expose = strings.Join(c.ExposeHeaders, ", ")
	if c.MaxAge > 0 {
		p.maxAge = strconv.Itoa(int(c.MaxAge.Seconds()))
	}
	return p
}

// allowed reports whether the Origin value may read responses.
func (p *corsPolicy) allowed(o string) bool {
	u, err := url.Parse(strings.ToLower(o))
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	full := u.Scheme + "://" + u.Host
	for _, allowed := range p.origins {
		if allowed.match(u.Scheme, u.Host, full) {
			return true
		}
	}
	return false
}

// apply sets the headers of an actual (non-preflight) cross-origin response.
func (p *corsPolicy) apply(h http.Header, o string) {
	h.Add("Vary", "Origin")
	if o == "" || !p.allowed(o) {
		return
	}
	p.allowOrigin(h, o)
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
}

func (p *corsPolicy) allowOrigin(h http.Header, o string) {
	if p.anyOrigin && !p.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", o)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers an OPTIONS request carrying Access-Control-Request-Method:
// 204 with the allowed methods and headers, or 403 for an origin not allowed.
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	o := r.Header.Get("Origin")
	if o == "" || !p.allowed(o) {
		writeProblem(w, r, http.StatusForbidden, "gateway", fmt.Sprintf("origin %q is not allowed by this route's CORS policy", o))
		return
	}
	p.allowOrigin(h, o)
	h.Set("Access-Control-Allow-Methods", p.methods)
	if p.anyHeader {
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		}
	} else {
		h.Set("Access-Control-Allow-Headers", p.headers)
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

// isPreflight reports whether r is a CORS preflight: OPTIONS with
// Access-Control-Request-Method (and only then).
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}
