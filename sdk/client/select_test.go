package client_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/microhost/micro/internal/scripted"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/registry"
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
	tr := &scripted.Transport{}
	c := newClient(t, client.Registry(reg), client.Transport(tr), client.Selector(scripted.FirstNode{}), client.Retries(3))

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
			tr.Reset(tc.failing, tc.unhealthy)
			opts := []client.CallOption{client.Idempotent()}
			if tc.zone {
				opts = append(opts, client.WithSelectOption(registry.WithMetadata("zone", "x")))
			}
			var rsp map[string]any
			err := c.Call(context.Background(), "echo", "Echo.Say", map[string]string{"text": "hi"}, &rsp, opts...)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want success %v", err, tc.ok)
			}
			if got := tr.Calls(); !slices.Equal(got, tc.dialed) {
				t.Fatalf("tries went to %q, want %q", got, tc.dialed)
			}
		})
	}
}
