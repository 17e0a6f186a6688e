package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// h2StreamsPerConn is how many concurrent calls one HTTP/2 connection carries.
const h2StreamsPerConn = 100

// HTTP is the built-in transport: requests are POST /{Handler}.{Method} with the body
// in the negotiated codec and metadata as headers, so any HTTP client can call a
// service. Calls go over pooled keep-alive HTTP/1.1 or HTTP/2 connections; streams
// over HTTP/2.
type HTTP struct {
	opts    httpOptions
	calls   *http.Transport // request/response calls
	streams *http.Transport // bidirectional streams (HTTP/2 only)
	scheme  string

	pools sync.Map     // addr -> *httpConn
	waits waitCounters // over every pool, forgotten ones too

	connsMu sync.Mutex
	conns   map[string]*addrConns // dialed address -> its connections, while it has a connection or a pool

	healthOnce sync.Once
	stop       chan struct{}
	stopOnce   sync.Once
	workers    sync.WaitGroup
}

var _ Transport = (*HTTP)(nil)
var _ HealthReporter = (*HTTP)(nil)

// NewHTTP returns the built-in http transport.
func NewHTTP(opts ...HTTPOption) *HTTP {
	o := defaultHTTPOptions()
	for _, opt := range opts {
		opt(&o)
	}
	t := &HTTP{opts: o, scheme: "http", stop: make(chan struct{}), conns: make(map[string]*addrConns)}
	if o.clientTLS != nil {
		t.scheme = "https"
	}

	var callProtos, streamProtos http.Protocols
	switch {
	case o.clientTLS != nil && o.http2:
		callProtos.SetHTTP2(true)
	case o.clientTLS != nil:
		callProtos.SetHTTP1(true)
	case o.http2:
		callProtos.SetUnencryptedHTTP2(true)
	default:
		callProtos.SetHTTP1(true)
	}
	if o.clientTLS != nil {
		streamProtos.SetHTTP2(true)
	} else {
		streamProtos.SetUnencryptedHTTP2(true)
	}
	t.calls = t.newRoundTripper(&callProtos)
	t.streams = t.newRoundTripper(&streamProtos)
	return t
}

func (t *HTTP) newRoundTripper(protos *http.Protocols) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rt := &http.Transport{
		Protocols:           protos,
		DialContext:         t.dialCounted(dialer),
		MaxConnsPerHost:     t.opts.pool.MaxOpen,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: t.opts.pool.MaxIdle,
		IdleConnTimeout:     t.opts.pool.IdleTimeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   protos.HTTP2(),
	}
	if t.opts.clientTLS != nil {
		rt.DialTLSContext = t.dialTLS(dialer, protos.HTTP2())
	}
	return rt
}

// dialTLS dials addr and completes the TLS handshake with a copy of the client
// configuration naming the host dialed (unless it names a server itself). A
// VerifyConnection hook sees that name as ServerName even for an IP address,
// which TLS leaves out of the handshake: a hook that checks the server's
// certificate itself (to follow a CA bundle that changes) can still check that
// the certificate is the dialed address's.
func (t *HTTP) dialTLS(d *net.Dialer, h2 bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := t.dialCounted(d)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg := t.opts.clientTLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if h2 {
			cfg.NextProtos = []string{"h2"}
		} else {
			cfg.NextProtos = []string{"http/1.1"}
		}
		if verify := cfg.VerifyConnection; verify != nil {
			name := cfg.ServerName
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if cs.ServerName == "" {
					cs.ServerName = name
				}
				return verify(cs)
			}
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
}

// dialCounted dials and counts the connection open for its address until closed.
func (t *HTTP) dialCounted(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		a := t.holdConns(addr)
		a.open.Add(1)
		return &countedConn{Conn: c, t: t, a: a}, nil
	}
}

// holdConns returns the connection count of the dialed address key, kept until
// the matching dropConns.
func (t *HTTP) holdConns(key string) *addrConns {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	a := t.conns[key]
	if a == nil {
		a = &addrConns{key: key}
		t.conns[key] = a
	}
	a.refs++
	return a
}

// dropConns releases a hold on a, forgetting it once nothing holds it.
func (t *HTTP) dropConns(a *addrConns) {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	if a.refs--; a.refs == 0 {
		delete(t.conns, a.key)
	}
}

// endpoint names addr as host:port, with the scheme's default port when addr
// names none and the host name in lower case (host names are not case
// sensitive), so that "Host", "host" and "host:80" are one endpoint: one pool,
// one connection count and one line in Stats. An address that names its port
// in lower case, the usual case, is returned as it is, without allocating.
func (t *HTTP) endpoint(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && port != "" {
		if !hasUpperASCII(host) {
			return addr
		}
		return net.JoinHostPort(lowerHost(host), port)
	}
	host := strings.TrimSuffix(addr, ":") // "host:" names an empty port
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	port := "80"
	if t.scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(lowerHost(host), port)
}

// hasUpperASCII reports whether host, up to an IPv6 zone, has an upper case
// ASCII letter.
func hasUpperASCII(host string) bool {
	for i := 0; i < len(host) && host[i] != '%'; i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			return true
		}
	}
	return false
}

// lowerHost is host in lower case, up to an IPv6 zone, whose name is the
// system's and may be case sensitive.
func lowerHost(host string) string {
	if !hasUpperASCII(host) {
		return host
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		return strings.ToLower(host[:i]) + host[i:]
	}
	return strings.ToLower(host)
}

// Name returns "http".
func (t *HTTP) Name() string { return "http" }

// Listen binds addr and returns a listener serving HTTP/1.1 and HTTP/2.
func (t *HTTP) Listen(ctx context.Context, addr string) (Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport http: listen on %s: %w", addr, err)
	}
	return newHTTPListener(ln, t.opts), nil
}

// Dial returns the pooled connection for addr; it does no I/O.
func (t *HTTP) Dial(ctx context.Context, addr string) (Conn, error) {
	select {
	case <-t.stop:
		return nil, ErrClosed
	default:
	}
	c := t.live(t.endpoint(addr))
	if t.opts.healthInterval > 0 {
		t.healthOnce.Do(func() {
			t.workers.Add(1)
			go t.healthLoop()
		})
	}
	return c, nil
}

// live returns the connection to addr, an endpoint, with its current pool,
// making one when there is none or the one kept was retired: an address has one
// pool that admits calls.
func (t *HTTP) live(addr string) *httpConn {
	for {
		v, ok := t.pools.Load(addr)
		if !ok {
			perConn := 1
			if t.opts.http2 {
				perConn = h2StreamsPerConn
			}
			a := t.holdConns(addr)
			var loaded bool
			v, loaded = t.pools.LoadOrStore(addr, &httpConn{t: t, addr: addr, pool: newPool(addr, a, t.opts.pool, perConn, &t.waits)})
			if loaded {
				t.dropConns(a)
			}
		}
		c := v.(*httpConn)
		if !c.pool.isRetired() {
			return c
		}
		t.pools.CompareAndDelete(addr, c)
	}
}

// forget drops c's pool if no call holds or waits for a slot in it; a pool in
// use is kept, so a call never finds its pool gone and a second one made.
func (t *HTTP) forget(c *httpConn) bool {
	if !c.pool.retire() {
		return false
	}
	t.pools.CompareAndDelete(c.addr, c)
	t.dropConns(c.pool.conns)
	return true
}

// Healthy reports the last background health check of addr; unknown addresses are
// healthy until checked.
func (t *HTTP) Healthy(addr string) bool {
	v, ok := t.pools.Load(t.endpoint(addr))
	if !ok {
		return true
	}
	return v.(*httpConn).pool.healthy.Load()
}

// Stats returns a snapshot of every address with a pool or an open connection,
// sorted by address. Open and Idle count all of the address's connections,
// including those an earlier pool left open; an address with no pool (its Conn
// was closed or the health loop forgot it) is reported until its last
// connection closes.
func (t *HTTP) Stats() []PoolStats {
	t.connsMu.Lock()
	addrs := make([]*addrConns, 0, len(t.conns))
	for _, a := range t.conns {
		addrs = append(addrs, a)
	}
	t.connsMu.Unlock()

	var out []PoolStats
	for _, a := range addrs {
		if v, ok := t.pools.Load(a.key); ok {
			if p := v.(*httpConn).pool; p.conns == a && !p.isRetired() {
				out = append(out, p.stats())
				continue
			}
		}
		if s, ok := a.stats(t.opts.pool.MaxOpen); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// WaitTotals counts the calls that waited for a pool slot over every pool the
// transport has had. Unlike the sum over Stats, which loses a pool's counts
// when the pool is forgotten, it never goes down: what a Prometheus counter
// needs.
func (t *HTTP) WaitTotals() PoolWaits { return t.waits.snapshot() }

// Close stops health checks and closes idle connections.
func (t *HTTP) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	t.workers.Wait()
	t.calls.CloseIdleConnections()
	t.streams.CloseIdleConnections()
	return nil
}

// healthLoop checks every pooled address in the background so that no call ever
// waits on a health check; pools unused for long, with no call in them, are forgotten.
func (t *HTTP) healthLoop() {
	defer t.workers.Done()
	tick := time.NewTicker(t.opts.healthInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		forgetBefore := time.Now().Add(-2 * t.opts.pool.IdleTimeout).UnixNano()
		t.pools.Range(func(_, v any) bool {
			c := v.(*httpConn)
			if c.pool.lastUsed.Load() < forgetBefore && t.forget(c) {
				return true
			}
			c.pool.healthy.Store(t.check(c.addr))
			return true
		})
	}
}

// check asks addr's readiness endpoint.
func (t *HTTP) check(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.scheme+"://"+addr+ReadyPath, nil)
	if err != nil {
		return false
	}
	resp, err := t.calls.RoundTrip(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// tlsListener wraps ln for TLS with HTTP/2 offered through ALPN.
func tlsListener(ln net.Listener, cfg *tls.Config) net.Listener {
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return tls.NewListener(ln, cfg)
}
