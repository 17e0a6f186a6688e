package plugin_test

import (
	"context"
	stderrors "errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// adapterWait bounds every wait in these tests.
const adapterWait = 10 * time.Second

// adapterServer is a plugin stand-in: a real gRPC server on 127.0.0.1:0 serving
// the registry and/or broker adapters, plus a client connection to it.
type adapterServer struct {
	addr   string
	srv    *grpc.Server
	cc     *grpc.ClientConn
	served chan struct{} // closed when Serve returned
	once   sync.Once
}

// startAdapterServer serves r and b (either may be nil) on a free loopback port
// and dials the server. t.Cleanup stops both.
func startAdapterServer(t testing.TB, r registry.Registry, b broker.Broker) *adapterServer {
	t.Helper()
	return startAdapterServerOn(t, "127.0.0.1:0", r, b)
}

// startAdapterServerOn is startAdapterServer listening on addr.
func startAdapterServerOn(t testing.TB, addr string, r registry.Registry, b broker.Broker) *adapterServer {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	// Stop waits for the handlers, as a dead process leaves nothing running.
	s := &adapterServer{addr: lis.Addr().String(), srv: grpc.NewServer(grpc.WaitForHandlers(true)), served: make(chan struct{})}
	if r != nil {
		pluginv1.RegisterRegistryServer(s.srv, plugin.NewRegistryServer(r))
	}
	if b != nil {
		pluginv1.RegisterBrokerServer(s.srv, plugin.NewBrokerServer(b))
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(lis)
	}()
	s.cc, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.stop()
		t.Fatalf("dial %s: %v", lis.Addr(), err)
	}
	t.Cleanup(s.stop)
	return s
}

// stop simulates the plugin process dying: the server goes away with every
// connection and stream, then the host's connection is closed. Idempotent.
func (s *adapterServer) stop() {
	s.once.Do(func() {
		s.srv.Stop()
		<-s.served
		if s.cc != nil {
			_ = s.cc.Close()
		}
	})
}

// newMemoryRegistry returns a memory registry closed at cleanup.
func newMemoryRegistry(t *testing.T, opts ...registry.MemoryOption) *registry.Memory {
	t.Helper()
	r := registry.NewMemory(opts...)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newMemoryBroker returns a memory broker closed at cleanup.
func newMemoryBroker(t *testing.T) *broker.Memory {
	t.Helper()
	b := broker.NewMemory()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// testCtx returns a context that ends at adapterWait or at cleanup.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adapterWait)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every few milliseconds until it holds or adapterWait
// passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(adapterWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", adapterWait, what)
		}
		<-tick.C
	}
}

// receive returns the next value from ch, failing the test after adapterWait.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(adapterWait):
		t.Fatalf("timed out after %v waiting for %s", adapterWait, what)
		var zero T
		return zero
	}
}

// settleGoroutines waits until the goroutine count is back to at most baseline.
func settleGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(adapterWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, want at most %d\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		<-tick.C
	}
}

// envelopeOf returns the error envelope in err's chain, failing the test when
// there is none.
func envelopeOf(t *testing.T, err error) *errors.Error {
	t.Helper()
	var env *errors.Error
	if !stderrors.As(err, &env) {
		t.Fatalf("error %v (%T) carries no *errors.Error envelope", err, err)
	}
	return env
}

// restartConn is a plugin.Conn the test switches from one server to another, as
// the host's supervisor does across a plugin restart.
type restartConn struct {
	mu      sync.Mutex
	cc      grpc.ClientConnInterface // nil while the plugin is down
	changed chan struct{}
	stopped bool
}

var _ plugin.Conn = (*restartConn)(nil)

// newRestartConn returns a Conn on cc.
func newRestartConn(cc grpc.ClientConnInterface) *restartConn {
	return &restartConn{cc: cc, changed: make(chan struct{})}
}

// Current returns the live connection or a 503 while down.
func (c *restartConn) Current() (grpc.ClientConnInterface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc == nil {
		return nil, errors.Unavailable("test-plugin", "plugin test-plugin is restarting")
	}
	return c.cc, nil
}

// Changed returns the channel closed at the next restart.
func (c *restartConn) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Stopped reports whether stop was called.
func (c *restartConn) Stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// down marks the plugin as crashed: Current fails fast from now on.
func (c *restartConn) down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cc = nil
}

// up switches to the restarted plugin's connection and announces the restart.
func (c *restartConn) up(cc grpc.ClientConnInterface) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cc = cc
	close(c.changed)
	c.changed = make(chan struct{})
}

// stop stops the plugin for good.
func (c *restartConn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cc = nil
	c.stopped = true
	close(c.changed)
	c.changed = make(chan struct{})
}
