package gateway_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// keepingTransport answers the first call only when its context ends, and
// keeps that call's message, as a transport does that still has it queued
// or half written when its caller gave up (the plugin transport's Calls
// stream, say). Every later call succeeds.
type keepingTransport struct {
	mu      sync.Mutex
	calls   int
	kept    map[string]string // the first call's header, as the transport holds it
	sent    map[string]string // a copy of it, as it was when sent
	changed map[string]string // the kept header as a later call found it, when it had changed
}

func (k *keepingTransport) Name() string { return "keeping" }
func (k *keepingTransport) Listen(context.Context, string) (transport.Listener, error) {
	return nil, transport.ErrClosed
}
func (k *keepingTransport) Dial(context.Context, string) (transport.Conn, error) {
	return keepingConn{k}, nil
}
func (k *keepingTransport) Close() error { return nil }

type keepingConn struct{ k *keepingTransport }

func (c keepingConn) Call(ctx context.Context, req *transport.Message) (*transport.Message, error) {
	k := c.k
	k.mu.Lock()
	k.calls++
	first := k.calls == 1
	if first {
		k.kept, k.sent = req.Header, maps.Clone(req.Header)
	} else if k.changed == nil && !maps.Equal(k.kept, k.sent) {
		k.changed = maps.Clone(k.kept)
	}
	k.mu.Unlock()
	if first {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &transport.Message{Header: map[string]string{metadata.ContentType: "application/json"}, Body: []byte(`{}`)}, nil
}

func (keepingConn) Stream(context.Context, map[string]string) (transport.Stream, error) {
	return nil, transport.ErrClosed
}
func (keepingConn) Close() error { return nil }

// A try that timed out may still be in its transport: the next try must not
// rewrite the header it was given (its deadline, its trace context).
func TestRetryLeavesATimedOutTrysHeaderAlone(t *testing.T) {
	reg := registry.NewMemory()
	svc := &registry.Service{Name: "slow", Version: "1", Nodes: []*registry.Node{{ID: "slow-1", Address: "127.0.0.1:1"}}}
	if err := reg.Register(context.Background(), svc, 0); err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := &keepingTransport{}
	cfg := gateway.Config{Breaker: gateway.Breaker{Disabled: true}, Routes: []*gateway.Route{{
		Pattern: "GET /slow", Service: "slow", Endpoint: "Slow.Get", Timeout: 10 * time.Second,
		Retry: &gateway.Retry{Attempts: 1, PerTryTimeout: 50 * time.Millisecond, Backoff: time.Millisecond},
	}}}
	_, base := startGateway(t, cfg, reg, gateway.Transport(tr),
		gateway.Telemetry(telemetry.New(telemetry.WithTracerProvider(tp))))

	if r := do(t, "GET", base+"/slow", ""); r.status != 200 {
		t.Fatalf("status %d, want 200 from the second try: %s", r.status, r.body)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.calls != 2 {
		t.Fatalf("%d calls, want 2", tr.calls)
	}
	if tr.changed != nil {
		t.Fatalf("the timed-out try's header changed under its transport:\nsent  %v\nlater %v", tr.sent, tr.changed)
	}
}
