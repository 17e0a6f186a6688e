package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// TestNodeChoice checks which node a try goes to: a retry to a node not tried
// yet, never to one the transport finds unhealthy while another is there, but
// to an unhealthy or tried one rather than to none, within the call's select
// options.
func TestNodeChoice(t *testing.T) {
	reg := registry.NewMemory()
	if err := reg.Register(context.Background(), &registry.Service{Name: "echo", Nodes: []*registry.Node{
		{ID: "a", Address: "a", Metadata: map[string]string{"zone": "x"}},
		{ID: "b", Address: "b"},
		{ID: "c", Address: "c", Metadata: map[string]string{"zone": "x"}},
	}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	tr := &scriptedTransport{}
	c := newClient(t, client.Registry(reg), client.Transport(tr), client.Selector(firstNode{}), client.Retries(3))

	for _, tc := range []struct {
		name               string
		failing, unhealthy []string
		zone               bool // only nodes of zone x
		ok                 bool
		dialed             []string
	}{
		{"first node", nil, nil, false, true, []string{"a"}},
		{"a retry goes to a node not tried", []string{"a"}, nil, false, true, []string{"a", "b"}},
		{"an unhealthy node is passed over", nil, []string{"a"}, false, true, []string{"b"}},
		{"an unhealthy node rather than none", nil, []string{"a", "b", "c"}, false, true, []string{"a"}},
		{"every node tried: a retry takes any", []string{"a", "b", "c"}, nil, false, false, []string{"a", "b", "c", "a"}},
		{"select options hold", []string{"a"}, []string{"b"}, true, true, []string{"a", "c"}},
		{"select options hold when every node is tried", []string{"a", "c"}, nil, true, false, []string{"a", "c", "a", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr.reset(tc.failing, tc.unhealthy)
			opts := []client.CallOption{client.Idempotent()}
			if tc.zone {
				opts = append(opts, client.WithSelectOption(registry.WithMetadata("zone", "x")))
			}
			var rsp map[string]any
			err := c.Call(context.Background(), "echo", "Echo.Say", map[string]string{"text": "hi"}, &rsp, opts...)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want success %v", err, tc.ok)
			}
			if got := tr.calls(); !slices.Equal(got, tc.dialed) {
				t.Fatalf("tries went to %q, want %q", got, tc.dialed)
			}
		})
	}
}

// firstNode selects the first node the options let through, so which node a
// try goes to depends only on what the client excludes.
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
