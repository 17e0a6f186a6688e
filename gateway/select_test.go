package gateway_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/internal/scripted"
	"github.com/microhost/micro/sdk/registry"
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
	tr := &scripted.Transport{}
	cfg := gateway.Config{Breaker: gateway.Breaker{Disabled: true}, Routes: []*gateway.Route{
		{Pattern: "GET /say", Service: "echo", Endpoint: "Echo.Say",
			Retry: &gateway.Retry{Attempts: 2, Backoff: time.Millisecond}},
	}}
	_, base := startGateway(t, cfg, reg, gateway.Transport(tr), gateway.Selector(scripted.FirstNode{}))

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
			tr.Reset(tc.failing, tc.unhealthy)
			r := do(t, "GET", base+"/say?text=hi", "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := tr.Calls(); !slices.Equal(got, tc.dialed) {
				t.Fatalf("tries went to %q, want %q", got, tc.dialed)
			}
		})
	}
}
