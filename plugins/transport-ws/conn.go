package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/transport"
)

// wsConn calls one address. It keeps up to max_conns WebSocket connections
// (sessions), opened only when every open one is busy, and puts each call or
// stream on the least busy, so concurrent calls share a few connections.
type wsConn struct {
	t    *wsTransport
	addr string
	opts options

	ctx    context.Context // ends at Close: dials in progress give up
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions []*clientSession // dialing or open; removed when they end
	closed   bool

	opened atomic.Int64 // WebSocket connections established, for tests
}

var _ transport.Conn = (*wsConn)(nil)

func newConn(t *wsTransport, addr string, o options) *wsConn {
	ctx, cancel := context.WithCancel(t.ctx)
	return &wsConn{t: t, addr: addr, opts: o, ctx: ctx, cancel: cancel}
}

// Call sends req as one request frame and waits for the response frame with
// its id, or ctx. Failures to connect wrap transport.ErrNotSent.
func (c *wsConn) Call(ctx context.Context, req *transport.Message) (*transport.Message, error) {
	s, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.release(s)
	return s.call(ctx, req)
}

// Stream opens a stream and returns once the server's handler runs. ctx bounds
// the whole stream: when it ends, the stream is closed.
func (c *wsConn) Stream(ctx context.Context, header map[string]string) (transport.Stream, error) {
	s, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.openStream(ctx, header, func() { c.release(s) })
	if err != nil {
		c.release(s)
		return nil, err
	}
	return st, nil
}

// Close closes this address's connections, failing calls and streams on them,
// and forgets the address: the next Dial starts afresh. Calls on c fail from
// now on with transport.ErrNotSent.
func (c *wsConn) Close() error {
	c.mu.Lock()
	c.closed = true
	sessions := c.sessions
	c.sessions = nil
	c.mu.Unlock()
	c.cancel()
	c.t.forget(c)
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(s.close)
	}
	wg.Wait()
	return nil
}

// acquire picks a session for one call or stream, counts it busy and waits for
// it to be connected.
func (c *wsConn) acquire(ctx context.Context) (*clientSession, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: transport ws: the connection to %s was closed: %w", transport.ErrNotSent, c.addr, transport.ErrClosed)
	}
	s := c.pickLocked()
	s.load++
	c.mu.Unlock()

	select {
	case <-s.ready:
	case <-ctx.Done():
		c.release(s)
		return nil, fmt.Errorf("%w: transport ws: connecting to %s: %w", transport.ErrNotSent, c.addr, ctx.Err())
	}
	if s.dialErr != nil {
		c.release(s)
		return nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("", "transport ws: cannot connect to %s: %v", c.addr, s.dialErr))
	}
	return s, nil
}

// pickLocked returns an idle session, else a new one while under max_conns,
// else the least busy. Sessions the server is draining take nothing new.
func (c *wsConn) pickLocked() *clientSession {
	var best *clientSession
	usable := 0
	for _, s := range c.sessions {
		if s.unusable.Load() {
			continue
		}
		usable++
		if best == nil || s.load < best.load {
			best = s
		}
	}
	if best != nil && (best.load == 0 || usable >= c.opts.maxConns) {
		return best
	}
	s := newClientSession(c)
	c.sessions = append(c.sessions, s)
	go s.dial()
	return s
}

// release marks one call or stream on s finished.
func (c *wsConn) release(s *clientSession) {
	c.mu.Lock()
	s.load--
	c.mu.Unlock()
}

// remove drops s from the pool once it ended.
func (c *wsConn) remove(s *clientSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.sessions {
		if x == s {
			c.sessions = append(c.sessions[:i], c.sessions[i+1:]...)
			return
		}
	}
}

// isClosed reports whether Close was called.
func (c *wsConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
