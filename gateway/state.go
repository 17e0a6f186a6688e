package gateway

import (
	"fmt"
	"net/http"
	"path"
	"sync"
	"sync/atomic"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// state is one configuration compiled for serving: the router, the compiled
// routes and the dependencies they call through. It never changes once built;
// Reload replaces it whole.
type state struct {
	cfg      Config
	mux      *http.ServeMux
	metrics  *metrics
	breakers *breakers
	g        *Gateway

	cache     *registry.Cache
	transport transport.Transport
	codecs    *codec.Set
	selector  registry.Selector
	types     map[string]endpointTypes
	owned     []func() // releases what this state created
	once      sync.Once
	active    atomic.Int64 // requests being served with this state
	retired   atomic.Bool  // replaced: release once the last request leaves

	cors     *corsPolicy            // the global policy, nil for none
	corsBy   map[string]*corsPolicy // pattern → the policy that applies to it
	backends map[string]*backendPolicy
	routes   []*routeHandler
	aggs     []*aggregateHandler
	schemas  sync.Map // request JSON Schema text → *paramTypes
}

// build validates cfg and compiles it with the dependencies in o.
func (g *Gateway) build(cfg Config, o options) (*state, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.registry == nil {
		return nil, fmt.Errorf("gateway: no registry: pass gateway.Registry(...)")
	}
	cfg = cfg.withDefaults()
	routeAccess := make([]*access, len(cfg.Routes))
	aggAccess := make([]*access, len(cfg.Aggregates))
	for i, r := range cfg.Routes {
		var err error
		if routeAccess[i], err = newAccess(r.Access, cfg.Auth, o.auth, r.Pattern); err != nil {
			return nil, err
		}
	}
	for i, a := range cfg.Aggregates {
		var err error
		if aggAccess[i], err = newAccess(a.Access, cfg.Auth, o.auth, a.Pattern); err != nil {
			return nil, err
		}
	}
	st := &state{
		cfg: cfg, mux: http.NewServeMux(), metrics: g.metrics, breakers: g.breakers, g: g,
		transport: o.transport, codecs: o.codecs, selector: o.selector, types: o.types,
		cors: newCORS(cfg.CORS), corsBy: map[string]*corsPolicy{}, backends: map[string]*backendPolicy{},
	}
	switch r := o.registry.(type) {
	case *registry.Cache:
		st.cache = r
	default:
		c := registry.NewCache(r)
		st.cache = c
		st.owned = append(st.owned, func() { c.Close() })
	}
	if st.transport == nil {
		t := transport.NewHTTP()
		st.transport = t
		st.owned = append(st.owned, func() { t.Close() })
	}
	if st.codecs == nil {
		st.codecs = codec.DefaultSet()
	}
	if st.selector == nil {
		st.selector = registry.RoundRobin()
	}
	for _, b := range cfg.Backends {
		st.backends[b.Service] = newBackendPolicy(b)
	}
	for i, r := range cfg.Routes {
		h := newRouteHandler(st, r, routeAccess[i])
		st.routes = append(st.routes, h)
		st.handle(r.Pattern, h.pat.label(), r.CORS, h)
	}
	for i, a := range cfg.Aggregates {
		h := newAggregateHandler(st, a, aggAccess[i])
		st.aggs = append(st.aggs, h)
		st.handle(a.Pattern, h.pat.label(), a.CORS, h)
	}
	st.handleBuiltins()
	return st, nil
}

// handle registers h for pattern, recording the route template and applying
// the route's CORS policy (or the global one).
func (st *state) handle(pattern, label string, cors *CORS, h http.Handler) {
	policy := st.cors
	if cors != nil {
		policy = newCORS(cors)
	}
	st.corsBy[pattern] = policy
	// Validate checked that no pattern is bad or conflicting.
	_ = tryRegister(st.mux, pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = label
		}
		if policy != nil {
			policy.apply(w.Header(), r.Header.Get("Origin"))
		}
		h.ServeHTTP(w, r)
	}))
}

// enter counts a request served with st; leave uncounts it and releases a
// retired state after its last request.
func (st *state) enter() { st.active.Add(1) }

func (st *state) leave() {
	if st.active.Add(-1) == 0 && st.retired.Load() {
		st.release()
	}
}

// retire marks a replaced state, releasing it now if no request uses it.
func (st *state) retire() {
	st.retired.Store(true)
	if st.active.Load() == 0 {
		st.release()
	}
}

// release frees what the state created; safe to call more than once.
func (st *state) release() {
	st.once.Do(func() {
		for _, f := range st.owned {
			f()
		}
	})
}

// breaker returns service's breaker, or nil when breakers are off for it.
func (st *state) breaker(service string) *breaker {
	s := st.cfg.Breaker
	if b := st.backends[service]; b != nil && b.breaker != nil {
		s = *b.breaker
	}
	return st.breakers.get(service, s)
}

// preflight answers a CORS preflight with the policy of the route the
// requested method would reach; without a policy it is routed as usual.
func (st *state) preflight(w *recorder, r *http.Request) {
	probe := r.Clone(r.Context())
	probe.Method = r.Header.Get("Access-Control-Request-Method")
	_, pattern := st.mux.Handler(probe)
	policy := st.cors
	if p, ok := st.corsBy[pattern]; ok {
		policy = p
	}
	if policy == nil {
		st.mux.ServeHTTP(w, r)
		return
	}
	w.route = "preflight"
	policy.preflight(w, r)
}

// backendPolicy is a compiled Backend.
type backendPolicy struct {
	allow, block []string
	status       int
	breaker      *Breaker
}

func newBackendPolicy(b *Backend) *backendPolicy {
	p := &backendPolicy{allow: b.Allow, block: b.Block, status: b.BlockedStatus}
	if p.status == 0 {
		p.status = http.StatusForbidden
	}
	if b.Breaker != nil {
		s := b.Breaker.withDefaults()
		p.breaker = &s
	}
	return p
}

// check returns the error for a call to service's endpoint the policy
// refuses, or nil.
func (st *state) check(service, endpoint string) *errors.Error {
	p := st.backends[service]
	if p == nil {
		return nil
	}
	allowed := len(p.allow) == 0 || matchAny(p.allow, endpoint)
	if allowed && !matchAny(p.block, endpoint) {
		return nil
	}
	return p.refuse(service, endpoint)
}

// refuse is the answer to a call the policy does not let through.
func (p *backendPolicy) refuse(service, endpoint string) *errors.Error {
	if p.status == http.StatusNotFound {
		return errors.NotFound("gateway", "no route to %s %s", service, endpoint)
	}
	return errors.Forbidden("gateway", "calling %s %s through the gateway is not allowed", service, endpoint)
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// recorder captures the status and route of a response for metrics, and
// turns ServeMux's plain-text 404 and 405 answers into problem documents
// (keeping its Allow header).
type recorder struct {
	http.ResponseWriter
	st      *state
	r       *http.Request
	route   string // the matched template; "" when no route matched
	status  int
	swallow bool // a plain-text mux error is being replaced: drop its body
}

func (w *recorder) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.route == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.swallow = true
		if w.st.cors != nil {
			w.st.cors.apply(w.Header(), w.r.Header.Get("Origin"))
		}
		detail := fmt.Sprintf("no route for %s %s", w.r.Method, w.r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			detail = fmt.Sprintf("%s is not allowed on %s; allowed: %s", w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))
		}
		writeProblem(&rawWriter{w.ResponseWriter}, w.r, code, "gateway", detail)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rawWriter writes past the recorder.
type rawWriter struct{ http.ResponseWriter }
