package gateway_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// TestNodeChoice checks which node a try goes to: a retry to a node not tried
// yet, never to one the transport finds unhealthy while another is there, but
// to an unhealthy one rather than to none.
func TestNodeChoice(t *testing.T) {
	reg := registry.NewMemory()
	if err := reg.Register(context.Background(), &registry.Service{Name: "echo", Nodes: []*registry.Node{
		{ID: "a", Address: "a"}, {ID: "b", Address: "b"},
	}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	tr := &scriptedTransport{}
	cfg := gateway.Config{Breaker: gateway.Breaker{Disabled: true}, Routes: []*gateway.Route{
		{Pattern: "GET /say", Service: "echo", Endpoint: "Echo.Say",
			Retry: &gateway.Retry{Attempts: 2, Backoff: time.Millisecond}},
	}}
	_, base := startGateway(t, cfg, reg, gateway.Transport(tr), gateway.Selector(firstNode{}))

	for _, tc := range []struct {
		name               string
		failing, unhealthy []string
		status             int
		dialed             []string
	}{
		{"first node", nil, nil, 200, []string{"a"}},
		{"a retry goes to a node not tried", []string{"a"}, nil, 200, []string{"a", "b"}},
		{"an unhealthy node is passed over", nil, []string{"a"}, 200, []string{"b"}},
		{"an unhealthy node rather than none", nil, []string{"a", "b"}, 200, []string{"a"}},
		{"every node tried: a retry takes any", []string{"a", "b"}, nil, 503, []string{"a", "b", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr.reset(tc.failing, tc.unhealthy)
			r := do(t, "GET", base+"/say?text=hi", "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := tr.calls(); !slices.Equal(got, tc.dialed) {
				t.Fatalf("tries went to %q, want %q", got, tc.dialed)
			}
		})
	}
}

// firstNode selects the first node the options let through, so which node a
// try goes to depends only on what the gateway excludes.
type firstNode struct{}

func (firstNode) Select(services []*registry.Service, opts ...registry.SelectOption) (*registry.Node, registry.Done, error) {
	o := registry.NewSelectOptions(opts...)
	for _, s := range services {
		for _, n := range s.Nodes {
			if o.Match(s, n) {
				return n, func(error) {}, nil
			}
		}
	}
	return nil, nil, errors.New("no node matches")
}

// scriptedTransport answers every call itself: 503 from the failing
// addresses, an echo from the others; it reports the unhealthy ones.
type scriptedTransport struct {
	mu                 sync.Mutex
	failing, unhealthy []string
	dialed             []string
}

func (t *scriptedTransport) reset(failing, unhealthy []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing, t.unhealthy, t.dialed = failing, unhealthy, nil
}

func (t *scriptedTransport) calls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.dialed)
}

func (*scriptedTransport) Name() string { return "scripted" }

func (*scriptedTransport) Listen(context.Context, string) (transport.Listener, error) {
	return nil, errors.New("scripted: no listeners")
}

func (t *scriptedTransport) Dial(_ context.Context, addr string) (transport.Conn, error) {
	return scriptedConn{t, addr}, nil
}

func (*scriptedTransport) Close() error { return nil }

func (t *scriptedTransport) Healthy(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !slices.Contains(t.unhealthy, addr)
}

type scriptedConn struct {
	t    *scriptedTransport
	addr string
}

func (c scriptedConn) Call(context.Context, *transport.Message) (*transport.Message, error) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	c.t.dialed = append(c.t.dialed, c.addr)
	if slices.Contains(c.t.failing, c.addr) {
		return &transport.Message{
			Header: map[string]string{metadata.Status: "503", metadata.ContentType: "application/json"},
			Body:   []byte(`{"id":"echo","code":503,"detail":"down"}`),
		}, nil
	}
	return &transport.Message{
		Header: map[string]string{metadata.ContentType: "application/json"},
		Body:   []byte(`{"text":"hi"}`),
	}, nil
}

func (scriptedConn) Stream(context.Context, map[string]string) (transport.Stream, error) {
	return nil, errors.New("scripted: no streams")
}

func (scriptedConn) Close() error { return nil }
