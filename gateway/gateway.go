package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	stderrors "errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

// Gateway is the API gateway: an http.Handler that routes requests to service
// endpoints found through the registry, and optionally the server that
// listens for them. Its routes can be replaced at any time with Reload; a
// request sees either the old routes or the new ones, never a mix.
type Gateway struct {
	logf     func(msg string, args ...any)
	tel      *telemetry.Telemetry // nil: no spans, no request log
	metrics  *metrics
	gatherer prometheus.Gatherer
	breakers *breakers
	state    atomic.Pointer[state]
	draining atomic.Bool

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returns
}

// New validates cfg and builds a gateway; it does not listen (see Start, or
// use the Gateway as an http.Handler). The Registry option is required.
func New(cfg Config, opts ...Option) (*Gateway, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	g := &Gateway{logf: o.logf, tel: o.telemetry}
	if g.logf == nil {
		g.logf = func(string, ...any) {}
	}
	reg, gatherer := o.metrics, o.gatherer
	if reg == nil {
		r := newRegistry()
		reg, gatherer = r, r
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	g.metrics, g.gatherer = m, gatherer
	g.breakers = newBreakers(m)
	st, err := g.build(cfg, o)
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	return g, nil
}

// Reload validates cfg and swaps it in atomically with the dependencies opts
// give (Registry is required again); on an error the running routes stay.
// Breakers keep their state unless their settings changed. The listen address
// is not changed by a reload.
func (g *Gateway) Reload(cfg Config, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st, err := g.build(cfg, o)
	if err != nil {
		return err
	}
	g.state.Swap(st).retire()
	return nil
}

// Config returns the configuration in force, defaults filled in.
func (g *Gateway) Config() Config { return g.state.Load().cfg }

// Ready reports whether the gateway should get traffic: not draining, and the
// registry cache has completed its first watch and sync.
func (g *Gateway) Ready() bool {
	return !g.draining.Load() && g.state.Load().cache.Ready()
}

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.acquire()
	defer st.leave()
	start := time.Now()
	r, span := g.startRequest(r)
	rec := &recorder{ResponseWriter: w, st: st, r: r}
	w.Header().Set(metadata.RequestID, requestID(r))
	if isPreflight(r) {
		st.preflight(rec, r)
	} else {
		st.mux.ServeHTTP(rec, r)
	}
	route := rec.route
	if route == "" {
		route = "unmatched"
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	d := time.Since(start)
	g.metrics.server.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(status)).Observe(d.Seconds())
	g.endRequest(r, span, route, status, d)
}

// acquire returns the state in force, counted as in use so a Reload does not
// release it under the request.
func (g *Gateway) acquire() *state {
	for {
		st := g.state.Load()
		st.enter()
		if g.state.Load() == st {
			return st
		}
		st.leave() // replaced meanwhile: it may be released; take the new one
	}
}

// Start listens on the configured address and serves in the background;
// Shutdown or Close stops it.
func (g *Gateway) Start(ctx context.Context) error { return g.StartTLS(ctx, nil) }

// StartTLS is Start serving HTTPS with cfg (plain HTTP when cfg is nil). cfg
// may pick certificates per handshake, so a reloading certificate keeps
// working without a restart.
func (g *Gateway) StartTLS(ctx context.Context, cfg *tls.Config) error {
	var lc net.ListenConfig
	addr := g.Config().Listen
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	srv, done, err := g.attach(ln)
	if err != nil {
		ln.Close()
		return err
	}
	go func() {
		if err := serve(srv, ln, done); err != nil {
			g.logf("gateway stopped serving", "error", err.Error())
		}
	}()
	return nil
}

// Serve serves requests on ln until Shutdown or Close; it then returns nil.
func (g *Gateway) Serve(ln net.Listener) error {
	srv, done, err := g.attach(ln)
	if err != nil {
		return err
	}
	return serve(srv, ln, done)
}

// attach records ln and the server for it; a gateway serves one listener.
func (g *Gateway) attach(ln net.Listener) (*http.Server, chan struct{}, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		return nil, nil, fmt.Errorf("gateway: already serving on %s", g.ln.Addr())
	}
	g.ln = ln
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
	g.done = make(chan struct{})
	return g.srv, g.done, nil
}

func serve(srv *http.Server, ln net.Listener, done chan struct{}) error {
	defer close(done)
	if err := srv.Serve(ln); err != nil && !stderrors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// Addr is the address the gateway listens on, with its real port; "" before
// Start or Serve.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Drain makes /ready answer 503 so load balancers stop sending traffic, while
// requests are still served.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Shutdown drains: /ready turns 503, the listener stops accepting, and
// requests in flight finish until ctx ends. Then what the gateway created (its
// registry cache, its transport) is released.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.draining.Store(true)
	g.mu.Lock()
	srv, done := g.srv, g.done
	g.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
		<-done
	}
	g.state.Load().retire()
	return err
}

// Close stops at once and releases what the gateway created.
func (g *Gateway) Close() error {
	g.draining.Store(true)
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	g.state.Load().retire()
	return err
}

// requestID is the request's Micro-Request-Id (or X-Request-Id) when it sent
// a sane one, else a new random id.
func requestID(r *http.Request) string {
	id := r.Header.Get(metadata.RequestID)
	if id == "" {
		id = r.Header.Get(metadata.RequestIDLegacy)
	}
	if id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
