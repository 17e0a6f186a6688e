package plugins_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
)

// countingConn counts every use of the plugin connection: each RPC an adapter
// makes takes the connection through Current.
type countingConn struct {
	plugin.Conn
	uses atomic.Int64
}

func (c *countingConn) Current() (grpc.ClientConnInterface, error) {
	c.uses.Add(1)
	return c.Conn.Current()
}

// TestRequestPathMakesNoRegistryPluginCalls: with a registry served as a plugin,
// calls between services resolve through the host's watch-fed cache, so the
// request path makes zero calls into the plugin.
func TestRequestPathMakesNoRegistryPluginCalls(t *testing.T) {
	m, _ := newManager(t)
	inst := startPlugin(t, m, spec(t, "registry-memory"))
	conn := &countingConn{Conn: inst}
	reg := plugin.NewRegistryClient("registry-memory", conn)
	cache := registry.NewCache(reg)
	t.Cleanup(func() { cache.Close() })

	// The service registers through its own adapter: only the client's lookups
	// are counted.
	svc := service.New("echo", service.Registry(inst.Registry()), service.HandleSignals(false), service.TTL(time.Hour))
	if err := svc.Handle(Echo{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()

	cli := client.New(client.Registry(cache))
	t.Cleanup(func() { cli.Close() })
	call := func() {
		var rsp EchoResponse
		if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "hi"}, &rsp); err != nil || rsp.Text != "hi" {
			t.Fatalf("call: %v %+v", err, rsp)
		}
	}
	waitFor(t, cache.Ready, "the cache's watch")
	// Warm the cache: a first lookup asks the plugin, and one that raced the
	// registration's watch event is not kept; once a call makes no plugin call,
	// the cache holds the service.
	for warm := 0; ; warm++ {
		n := conn.uses.Load()
		call()
		if conn.uses.Load() == n {
			break
		}
		if warm == 20 {
			t.Fatal("the cache never kept the service")
		}
	}
	before := conn.uses.Load()
	for i := 0; i < 500; i++ {
		call()
	}
	if after := conn.uses.Load(); after != before {
		t.Fatalf("500 calls made %d plugin calls on the request path, want 0", after-before)
	}
}
