package gateway_test

import (
	"context"
	"errors"
	"sync"

	"github.com/microhost/micro/sdk/transport"
)

// inProcess is a transport whose calls run the listening server's handler on
// the caller's goroutine: no socket, no encoding. It serves one listener, which
// every Dial reaches whatever the address (a service advertises an address of
// its own choosing). Benchmarks use it to price what the gateway does itself,
// with the hop to the backend costing next to nothing.
type inProcess struct {
	mu sync.Mutex
	l  *inProcessListener
}

func (*inProcess) Name() string { return "inprocess" }

func (t *inProcess) Listen(ctx context.Context, addr string) (transport.Listener, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l != nil {
		return nil, errors.New("inprocess: one listener only")
	}
	t.l = &inProcessListener{served: make(chan transport.Handler, 1), done: make(chan struct{})}
	return t.l, nil
}

func (t *inProcess) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	t.mu.Lock()
	l := t.l
	t.mu.Unlock()
	if l == nil {
		return nil, errors.New("inprocess: nothing listens")
	}
	select {
	case h := <-l.served:
		l.served <- h
		return inProcessConn{h}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (*inProcess) Close() error { return nil }

type inProcessListener struct {
	served chan transport.Handler // holds the handler once Serve runs
	done   chan struct{}
	once   sync.Once
}

func (*inProcessListener) Addr() string { return "127.0.0.1:1" }

func (l *inProcessListener) Serve(h transport.Handler) error {
	l.served <- h
	<-l.done
	return nil
}

func (l *inProcessListener) Shutdown(context.Context) error { return l.Close() }

func (l *inProcessListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

type inProcessConn struct{ h transport.Handler }

func (c inProcessConn) Call(ctx context.Context, req *transport.Message) (*transport.Message, error) {
	return c.h.ServeRequest(ctx, req), nil
}

func (inProcessConn) Stream(context.Context, map[string]string) (transport.Stream, error) {
	return nil, errors.New("inprocess: no streams")
}

func (inProcessConn) Close() error { return nil }
