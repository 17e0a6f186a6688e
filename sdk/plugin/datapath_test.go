package plugin_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// dpConn is a plugin.DataPathConn over a connection that never restarts.
type dpConn struct {
	plugin.Conn
	tls *tls.Config
}

func (c dpConn) ClientTLS() *tls.Config { return c.tls }

// dataPathTLS returns the mutual-TLS configurations of a plugin's data path and
// of the host dialing it, as a host run makes them.
func dataPathTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	host, err := plugin.NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := host.ServerBundle()
	if err != nil {
		t.Fatal(err)
	}
	server, err = plugin.ServerTLSFromBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return server, host.ClientConfig()
}

// TestDataPathShutdownDrainsAndLeavesNoGoroutines serves a transport with its
// data path in process, makes calls over it, drains a listener with a request
// in flight, then closes everything and checks every goroutine is gone.
func TestDataPathShutdownDrainsAndLeavesNoGoroutines(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		ctx := tpCtx(t)
		serverTLS, clientTLS := dataPathTLS(t)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		own := transport.NewHTTP()
		defer own.Close()
		ts := plugin.NewTransportServer(own, plugin.WithDataPath(serverTLS))
		defer ts.(io.Closer).Close()
		srv := grpc.NewServer()
		pluginv1.RegisterTransportServer(srv, ts)
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.Serve(lis)
		}()
		defer func() { srv.Stop(); <-served }()
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()

		tc := plugin.NewTransportClient("http", dpConn{Conn: plugin.StaticConn(cc), tls: clientTLS})
		defer tc.Close()
		block, started := make(chan struct{}), make(chan struct{}, 1)
		ln, err := tc.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveErr := make(chan error, 1)
		go func() { serveErr <- ln.Serve(tpEcho{block: block, started: started}) }()

		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := []byte(fmt.Sprintf(`{"n":%d}`, i))
				resp, err := tpCall(t, tc, ln.Addr(), "Echo.Hello", body)
				if err != nil || string(resp.Body) != string(body) {
					t.Errorf("call %d over the data path = %v, %v", i, resp, err)
				}
			}()
		}
		wg.Wait()

		// Shutdown waits for the request in flight, which is answered.
		answered := make(chan error, 1)
		go func() {
			resp, err := tpCall(t, tc, ln.Addr(), "Echo.Slow", []byte(`"slow"`))
			if err == nil && string(resp.Body) != `"slow"` {
				err = fmt.Errorf("answered %q", resp.Body)
			}
			answered <- err
		}()
		<-started
		shut := make(chan error, 1)
		go func() { shut <- ln.Shutdown(ctx) }()
		close(block)
		if err := <-answered; err != nil {
			t.Fatalf("the request in flight during Shutdown: %v", err)
		}
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-serveErr; err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	}()
	settleGoroutines(t, baseline)
}
