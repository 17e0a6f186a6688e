package gateway

import (
	"encoding/json"
	"time"
)

// Defaults applied where a Config leaves a value zero.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultMaxBody         = 4 << 20          // request body limit, bytes
	DefaultTimeout         = 10 * time.Second // per route, all tries together
	DefaultBackoff         = 25 * time.Millisecond
	DefaultMaxBackoff      = 250 * time.Millisecond
	DefaultBreakerFailures = 5                // consecutive failures that open a breaker
	DefaultBreakerOpen     = 30 * time.Second // how long a breaker stays open
	DefaultBreakerHalfOpen = 1                // trial calls (and successes needed) when half-open
	DefaultDocsTitle       = "Microhost API"
	DefaultDocsVersion     = "1.0.0"
)

// Config is what a Gateway serves: routes and aggregations, CORS, backend
// policies, breaker and docs settings. host/config decodes it from micro.hcl's
// gateway block; library users build it in Go. Zero values take the defaults.
type Config struct {
	// Listen is the address Start binds (default DefaultListen).
	Listen string `json:"listen"`
	// MaxBody bounds a request body in bytes (default DefaultMaxBody).
	MaxBody int64 `json:"max_body"`
	// Timeout is the default per-route deadline, every try included.
	Timeout time.Duration `json:"timeout"`
	// CORS applies to every route that has none of its own; nil means no CORS.
	CORS *CORS `json:"cors,omitempty"`
	// Breaker is the circuit breaker every backend gets unless its Backend sets one.
	Breaker Breaker `json:"breaker"`
	// Backends holds per-service policies, by service name.
	Backends []*Backend `json:"backends,omitempty"`
	// Routes proxy a method and path to one service endpoint.
	Routes []*Route `json:"routes,omitempty"`
	// Aggregates fan one request out to several endpoints and merge the answers.
	Aggregates []*Aggregate `json:"aggregates,omitempty"`
	// Docs configures the OpenAPI document and the docs page.
	Docs Docs `json:"docs"`
	// Auth makes every route and aggregate that does not say otherwise require
	// a verified bearer token (see the Auth option).
	Auth bool `json:"auth,omitempty"`
}

// Route proxies requests matching Pattern to Service's Endpoint.
//
// The backend receives one object: the request body (JSON or msgpack, {} when
// empty), then each query parameter not already in it, then each path
// parameter, which overrides the body. Query and path values are strings,
// converted to a number, boolean or array when the endpoint's published request
// schema says so.
type Route struct {
	// Pattern is a net/http ServeMux pattern without a host: "[METHOD ]/path",
	// where a segment may be {name} and the last one {name...} (the rest of the
	// path). Without a method the route takes every method.
	Pattern string `json:"pattern"`
	// Service is the service name; it may use path parameters, as "{svc}".
	Service string `json:"service"`
	// Endpoint is the Handler.Method to call; it may use path parameters.
	Endpoint string `json:"endpoint"`
	// Timeout bounds the route, every try included (default Config.Timeout).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retry retries failed calls; nil makes one try.
	Retry *Retry `json:"retry,omitempty"`
	// CORS replaces Config.CORS for this route.
	CORS *CORS `json:"cors,omitempty"`
	// Transform rewrites successful JSON or msgpack responses.
	Transform *Transform `json:"transform,omitempty"`
	// Access says who may call the route.
	Access
	// Summary and Description document the operation in OpenAPI.
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	// Request and Response, when set, are Go values whose types document the
	// operation, taking precedence over the schemas the service published.
	Request  any `json:"-"`
	Response any `json:"-"`
}

// Aggregate answers one request by calling every Part in parallel under one
// deadline and merging the answers under the parts' names, in Parts order.
type Aggregate struct {
	// Pattern is a ServeMux pattern, as for Route.
	Pattern string `json:"pattern"`
	// Timeout bounds the whole fan-out (default Config.Timeout).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Partial is what happens when a part fails: PartialFail (the default)
	// fails the request with that part's error; PartialAllow answers with the
	// parts that succeeded and names the others in the Micro-Failed-Parts header.
	Partial string `json:"partial"`
	// Parts are the calls, each merged under its Name.
	Parts []*Part `json:"parts"`
	// CORS replaces Config.CORS for this route.
	CORS *CORS `json:"cors,omitempty"`
	// Access says who may call the aggregate.
	Access
	// Summary and Description document the operation in OpenAPI.
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
}

// Access says whether a route needs an authenticated caller and which roles.
// The caller is authenticated before its roles are looked at: no or a bad
// token is a 401 with WWW-Authenticate, missing roles a 403.
type Access struct {
	// Auth overrides Config.Auth: nil inherits it, true requires a verified
	// bearer token, false lets anonymous callers through.
	Auth *bool `json:"auth,omitempty"`
	// RequiredRoles are roles the caller must hold (from the token's roles
	// claim, or bound to its subject); they imply Auth.
	RequiredRoles []string `json:"required_roles,omitempty"`
	// RolesMatch is RolesAny (the default: one of RequiredRoles suffices) or
	// RolesAll.
	RolesMatch string `json:"roles_match,omitempty"`
}

// How RequiredRoles are matched.
const (
	RolesAny = "any"
	RolesAll = "all"
)

// Partial-result policies of an Aggregate.
const (
	PartialFail  = "fail"
	PartialAllow = "partial"
)

// Part is one call of an Aggregate; it receives the same request object a Route would.
type Part struct {
	// Name is the key the part's answer is merged under.
	Name     string `json:"name"`
	Service  string `json:"service"`
	Endpoint string `json:"endpoint"`
	// Timeout bounds this part within the aggregate's deadline (0: the deadline).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retry retries this part's failed calls; nil makes one try.
	Retry *Retry `json:"retry,omitempty"`
}

// Retry says how failed backend calls are tried again. A call that never left
// the gateway is always retried; others only for idempotent HTTP methods (GET,
// HEAD, OPTIONS, PUT, DELETE) or endpoints registered idempotent, unless
// NonIdempotent opts in. Only unavailable, timed-out and bad-gateway failures
// are retried, never once the deadline leaves no time, and never after the
// response started: the gateway answers only once a try has finished.
type Retry struct {
	// Attempts is how many more tries may follow the first.
	Attempts int `json:"attempts"`
	// PerTryTimeout bounds each try inside the route's deadline (0: none).
	PerTryTimeout time.Duration `json:"per_try_timeout,omitempty"`
	// Backoff and MaxBackoff bound the jittered wait before try n:
	// a random time up to min(Backoff·2ⁿ⁻¹, MaxBackoff).
	Backoff    time.Duration `json:"backoff,omitempty"`
	MaxBackoff time.Duration `json:"max_backoff,omitempty"`
	// NonIdempotent allows retrying POST and PATCH calls that may have reached
	// the backend.
	NonIdempotent bool `json:"non_idempotent,omitempty"`
}

// Breaker configures a circuit breaker (github.com/sony/gobreaker/v2). Server
// errors (5xx), timeouts and connection failures count as failures; client
// errors (4xx) do not. An open breaker answers 503 with Retry-After.
type Breaker struct {
	// Disabled turns the breaker off.
	Disabled bool `json:"disabled,omitempty"`
	// Failures is how many consecutive failures open it (default 5).
	Failures uint32 `json:"failures"`
	// OpenTimeout is how long it stays open before letting trial calls through (default 30s).
	OpenTimeout time.Duration `json:"open_timeout"`
	// HalfOpenRequests is how many trial calls may run when half-open; that many
	// successes close it again (default 1).
	HalfOpenRequests uint32 `json:"half_open_requests"`
}

// Backend is the policy for one service: which of its endpoints the gateway
// may call, and its breaker.
type Backend struct {
	// Service is the service name.
	Service string `json:"service"`
	// Allow, when not empty, lists the only endpoints that may be called
	// ("Handler.Method"; path.Match globs such as "Greeter.*").
	Allow []string `json:"allow,omitempty"`
	// Block lists endpoints that may not be called, even when allowed.
	Block []string `json:"block,omitempty"`
	// BlockedStatus is the status a refused call gets: 403 (default) or 404.
	BlockedStatus int `json:"blocked_status"`
	// Breaker replaces Config.Breaker for this service.
	Breaker *Breaker `json:"breaker,omitempty"`
}

// CORS is a cross-origin resource sharing policy.
type CORS struct {
	// AllowOrigins lists the origins allowed: exact ("https://app.example.com"),
	// "*" for any, or a subdomain pattern "*.example.com" or
	// "https://*.example.com", which matches a.example.com and a.b.example.com
	// but neither example.com nor evilexample.com.
	AllowOrigins []string `json:"allow_origins"`
	// AllowMethods answers preflights (default GET, HEAD, POST, PUT, PATCH, DELETE).
	AllowMethods []string `json:"allow_methods,omitempty"`
	// AllowHeaders answers preflights (default Content-Type, Authorization,
	// Micro-Request-Id); "*" allows whatever is asked.
	AllowHeaders []string `json:"allow_headers,omitempty"`
	// ExposeHeaders lets scripts read these response headers.
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// AllowCredentials allows cookies and auth; it cannot go with the origin "*".
	AllowCredentials bool `json:"allow_credentials,omitempty"`
	// MaxAge lets browsers cache a preflight answer.
	MaxAge time.Duration `json:"max_age,omitempty"`
}

// Transform rewrites a successful response object, in this order: Remove,
// Rename, Add. Field names may be dotted paths into nested objects ("user.id").
type Transform struct {
	// Add sets fields to JSON values, replacing what is there.
	Add map[string]json.RawMessage `json:"add,omitempty"`
	// Remove deletes fields.
	Remove []string `json:"remove,omitempty"`
	// Rename moves fields: old name → new name.
	Rename map[string]string `json:"rename,omitempty"`
}

// Docs configures the generated OpenAPI document (/api/docs/openapi.json) and
// the docs page (/api/docs).
type Docs struct {
	// Disabled serves neither.
	Disabled bool `json:"disabled,omitempty"`
	// Title and Version fill the document's info object.
	Title   string `json:"title"`
	Version string `json:"version"`
}

// withDefaults returns a copy of c with every zero value defaulted; the
// routes themselves are shared, not copied.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	c.Breaker = c.Breaker.withDefaults()
	if c.Docs.Title == "" {
		c.Docs.Title = DefaultDocsTitle
	}
	if c.Docs.Version == "" {
		c.Docs.Version = DefaultDocsVersion
	}
	return c
}

func (b Breaker) withDefaults() Breaker {
	if b.Failures == 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.OpenTimeout <= 0 {
		b.OpenTimeout = DefaultBreakerOpen
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = DefaultBreakerHalfOpen
	}
	return b
}

func (r Retry) withDefaults() Retry {
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	return r
}
