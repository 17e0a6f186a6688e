package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/microhost/micro/sdk/transport"
)

// wsTransport is the WebSocket transport: Listen serves HTTP and upgrades
// requests on Path; Dial returns the address's Conn, which multiplexes calls and
// streams over up to max_conns WebSocket connections.
type wsTransport struct {
	ctx    context.Context // ends at Close: dials in progress give up
	cancel context.CancelFunc
	client *http.Client // for WebSocket handshakes: no proxy from the environment

	mu     sync.Mutex
	opts   options
	conns  map[string]*wsConn
	closed bool
}

var _ transport.Transport = (*wsTransport)(nil)

func newWS(o options) *wsTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsTransport{
		ctx:    ctx,
		cancel: cancel,
		client: &http.Client{Transport: &http.Transport{
			DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			// Upgraded connections leave the pool; a refused handshake's is not kept.
			MaxIdleConnsPerHost: -1,
		}},
		opts:  o,
		conns: make(map[string]*wsConn),
	}
}

// Name returns "ws".
func (t *wsTransport) Name() string { return "ws" }

// Configure applies the plugin's config block to listeners and addresses used
// from now on; the host calls it once, before any.
func (t *wsTransport) Configure(_ context.Context, raw json.RawMessage) error {
	o, err := parseConfig(raw)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.opts = o
	t.mu.Unlock()
	return nil
}

func (t *wsTransport) options() options {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.opts
}

// Listen binds addr and returns a listener upgrading requests on Path.
func (t *wsTransport) Listen(ctx context.Context, addr string) (transport.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport ws: listen on %s: %w", addr, err)
	}
	return newListener(ln, t.options()), nil
}

// Dial returns the shared Conn for addr; it does no I/O, connections open when
// calls need them.
func (t *wsTransport) Dial(_ context.Context, addr string) (transport.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrClosed
	}
	if c, ok := t.conns[addr]; ok {
		return c, nil
	}
	c := newConn(t, addr, t.opts)
	t.conns[addr] = c
	return c, nil
}

// forget drops c from the table if it is still addr's Conn.
func (t *wsTransport) forget(c *wsConn) {
	t.mu.Lock()
	if t.conns[c.addr] == c {
		delete(t.conns, c.addr)
	}
	t.mu.Unlock()
}

// Close closes every address's connections; Dial fails from now on. Listeners
// are closed by their own Close.
func (t *wsTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = map[string]*wsConn{}
	t.mu.Unlock()
	t.cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
	t.client.CloseIdleConnections()
	return nil
}
