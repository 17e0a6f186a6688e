package main

import (
	"bytes"
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

func TestConformance(t *testing.T) {
	conformance.Transport(t, func(t *testing.T) transport.Transport {
		tr := newWS(defaultOptions())
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}, conformance.ExpectNotSent())
}

// TestConformanceThroughPluginAdapters runs the suite against the transport
// behind the SDK's gRPC plugin adapters, in process: what the host gets from
// the micro-transport-ws binary, without the process.
func TestConformanceThroughPluginAdapters(t *testing.T) {
	conformance.Transport(t, func(t *testing.T) transport.Transport {
		ws := newWS(defaultOptions())
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		pluginv1.RegisterTransportServer(srv, plugin.NewTransportServer(ws))
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.Serve(lis)
		}()
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		tr := plugin.NewTransportClient("ws", plugin.StaticConn(cc))
		t.Cleanup(func() {
			_ = tr.Close()
			_ = cc.Close()
			srv.Stop()
			<-served
			_ = ws.Close()
		})
		return tr
	}, conformance.ExpectNotSent())
}

// handlerFunc adapts functions to transport.Handler.
type handlerFunc struct {
	call   func(ctx context.Context, req *transport.Message) *transport.Message
	stream func(ctx context.Context, header map[string]string, s transport.Stream) error
}

func (h handlerFunc) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	if h.call == nil {
		return &transport.Message{Header: map[string]string{}, Body: bytes.Clone(req.Body)}
	}
	return h.call(ctx, req)
}

func (h handlerFunc) ServeStream(ctx context.Context, header map[string]string, s transport.Stream) error {
	if h.stream == nil {
		for {
			b, err := s.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.Send(b); err != nil {
				return err
			}
		}
	}
	return h.stream(ctx, header, s)
}

// serve listens on a free port with options o and serves h until the test ends.
func serve(t *testing.T, o options, h transport.Handler) *listener {
	t.Helper()
	tr := newWS(o)
	t.Cleanup(func() { _ = tr.Close() })
	ln, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ln.Serve(h) }()
	t.Cleanup(func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.(*listener)
}

// dial returns a Conn to addr from a new transport with options o.
func dial(t *testing.T, o options, addr string) *wsConn {
	t.Helper()
	tr := newWS(o)
	t.Cleanup(func() { _ = tr.Close() })
	c, err := tr.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*wsConn)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

func call(t *testing.T, c transport.Conn, endpoint string, body []byte) *transport.Message {
	t.Helper()
	resp, err := c.Call(ctxFor(t), &transport.Message{Header: map[string]string{metadata.Endpoint: endpoint}, Body: body})
	if err != nil {
		t.Fatalf("Call %s: %v", endpoint, err)
	}
	return resp
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestConcurrentCallsShareConnections holds 100 calls in the handler at once:
// with max_conns 2 they all travel over two WebSocket connections.
func TestConcurrentCallsShareConnections(t *testing.T) {
	const n = 100
	var arrived atomic.Int64
	all := make(chan struct{})
	ln := serve(t, defaultOptions(), handlerFunc{call: func(ctx context.Context, req *transport.Message) *transport.Message {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-ctx.Done():
		}
		return &transport.Message{Header: map[string]string{"Micro-Echo": req.Header["Micro-Echo"]}, Body: bytes.Clone(req.Body)}
	}})
	o := defaultOptions()
	o.maxConns = 2
	conn := dial(t, o, ln.Addr())

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprint(i)
			body := bytes.Repeat([]byte(id), i+1)
			resp, err := conn.Call(ctxFor(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "T.Echo", "Micro-Echo": id}, Body: body})
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: %w", i, err)
			case resp.Header["Micro-Echo"] != id || !bytes.Equal(resp.Body, body):
				errs <- fmt.Errorf("call %d got the answer %q / %.20q", i, resp.Header["Micro-Echo"], resp.Body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ln.accepted.Load(); got < 1 || got > 2 {
		t.Errorf("the server accepted %d WebSocket connections for %d concurrent calls, want 1 or 2 (max_conns 2)", got, n)
	}
	if got := conn.opened.Load(); got != ln.accepted.Load() {
		t.Errorf("the client opened %d connections, the server accepted %d", got, ln.accepted.Load())
	}
}

// TestOversizedBody checks bodies over max_body_bytes are answered with a 413
// envelope, in a call and in a stream, and the connection keeps serving.
func TestOversizedBody(t *testing.T) {
	so := defaultOptions()
	so.maxBodyBytes = 1024
	ln := serve(t, so, handlerFunc{})
	o := defaultOptions()
	o.maxConns = 1
	conn := dial(t, o, ln.Addr())

	resp := call(t, conn, "T.Echo", bytes.Repeat([]byte("x"), 1025))
	if resp.Header[metadata.Status] != "413" || resp.Header[metadata.Error] != "1" {
		t.Fatalf("a body of 1025 bytes over a 1024 limit: headers %v, want status 413 and %s: 1", resp.Header, metadata.Error)
	}
	var e errors.Error
	if err := json.Unmarshal(resp.Body, &e); err != nil || e.Code != 413 || !strings.Contains(e.Detail, "max_body_bytes") {
		t.Errorf("413 body %q is not an envelope naming the fix (%v)", resp.Body, err)
	}

	if resp := call(t, conn, "T.Echo", bytes.Repeat([]byte("y"), 1024)); resp.Header[metadata.Status] != "" || len(resp.Body) != 1024 {
		t.Errorf("a call at the limit after the 413: status %q, %d bytes back", resp.Header[metadata.Status], len(resp.Body))
	}

	st, err := conn.Stream(ctxFor(t), map[string]string{metadata.Endpoint: "T.Stream"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Send(make([]byte, 2000)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, err = st.Recv()
	var se *errors.Error
	if !stderrors.As(err, &se) || se.Code != 413 {
		t.Errorf("Recv after sending 2000 bytes over a 1024 limit = %v, want a 413 *errors.Error", err)
	}

	call(t, conn, "T.Echo", []byte("still here"))
	if got := ln.accepted.Load(); got != 1 {
		t.Errorf("the server accepted %d connections; the 413s must not cost the connection", got)
	}
}

// TestCancelReachesHandler checks a caller giving up cancels the handler's
// context, for a call and for a stream.
func TestCancelReachesHandler(t *testing.T) {
	started := make(chan struct{}, 2)
	cancelled := make(chan string, 2)
	ln := serve(t, defaultOptions(), handlerFunc{
		call: func(ctx context.Context, req *transport.Message) *transport.Message {
			started <- struct{}{}
			<-ctx.Done()
			cancelled <- "call"
			return &transport.Message{}
		},
		stream: func(ctx context.Context, _ map[string]string, s transport.Stream) error {
			started <- struct{}{}
			<-ctx.Done()
			if _, err := s.Recv(); errors.Code(err) != errors.StatusClientClosed {
				t.Errorf("handler's Recv after the caller closed = %v, want a 499", err)
			}
			cancelled <- "stream"
			return nil
		},
	})
	conn := dial(t, defaultOptions(), ln.Addr())

	ctx, cancel := context.WithCancel(ctxFor(t))
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Call(ctx, &transport.Message{Header: map[string]string{metadata.Endpoint: "T.Slow"}})
		errc <- err
	}()
	receive(t, started, "the call to start")
	cancel()
	if err := receive(t, errc, "Call to return"); !stderrors.Is(err, context.Canceled) {
		t.Errorf("Call after cancel = %v, want context.Canceled", err)
	}
	if got := receive(t, cancelled, "the handler to see the cancel"); got != "call" {
		t.Errorf("got %s", got)
	}

	st, err := conn.Stream(ctxFor(t), map[string]string{metadata.Endpoint: "T.Stream"})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, started, "the stream to start")
	_ = st.Close()
	if got := receive(t, cancelled, "the stream handler to see the close"); got != "stream" {
		t.Errorf("got %s", got)
	}
	if _, err := st.Recv(); err == nil {
		t.Error("Recv after Close succeeded")
	}
}

// TestStreamBeyondWindow sends several windows' worth each way through an
// echoing handler: flow control must pace both sides without losing, reordering
// or deadlocking.
func TestStreamBeyondWindow(t *testing.T) {
	ln := serve(t, defaultOptions(), handlerFunc{})
	conn := dial(t, defaultOptions(), ln.Addr())
	st, err := conn.Stream(ctxFor(t), map[string]string{metadata.Endpoint: "T.Stream"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	const n = 80 // 80 × 64 KiB = 5 windows
	msg := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 64<<10) }
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := st.Send(msg(i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- st.CloseSend()
	}()
	for i := range n {
		b, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if !bytes.Equal(b, msg(i)) {
			t.Fatalf("message %d came back as %d bytes of %d", i, len(b), b[0])
		}
	}
	if err := receive(t, sent, "the sends"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("Recv after the handler returned = %v, want io.EOF", err)
	}
}

// TestShutdownRefusesNewCalls checks a call made while the listener drains is
// refused with transport.ErrNotSent, so the caller can go elsewhere, while the
// call in flight finishes.
func TestShutdownRefusesNewCalls(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ln := serve(t, defaultOptions(), handlerFunc{call: func(ctx context.Context, req *transport.Message) *transport.Message {
		if req.Header[metadata.Endpoint] == "T.Slow" {
			started <- struct{}{}
			<-release
		}
		return &transport.Message{Body: []byte("done")}
	}})
	o := defaultOptions()
	o.maxConns = 1 // the new call goes to the draining connection, which refuses it
	conn := dial(t, o, ln.Addr())

	slow := make(chan error, 1)
	go func() {
		_, err := conn.Call(ctxFor(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "T.Slow"}})
		slow <- err
	}()
	receive(t, started, "the slow call to start")
	shut := make(chan error, 1)
	go func() { shut <- ln.Shutdown(ctxFor(t)) }()
	// Shutdown marks the listener draining before anything else.
	for !ln.isDraining() {
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with a call in flight", err)
		default:
		}
		runtime.Gosched()
	}
	_, err := conn.Call(ctxFor(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "T.Fast"}})
	if !stderrors.Is(err, transport.ErrNotSent) || errors.Code(err) != 503 || !strings.Contains(err.Error(), "call another instance") {
		t.Errorf("a call while draining = %v, want the listener's 503 refusal wrapping transport.ErrNotSent", err)
	}
	close(release)
	if err := receive(t, slow, "the slow call"); err != nil {
		t.Errorf("the call in flight: %v", err)
	}
	if err := receive(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestConfig(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal([]byte(configSchema), &schema); err != nil {
		t.Fatalf("the config schema is not JSON: %v", err)
	}
	if schema["additionalProperties"] != false {
		t.Error("the config schema accepts unknown properties")
	}
	o, err := parseConfig(json.RawMessage(`{"max_body_bytes": 1024, "max_conns": 2, "dial_timeout_ms": 250}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.maxBodyBytes != 1024 || o.maxConns != 2 || o.dialTimeout != 250*time.Millisecond {
		t.Errorf("parsed %+v", o)
	}
	for _, raw := range []string{``, `null`, `{}`} {
		if o, err := parseConfig(json.RawMessage(raw)); err != nil || o != defaultOptions() {
			t.Errorf("config %q: %+v, %v; want the defaults", raw, o, err)
		}
	}
	for _, raw := range []string{`{"max_conn": 2}`, `{"max_conns": 0}`, `{"max_body_bytes": -1}`, `{"dial_timeout_ms": "1s"}`, `[]`} {
		if _, err := parseConfig(json.RawMessage(raw)); err == nil {
			t.Errorf("config %s accepted", raw)
		}
	}
	tr := newWS(defaultOptions())
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.Configure(t.Context(), json.RawMessage(`{"max_conns": 3}`)); err != nil || tr.options().maxConns != 3 {
		t.Errorf("Configure: %v, max_conns %d", err, tr.options().maxConns)
	}
}

// TestCloseBeforeServe checks Close releases the socket even when Serve never
// ran, and a later Serve returns nil at once.
func TestCloseBeforeServe(t *testing.T) {
	tr := newWS(defaultOptions())
	t.Cleanup(func() { _ = tr.Close() })
	ln, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr()
	if err := ln.Close(); err != nil {
		t.Fatalf("Close before Serve: %v", err)
	}
	if err := ln.Serve(handlerFunc{}); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	again, err := tr.Listen(t.Context(), addr)
	if err != nil {
		t.Fatalf("the socket of a listener closed before Serve is still bound: %v", err)
	}
	_ = again.Close()
}

// TestCallToAPeerThatStopsReadingEnds checks a call whose request cannot be
// written (the server accepted the connection and never reads) still returns
// soon after its deadline: the link is closed under the stuck write.
func TestCallToAPeerThatStopsReadingEnds(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{subprotocol}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		<-stuck // never reads
	}))
	t.Cleanup(srv.Close)
	conn := dial(t, defaultOptions(), strings.TrimPrefix(srv.URL, "http://"))

	ctx, cancel := context.WithTimeout(ctxFor(t), 200*time.Millisecond)
	defer cancel()
	// Eight 3 MiB requests are more than the socket buffers take: one of
	// them is left writing when the deadline passes.
	body := bytes.Repeat([]byte("x"), 3<<20)
	const calls = 8
	done := make(chan error, calls)
	for range calls {
		go func() {
			_, err := conn.Call(ctx, &transport.Message{Header: map[string]string{metadata.Endpoint: "T.Echo"}, Body: body})
			done <- err
		}()
	}
	for range calls {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a call to a server that never reads succeeded")
			}
		case <-time.After(wait):
			t.Fatalf("a call stuck writing to a server that never reads did not return %s after its deadline", wait)
		}
	}
}
