package main

import (
	"context"
	stderrors "errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/microhost/micro/sdk/transport"
)

// Paths a ws listener answers besides Path, as the http transport's.
const (
	healthPath = "/healthz" // liveness: 200 while the process serves
	readyPath  = "/readyz"  // readiness: 503 once draining
)

// Why a listener ended its sessions.
var (
	errListenerClosed = stderrors.New("transport ws: listener closed")
	errDrained        = stderrors.New("transport ws: listener shut down")
)

// listener serves HTTP on a bound socket and upgrades requests on Path; each
// WebSocket connection is a serverSession. It counts calls and streams in
// flight across sessions so Shutdown can wait for them.
type listener struct {
	ln   net.Listener
	srv  *http.Server
	opts options
	h    transport.Handler

	mu       sync.Mutex
	sessions map[*serverSession]struct{}
	inflight int           // calls and streams being handled
	draining bool          // Shutdown or Close began: nothing new is taken
	idle     chan struct{} // closed when inflight drops to zero while draining
	closed   chan struct{} // closed by Close
	isClosed bool

	accepted atomic.Int64 // WebSocket connections accepted, for tests
}

var _ transport.Listener = (*listener)(nil)

func newListener(ln net.Listener, o options) *listener {
	l := &listener{ln: ln, opts: o, sessions: make(map[*serverSession]struct{}), closed: make(chan struct{})}
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
	return l
}

// Addr returns the bound address with its real port.
func (l *listener) Addr() string { return l.ln.Addr().String() }

// Serve accepts connections until Shutdown or Close.
func (l *listener) Serve(h transport.Handler) error {
	l.h = h
	if err := l.srv.Serve(l.ln); err != nil && !stderrors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections, refuses new calls and streams on open
// ones (callers see transport.ErrNotSent and go elsewhere), waits until those
// in flight finish or ctx ends, then closes every connection. Past ctx it
// closes at once and returns ctx's error.
func (l *listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.draining = true
	idle := l.idle
	if l.inflight > 0 && idle == nil {
		idle = make(chan struct{})
		l.idle = idle
	}
	l.mu.Unlock()

	err := l.srv.Shutdown(ctx) // handshakes in progress; upgraded connections are ours
	_ = l.ln.Close()
	if idle != nil {
		select {
		case <-idle:
		case <-l.closed:
			return nil
		case <-ctx.Done():
			_ = l.Close()
			return ctx.Err()
		}
	}

	// Nothing is in flight: going-away tells callers that whatever they sent
	// since was not run.
	var wg sync.WaitGroup
	for _, s := range l.snapshot() {
		wg.Go(func() { s.link.closeGracefully(websocket.StatusGoingAway, "shutting down", errDrained) })
	}
	closed := make(chan struct{})
	go func() {
		wg.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		_ = l.Close()
		return ctx.Err()
	}
	return err
}

// Close stops at once: the socket is released (also before Serve), and every
// connection is cut, cancelling the contexts of calls and streams in flight.
func (l *listener) Close() error {
	l.mu.Lock()
	l.draining = true
	if !l.isClosed {
		l.isClosed = true
		close(l.closed)
	}
	l.mu.Unlock()
	err := l.srv.Close()
	_ = l.ln.Close() // http.Server closes only listeners Serve has started using
	for _, s := range l.snapshot() {
		s.link.close(errListenerClosed)
	}
	if stderrors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// ServeHTTP upgrades requests on Path and answers health checks.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case Path:
		l.upgrade(w, r)
	case healthPath:
		w.WriteHeader(http.StatusOK)
	case readyPath:
		if l.isDraining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "not found: this is a Microhost ws transport; open a WebSocket to "+Path+" with subprotocol "+subprotocol, http.StatusNotFound)
	}
}

// upgrade turns the request into a WebSocket connection and serves it until it
// ends.
func (l *listener) upgrade(w http.ResponseWriter, r *http.Request) {
	if l.isDraining() {
		http.Error(w, "shutting down: connect to another instance", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    []string{subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept answered the request
	}
	if ws.Subprotocol() != subprotocol {
		_ = ws.Close(websocket.StatusPolicyViolation, "open the WebSocket with subprotocol "+subprotocol)
		return
	}
	s := newServerSession(l, ws)
	if !l.track(s) {
		// Shutdown began during the handshake: going-away says nothing was run.
		s.link.closeGracefully(websocket.StatusGoingAway, "shutting down", errDrained)
		return
	}
	defer l.untrack(s)
	l.accepted.Add(1)
	s.serve()
}

func (l *listener) isDraining() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.draining
}

// begin counts a new call or stream in flight; false while draining.
func (l *listener) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return false
	}
	l.inflight++
	return true
}

// hold counts more work for a call or stream already in flight.
func (l *listener) hold() {
	l.mu.Lock()
	l.inflight++
	l.mu.Unlock()
}

// done ends what begin or hold counted.
func (l *listener) done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if l.inflight == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
}

func (l *listener) track(s *serverSession) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return false
	}
	l.sessions[s] = struct{}{}
	return true
}

func (l *listener) untrack(s *serverSession) {
	l.mu.Lock()
	delete(l.sessions, s)
	l.mu.Unlock()
}

func (l *listener) snapshot() []*serverSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*serverSession, 0, len(l.sessions))
	for s := range l.sessions {
		out = append(out, s)
	}
	return out
}
