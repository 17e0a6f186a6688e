package transport

import (
	"crypto/tls"
	"time"
)

// DefaultMaxBodyBytes bounds a request or response body and a stream frame (4 MiB).
const DefaultMaxBodyBytes = 4 << 20

// HTTPOption configures the built-in http transport.
type HTTPOption func(*httpOptions)

// PoolOptions bound the connections kept per remote address.
type PoolOptions struct {
	// MaxOpen caps connections per address (HTTP/1.1: also calls in flight). 0: 256.
	MaxOpen int
	// MaxIdle caps idle keep-alive connections per address. 0: 64.
	MaxIdle int
	// WaitTimeout bounds how long a call waits for a free connection before failing
	// with Unavailable. 0: 5s.
	WaitTimeout time.Duration
	// IdleTimeout closes a keep-alive connection unused this long. 0: 90s.
	IdleTimeout time.Duration
}

type httpOptions struct {
	http2          bool
	serverTLS      *tls.Config
	clientTLS      *tls.Config
	maxBodyBytes   int64
	pool           PoolOptions
	healthInterval time.Duration
	healthTimeout  time.Duration
	readHeader     time.Duration
	readBody       time.Duration // bounds reading a call's body
	idle           time.Duration // closes a keep-alive connection idle this long
}

func defaultHTTPOptions() httpOptions {
	return httpOptions{
		maxBodyBytes:   DefaultMaxBodyBytes,
		pool:           PoolOptions{MaxOpen: 256, MaxIdle: 64, WaitTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second},
		healthInterval: 5 * time.Second,
		healthTimeout:  time.Second,
		readHeader:     10 * time.Second,
		readBody:       30 * time.Second,
		idle:           2 * time.Minute, // longer than a caller's pool keeps idle connections
	}
}

// HTTP2 makes calls use HTTP/2: h2c (prior knowledge) in plain text, ALPN over TLS.
// Listeners always accept both HTTP/1.1 and HTTP/2; streams always use HTTP/2.
func HTTP2(on bool) HTTPOption { return func(o *httpOptions) { o.http2 = on } }

// ServerTLS makes listeners serve TLS with cfg (set ClientAuth for mutual TLS).
func ServerTLS(cfg *tls.Config) HTTPOption { return func(o *httpOptions) { o.serverTLS = cfg } }

// ClientTLS makes calls dial TLS with cfg.
func ClientTLS(cfg *tls.Config) HTTPOption { return func(o *httpOptions) { o.clientTLS = cfg } }

// MaxBodyBytes bounds request and response bodies and stream frames.
func MaxBodyBytes(n int64) HTTPOption {
	return func(o *httpOptions) {
		if n > 0 {
			o.maxBodyBytes = n
		}
	}
}

// Pool sets per-address pool limits; zero fields keep their defaults.
func Pool(p PoolOptions) HTTPOption {
	return func(o *httpOptions) {
		if p.MaxOpen > 0 {
			o.pool.MaxOpen = p.MaxOpen
		}
		if p.MaxIdle > 0 {
			o.pool.MaxIdle = p.MaxIdle
		}
		if p.WaitTimeout > 0 {
			o.pool.WaitTimeout = p.WaitTimeout
		}
		if p.IdleTimeout > 0 {
			o.pool.IdleTimeout = p.IdleTimeout
		}
	}
}

// HealthInterval sets how often pooled addresses are checked in the background;
// a negative value turns checks off.
func HealthInterval(d time.Duration) HTTPOption {
	return func(o *httpOptions) { o.healthInterval = d }
}
