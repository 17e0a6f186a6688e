package plugin_test

import (
	"context"
	stderrors "errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// dpWatch serves a transport plugin in process and watches its gRPC channel:
// how often the host asked for the data path, and how many batches of calls
// came over the Calls stream instead. dataPath decides each DataPath answer.
type dpWatch struct {
	mu          sync.Mutex
	asked       int
	callBatches int
	dataPath    func(n int) error // nil: answer; else fail the n-th ask (from 1) with it
	tc          transport.Transport
	addr        string // an echo server to call through the plugin
}

func (w *dpWatch) counts() (asked, callBatches int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked, w.callBatches
}

// countingStream counts the messages a Calls stream receives.
type countingStream struct {
	grpc.ServerStream
	w *dpWatch
}

func (s countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.w.mu.Lock()
		s.w.callBatches++
		s.w.mu.Unlock()
	}
	return err
}

func newDPWatch(t *testing.T, offer bool, dataPath func(n int) error) *dpWatch {
	t.Helper()
	own := transport.NewHTTP()
	t.Cleanup(func() { own.Close() })
	return newDPWatchOn(t, own, offer, dataPath)
}

// newDPWatchOn is newDPWatch with own as the plugin's transport.
func newDPWatchOn(t *testing.T, own transport.Transport, offer bool, dataPath func(n int) error) *dpWatch {
	t.Helper()
	w := &dpWatch{dataPath: dataPath}
	serverTLS, clientTLS := dataPathTLS(t)
	var opts []plugin.TransportServerOption
	if offer {
		opts = append(opts, plugin.WithDataPath(serverTLS))
	}
	ts := plugin.NewTransportServer(own, opts...)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == pluginv1.Transport_DataPath_FullMethodName {
				w.mu.Lock()
				w.asked++
				n := w.asked
				w.mu.Unlock()
				if w.dataPath != nil {
					if err := w.dataPath(n); err != nil {
						return nil, err
					}
				}
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == pluginv1.Transport_Calls_FullMethodName {
				ss = countingStream{ServerStream: ss, w: w}
			}
			return h(s, ss)
		}),
	)
	pluginv1.RegisterTransportServer(srv, ts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() { srv.Stop(); <-served })
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	w.tc = plugin.NewTransportClient("http", dpConn{Conn: plugin.StaticConn(cc), tls: clientTLS})
	t.Cleanup(func() { w.tc.Close() })

	echo := transport.NewHTTP()
	t.Cleanup(func() { echo.Close() })
	ln, err := echo.Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ln.Serve(tpEcho{}) }()
	t.Cleanup(func() { ln.Close() })
	w.addr = ln.Addr()
	return w
}

func (w *dpWatch) call(t *testing.T) {
	t.Helper()
	resp, err := tpCall(t, w.tc, w.addr, "Echo.Hello", []byte(`"hi"`))
	if err != nil || string(resp.Body) != `"hi"` {
		t.Fatalf("call through the plugin = %v, %v", resp, err)
	}
}

// waitAsked polls until the host has asked for the data path: the first call
// asks in the background, so the ask may reach the plugin after the call.
func (w *dpWatch) waitAsked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for asked, _ := w.counts(); asked == 0; asked, _ = w.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the host never asked the plugin for its data path")
		}
		time.Sleep(time.Millisecond)
	}
}

// callsOnDataPath polls until calls stop coming over the Calls stream: a call
// made then leaves the batch count as it was.
func (w *dpWatch) callsOnDataPath(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, before := w.counts()
		w.call(t)
		if _, after := w.counts(); after == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("calls still go over the Calls stream, not the data path")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDataPathDoesNotHoldCallsUp checks calls go over the gRPC channel while the
// plugin is slow to hand out its data path, instead of waiting for it, and take
// the data path once it is open.
func TestDataPathDoesNotHoldCallsUp(t *testing.T) {
	release := make(chan struct{})
	w := newDPWatch(t, true, func(int) error { <-release; return nil })
	start := time.Now()
	for range 3 {
		w.call(t)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("3 calls took %s while the data path was pending", took)
	}
	w.waitAsked(t)
	if asked, batches := w.counts(); asked != 1 || batches == 0 {
		t.Fatalf("asked %d times, %d call batches on gRPC; want one pending ask and the calls on gRPC", asked, batches)
	}
	close(release)
	w.callsOnDataPath(t)
}

// TestDataPathRetriedAfterAFailure checks a failed attempt (the plugin busy, a
// socket refused) is tried again after a wait, while calls use gRPC meanwhile.
func TestDataPathRetriedAfterAFailure(t *testing.T) {
	w := newDPWatch(t, true, func(n int) error {
		if n == 1 {
			return status.Error(codes.Unavailable, "not now")
		}
		return nil
	})
	w.call(t)
	w.callsOnDataPath(t)
	if asked, _ := w.counts(); asked != 2 {
		t.Fatalf("asked for the data path %d times, want 2 (a failure, then the retry)", asked)
	}
}

// TestDataPathNotOfferedAskedOnce checks a plugin without a data path is asked
// once, not on every call.
func TestDataPathNotOfferedAskedOnce(t *testing.T) {
	w := newDPWatch(t, false, nil)
	w.call(t)
	w.waitAsked(t)
	for range 20 {
		w.call(t)
	}
	if asked, batches := w.counts(); asked != 1 || batches < 21 {
		t.Fatalf("asked %d times with %d call batches on gRPC; want 1 ask and every call on gRPC", asked, batches)
	}
}

// TestDataPathCloseEndsStalledHandshakes checks closing a transport server
// does not wait for a connection that never finishes its TLS handshake.
func TestDataPathCloseEndsStalledHandshakes(t *testing.T) {
	serverTLS, _ := dataPathTLS(t)
	own := transport.NewHTTP()
	t.Cleanup(func() { own.Close() })
	ts := plugin.NewTransportServer(own, plugin.WithDataPath(serverTLS))
	ep, err := ts.DataPath(tpCtx(t), &pluginv1.DataPathRequest{Versions: []uint32{1}})
	if err != nil {
		t.Fatal(err)
	}
	stalled, err := net.Dial(ep.GetNetwork(), ep.GetAddress()) // and never says a word
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Close() })
	closed := make(chan error, 1)
	go func() { closed <- ts.(interface{ Close() error }).Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close still waits for a stalled handshake after 3s")
	}
}

// TestCallLeavesTheHeaderToItsCallerOnceItReturns checks a caller may change a
// request's header as soon as Call returned, as a retry does, also when the
// call gave up while still queued on the gRPC channel's Calls stream.
func TestCallLeavesTheHeaderToItsCallerOnceItReturns(t *testing.T) {
	w := newDPWatch(t, false, nil) // no data path: calls queue on the Calls stream
	w.call(t)
	conn, err := w.tc.Dial(tpCtx(t), w.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		header := map[string]string{metadata.Endpoint: "Echo.Hello", metadata.ContentType: "application/json"}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*time.Microsecond)
		_, _ = conn.Call(ctx, &transport.Message{Header: header, Body: []byte(`"hi"`)})
		cancel()
		for k := range 8 { // what a retry does to the header it sends again
			header[metadata.Timeout] = strconv.Itoa(k)
			header[metadata.TraceParent] = strconv.Itoa(k)
		}
	}
}

// loudTransport fails every Dial to loudAddr with an error of loudSize bytes,
// as a third-party transport quoting what it got might; other addresses it
// dials with the transport it wraps.
type loudTransport struct{ transport.Transport }

const (
	loudAddr = "loud.invalid:1"
	loudSize = 5 << 20
)

func (l loudTransport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	if addr == loudAddr {
		return nil, stderrors.New(strings.Repeat("x", loudSize))
	}
	return l.Transport.Dial(ctx, addr)
}

// TestCallFailureTooBigForTheBoundary checks a call whose failure's envelope
// is bigger than a frame fails alone, as not sent like the failure it stands
// for, and leaves the connection to the plugin to the other calls: over the
// data path and over the Calls stream alike.
func TestCallFailureTooBigForTheBoundary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		offer bool
	}{
		{"data path", true},
		{"Calls stream", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			own := transport.NewHTTP()
			t.Cleanup(func() { own.Close() })
			w := newDPWatchOn(t, loudTransport{own}, tt.offer, nil)
			if tt.offer {
				w.callsOnDataPath(t)
			} else {
				w.call(t)
				w.waitAsked(t) // refused once, then not asked again
			}
			asked, _ := w.counts()

			conn, err := w.tc.Dial(tpCtx(t), w.addr)
			if err != nil {
				t.Fatal(err)
			}
			loud, err := w.tc.Dial(tpCtx(t), loudAddr)
			if err != nil {
				t.Fatal(err)
			}
			_, err = loud.Call(tpCtx(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Hello"}})
			if !stderrors.Is(err, transport.ErrNotSent) || tpCode(t, err) != 503 {
				t.Fatalf("call whose dial failed with %d bytes = %.300v, want a 503 marked not sent", loudSize, err)
			}
			if len(err.Error()) > 64<<10 {
				t.Fatalf("the error is %d bytes long, want its detail cut short", len(err.Error()))
			}
			resp, err := conn.Call(tpCtx(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Hello"}, Body: []byte(`"after"`)})
			if err != nil || string(resp.Body) != `"after"` {
				t.Fatalf("call after the loud failure = %v, %v", resp, err)
			}
			if now, _ := w.counts(); now != asked {
				t.Fatalf("the host asked for the data path %d times, %d before the loud failure: the connection broke", now, asked)
			}
		})
	}
}

// ctxWatcher is a handler that waits for its context to end, then says why.
type ctxWatcher struct {
	started chan struct{}
	ended   chan error
}

func (h ctxWatcher) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	h.started <- struct{}{}
	<-ctx.Done()
	h.ended <- ctx.Err()
	return tpErrorMessage(ctx.Err())
}

func (ctxWatcher) ServeStream(context.Context, map[string]string, transport.Stream) error {
	return nil
}

// TestCallerGivingUpEndsTheHandler has a caller give up on a request that is
// crossing the plugin boundary, over the data path and over the gRPC streams
// (Listen, Calls) alike: as with a built-in transport, the handler's context
// must end at once, not at its timeout or when the listener closes. Either the
// handler is in the host behind a plugin listener and the caller remote, or
// the caller is in the host calling through the plugin and the handler remote.
func TestCallerGivingUpEndsTheHandler(t *testing.T) {
	for _, path := range []struct {
		name  string
		offer bool
	}{
		{"data path", true},
		{"gRPC streams", false},
	} {
		for _, side := range []string{"handler in the host", "caller in the host"} {
			t.Run(path.name+"/"+side, func(t *testing.T) {
				w := newDPWatch(t, path.offer, nil)
				h := ctxWatcher{started: make(chan struct{}, 1), ended: make(chan error, 1)}
				var ln transport.Listener
				var caller transport.Transport
				var err error
				if side == "handler in the host" {
					ln, err = w.tc.Listen(tpCtx(t), "127.0.0.1:0")
					caller = tpDirect(t)
				} else {
					ln, err = tpDirect(t).Listen(tpCtx(t), "127.0.0.1:0")
					caller = w.tc
				}
				if err != nil {
					t.Fatal(err)
				}
				tpServe(t, ln, h)
				conn, err := caller.Dial(tpCtx(t), ln.Addr())
				if err != nil {
					t.Fatal(err)
				}

				if path.offer {
					w.callsOnDataPath(t) // Listen waits for the data path; calls do not
				}
				_, batches := w.counts()

				// No deadline: only the giving up may end the handler's wait.
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				called := make(chan error, 1)
				go func() {
					_, err := conn.Call(ctx, &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Hello"}})
					called <- err
				}()
				receive(t, h.started, "the request at the handler")
				cancel()
				if err := <-called; !stderrors.Is(err, context.Canceled) {
					t.Fatalf("the caller's call = %v, want it cancelled", err)
				}
				if err := receive(t, h.ended, "the handler's context ending after its caller gave up"); !stderrors.Is(err, context.Canceled) {
					t.Fatalf("the handler's context ended with %v, want it cancelled", err)
				}
				if _, now := w.counts(); side == "caller in the host" && path.offer != (now == batches) {
					t.Fatalf("%d call batches on gRPC during the call: it did not take the %s", now-batches, path.name)
				}
			})
		}
	}
}
