package plugin_test

import (
	"bytes"
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// tpWait bounds every wait in the transport and codec plugin tests.
const tpWait = 10 * time.Second

// tpPlugin stands in for a transport and codec plugin process: a real gRPC
// server on 127.0.0.1:0 serving NewTransportServer(transport.NewHTTP()) and
// NewCodecServer(codec.Msgpack()), and the host's connection to it.
type tpPlugin struct {
	srv    *grpc.Server
	cc     *grpc.ClientConn
	http   *transport.HTTP // the plugin's own transport
	served chan struct{}
	once   sync.Once
}

// startTPPlugin starts a plugin stand-in; t.Cleanup stops it.
func startTPPlugin(t *testing.T) *tpPlugin {
	t.Helper()
	return startTPPluginWith(t, codec.Msgpack())
}

// startTPPluginWith starts a plugin stand-in serving c as its codec.
func startTPPluginWith(t *testing.T, c codec.Codec) *tpPlugin {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	// Stop waits for the handlers, which close the plugin's listeners: as
	// when a process dies, its sockets are closed once it is gone.
	p := &tpPlugin{srv: grpc.NewServer(grpc.WaitForHandlers(true)), http: transport.NewHTTP(), served: make(chan struct{})}
	pluginv1.RegisterTransportServer(p.srv, plugin.NewTransportServer(p.http))
	pluginv1.RegisterCodecServer(p.srv, plugin.NewCodecServer(c))
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(lis)
	}()
	p.cc, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.stop()
		t.Fatalf("dial %s: %v", lis.Addr(), err)
	}
	t.Cleanup(p.stop)
	return p
}

// stop simulates the plugin process dying: the server goes away with every
// stream and listener, then the host's connection closes. Idempotent.
func (p *tpPlugin) stop() {
	p.once.Do(func() {
		p.srv.Stop()
		<-p.served
		_ = p.http.Close()
		if p.cc != nil {
			_ = p.cc.Close()
		}
	})
}

// tpSwitchConn is a plugin.Conn the test restarts by hand: down while the
// plugin is gone, up with the new process's connection.
type tpSwitchConn struct {
	mu      sync.Mutex
	cc      grpc.ClientConnInterface // nil while down
	changed chan struct{}
	stopped bool
}

func newTPSwitchConn(cc grpc.ClientConnInterface) *tpSwitchConn {
	return &tpSwitchConn{cc: cc, changed: make(chan struct{})}
}

func (c *tpSwitchConn) Current() (grpc.ClientConnInterface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc == nil {
		return nil, errors.Unavailable("test-plugin", "plugin test-plugin is restarting")
	}
	return c.cc, nil
}

func (c *tpSwitchConn) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *tpSwitchConn) Stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// stop stops the plugin for good, as the host does when it shuts down.
func (c *tpSwitchConn) stop() {
	c.mu.Lock()
	c.cc, c.stopped = nil, true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *tpSwitchConn) down() {
	c.mu.Lock()
	c.cc = nil
	c.mu.Unlock()
}

func (c *tpSwitchConn) up(cc grpc.ClientConnInterface) {
	c.mu.Lock()
	c.cc = cc
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// tpEcho is the service behind the plugin's listener: it echoes requests and
// stream messages, and fails on the Fail endpoints.
type tpEcho struct {
	block   chan struct{} // when set, Echo.Slow waits for it
	started chan struct{} // when set, Echo.Slow signals it on arrival
}

func (e tpEcho) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	switch req.Header[metadata.Endpoint] {
	case "Echo.Fail":
		return tpErrorMessage(errors.Unprocessable("echo", []errors.FieldError{{Field: "name", Detail: "required"}}, "name is missing"))
	case "Echo.Slow":
		if e.started != nil {
			e.started <- struct{}{}
		}
		select {
		case <-e.block:
		case <-ctx.Done():
			return tpErrorMessage(ctx.Err())
		}
	}
	return &transport.Message{
		Header: map[string]string{metadata.ContentType: req.Header[metadata.ContentType], "Micro-Echo": req.Header[metadata.Endpoint]},
		Body:   req.Body,
	}
}

func (tpEcho) ServeStream(ctx context.Context, header map[string]string, s transport.Stream) error {
	for {
		b, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if header[metadata.Endpoint] == "Echo.StreamFail" {
			return errors.Conflict("echo", "refusing %q", b)
		}
		if err := s.Send(append([]byte("echo:"), b...)); err != nil {
			return err
		}
	}
}

// tpErrorMessage is err as the response envelope a server sends.
func tpErrorMessage(err error) *transport.Message {
	e := errors.FromError(err)
	return &transport.Message{
		Header: map[string]string{metadata.Status: fmt.Sprint(e.Code), metadata.Error: "1", metadata.ContentType: "application/json"},
		Body:   []byte(fmt.Sprintf(`{"id":%q,"code":%d,"status":%q,"detail":%q}`, e.ID, e.Code, e.Status, e.Detail)),
	}
}

// tpServe runs ln.Serve(h) and returns the channel its result arrives on, then closes;
// t.Cleanup closes the listener and waits for Serve.
func tpServe(t *testing.T, ln transport.Listener, h transport.Handler) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- ln.Serve(h)
		close(done) // a second reader (the cleanup) gets nil at once
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case <-done:
		case <-time.After(tpWait):
			t.Errorf("Serve did not return after Close")
		}
	})
	return done
}

func tpCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), tpWait)
	t.Cleanup(cancel)
	return ctx
}

// tpListen has the plugin behind conn listen on 127.0.0.1:0 and serves h there.
func tpListen(t *testing.T, conn plugin.Conn, h transport.Handler) (transport.Transport, transport.Listener, <-chan error) {
	t.Helper()
	tc := plugin.NewTransportClient("http", conn)
	t.Cleanup(func() { _ = tc.Close() })
	ln, err := tc.Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen through the plugin: %v", err)
	}
	if strings.HasSuffix(ln.Addr(), ":0") || !strings.HasPrefix(ln.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want the real bound address", ln.Addr())
	}
	return tc, ln, tpServe(t, ln, h)
}

// tpDirect is a plain built-in http client, as a caller outside the host is.
func tpDirect(t *testing.T) *transport.HTTP {
	d := transport.NewHTTP()
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func tpCall(t *testing.T, tr transport.Transport, addr, endpoint string, body []byte) (*transport.Message, error) {
	t.Helper()
	conn, err := tr.Dial(tpCtx(t), addr)
	if err != nil {
		t.Fatalf("Dial %s: %v", addr, err)
	}
	return conn.Call(tpCtx(t), &transport.Message{
		Header: map[string]string{metadata.Endpoint: endpoint, metadata.ContentType: "application/json"},
		Body:   body,
	})
}

func tpCode(t *testing.T, err error) int32 {
	t.Helper()
	var e *errors.Error
	if !stderrors.As(err, &e) {
		t.Fatalf("error %v (%T) carries no envelope", err, err)
	}
	return e.Code
}

// tpFreeAddr returns a loopback address nothing listens on.
func tpFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTransportPluginListenAndCall(t *testing.T) {
	p := startTPPlugin(t)
	tc, ln, _ := tpListen(t, plugin.StaticConn(p.cc), tpEcho{})

	for name, tr := range map[string]transport.Transport{"through the plugin": tc, "direct http": tpDirect(t)} {
		t.Run(name, func(t *testing.T) {
			resp, err := tpCall(t, tr, ln.Addr(), "Echo.Hello", []byte(`{"name":"Ada"}`))
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if string(resp.Body) != `{"name":"Ada"}` || resp.Header["Micro-Echo"] != "Echo.Hello" || resp.Header[metadata.Status] != "" {
				t.Fatalf("response = %v %q, want the echo with status 200", resp.Header, resp.Body)
			}

			resp, err = tpCall(t, tr, ln.Addr(), "Echo.Fail", nil)
			if err != nil {
				t.Fatalf("Call Echo.Fail: %v", err)
			}
			if resp.Header[metadata.Status] != "422" || resp.Header[metadata.Error] != "1" || !bytes.Contains(resp.Body, []byte(`"code":422`)) || !bytes.Contains(resp.Body, []byte("name is missing")) {
				t.Fatalf("error response = %v %s, want the 422 envelope passed through", resp.Header, resp.Body)
			}
		})
	}
}

func TestTransportPluginTransportFailures(t *testing.T) {
	p := startTPPlugin(t)
	tc := plugin.NewTransportClient("http", plugin.StaticConn(p.cc))
	t.Cleanup(func() { _ = tc.Close() })
	dead := tpFreeAddr(t)

	_, err := tpCall(t, tc, dead, "Echo.Hello", nil)
	if !stderrors.Is(err, transport.ErrNotSent) || tpCode(t, err) != 503 {
		t.Fatalf("Call to a closed port: %v, want a 503 wrapping ErrNotSent", err)
	}
	conn, _ := tc.Dial(tpCtx(t), dead)
	_, err = conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if !stderrors.Is(err, transport.ErrNotSent) || tpCode(t, err) != 503 {
		t.Fatalf("Stream to a closed port: %v, want a 503 wrapping ErrNotSent", err)
	}

	// The caller's deadline ends the call with the context's error, as with http.
	ln, err := transport.NewHTTP().Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tpServe(t, ln, tpEcho{block: block})
	conn, _ = tc.Dial(tpCtx(t), ln.Addr())
	ctx, cancel := context.WithTimeout(tpCtx(t), 100*time.Millisecond)
	defer cancel()
	_, err = conn.Call(ctx, &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Slow"}})
	if !stderrors.Is(err, context.DeadlineExceeded) || stderrors.Is(err, transport.ErrNotSent) {
		t.Fatalf("Call past its deadline: %v, want context.DeadlineExceeded and not ErrNotSent", err)
	}
}

// tpEchoStream sends three messages on s, reads their echoes, and checks the
// clean end.
func tpEchoStream(t *testing.T, s transport.Stream) {
	t.Helper()
	defer s.Close()
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := s.Send([]byte(msg)); err != nil {
			t.Fatalf("Send %s: %v", msg, err)
		}
		got, err := s.Recv()
		if err != nil || string(got) != "echo:"+msg {
			t.Fatalf("Recv = %q, %v; want echo:%s", got, err, msg)
		}
	}
	if err := s.Send(nil); err != nil {
		t.Fatalf("Send of an empty message: %v", err)
	}
	if got, err := s.Recv(); err != nil || string(got) != "echo:" {
		t.Fatalf("Recv after an empty message = %q, %v", got, err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	if got, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv after CloseSend = %q, %v; want io.EOF", got, err)
	}
}

// tpFailStream checks that a handler's error reaches the caller's Recv.
func tpFailStream(t *testing.T, conn transport.Conn) {
	t.Helper()
	s, err := conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.StreamFail"})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	defer s.Close()
	if err := s.Send([]byte("x")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, err = s.Recv()
	if tpCode(t, err) != 409 || !strings.Contains(err.Error(), `refusing "x"`) {
		t.Fatalf("Recv = %v, want the handler's 409", err)
	}
}

func TestTransportPluginServerSideStreams(t *testing.T) {
	p := startTPPlugin(t)
	tc, ln, _ := tpListen(t, plugin.StaticConn(p.cc), tpEcho{})

	// A plain http caller streams to the plugin's listener; the handler runs in the host.
	conn, err := tpDirect(t).Dial(tpCtx(t), ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	tpEchoStream(t, s)
	tpFailStream(t, conn)

	// The host's own client through the plugin, to the plugin's listener: both sides at once.
	conn, _ = tc.Dial(tpCtx(t), ln.Addr())
	s, err = conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if err != nil {
		t.Fatalf("Stream through the plugin: %v", err)
	}
	tpEchoStream(t, s)
	tpFailStream(t, conn)
}

func TestTransportPluginClientSideStreams(t *testing.T) {
	p := startTPPlugin(t)
	tc := plugin.NewTransportClient("http", plugin.StaticConn(p.cc))
	t.Cleanup(func() { _ = tc.Close() })

	// The remote is a plain http listener; the host streams to it through the plugin.
	ln, err := tpDirect(t).Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tpServe(t, ln, tpEcho{})
	conn, _ := tc.Dial(tpCtx(t), ln.Addr())
	s, err := conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	tpEchoStream(t, s)
	tpFailStream(t, conn)

	// Close mid-stream releases it; the connection keeps working.
	s, err = conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Recv(); err == nil {
		t.Fatalf("Recv after Close succeeded")
	}
	if resp, err := tpCall(t, tc, ln.Addr(), "Echo.Hello", []byte("ok")); err != nil || string(resp.Body) != "ok" {
		t.Fatalf("Call after a closed stream = %v, %v", resp, err)
	}
}

func TestTransportPluginOversizedBody(t *testing.T) {
	p := startTPPlugin(t)
	tc, ln, _ := tpListen(t, plugin.StaticConn(p.cc), tpEcho{})
	direct := tpDirect(t)

	for _, size := range []int{transport.DefaultMaxBodyBytes + 1, transport.DefaultMaxBodyBytes} {
		resp, err := tpCall(t, direct, ln.Addr(), "Echo.Hello", bytes.Repeat([]byte("x"), size))
		if err != nil {
			t.Fatalf("Call with %d bytes: %v", size, err)
		}
		if resp.Header[metadata.Status] != "413" || !bytes.Contains(resp.Body, []byte(`"code":413`)) {
			t.Fatalf("Call with %d bytes: %v %s, want 413", size, resp.Header, resp.Body)
		}
	}
	// Through the plugin, the host refuses before sending.
	_, err := tpCall(t, tc, ln.Addr(), "Echo.Hello", bytes.Repeat([]byte("x"), transport.DefaultMaxBodyBytes+1))
	if tpCode(t, err) != 413 || stderrors.Is(err, transport.ErrNotSent) {
		t.Fatalf("oversized Call through the plugin: %v, want a 413 that is not retried", err)
	}

	// The listener keeps serving, and a large body under the limit passes.
	big := bytes.Repeat([]byte("y"), 3<<20)
	for _, tr := range []transport.Transport{direct, tc} {
		resp, err := tpCall(t, tr, ln.Addr(), "Echo.Hello", big)
		if err != nil || resp.Header[metadata.Status] != "" || !bytes.Equal(resp.Body, big) {
			t.Fatalf("3 MiB call after the refusals: %v, %v", resp.Header, err)
		}
	}
}

func TestTransportPluginShutdownDrains(t *testing.T) {
	p := startTPPlugin(t)
	block, started := make(chan struct{}), make(chan struct{}, 1)
	_, ln, served := tpListen(t, plugin.StaticConn(p.cc), tpEcho{block: block, started: started})
	direct := tpDirect(t)

	answered := make(chan *transport.Message, 1)
	go func() {
		resp, err := tpCall(t, direct, ln.Addr(), "Echo.Slow", []byte("slow"))
		if err != nil {
			t.Errorf("in-flight call: %v", err)
		}
		answered <- resp
	}()
	select {
	case <-started:
	case <-time.After(tpWait):
		t.Fatal("the slow request never reached the handler")
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), tpWait)
		defer cancel()
		shut <- ln.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-answered:
		t.Fatal("the slow request finished before it was released")
	case <-time.After(100 * time.Millisecond):
	}
	close(block)
	select {
	case resp := <-answered:
		if resp == nil || string(resp.Body) != "slow" {
			t.Fatalf("in-flight call answered %v", resp)
		}
	case <-time.After(tpWait):
		t.Fatal("in-flight call never finished")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(tpWait):
		t.Fatal("Shutdown never returned")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(tpWait):
		t.Fatal("Serve never returned after Shutdown")
	}
	if _, err := tpCall(t, direct, ln.Addr(), "Echo.Hello", nil); err == nil {
		t.Fatal("the plugin still listens after Shutdown")
	}
}

func TestTransportPluginRestart(t *testing.T) {
	baseline := runtime.NumGoroutine()
	a := startTPPlugin(t)
	conn := newTPSwitchConn(a.cc)
	tc := plugin.NewTransportClient("http", conn)
	ln, err := tc.Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ln.Serve(tpEcho{}) }()
	direct := transport.NewHTTP()
	if resp, err := tpCall(t, direct, ln.Addr(), "Echo.Hello", []byte("before")); err != nil || string(resp.Body) != "before" {
		t.Fatalf("call before the crash: %v, %v", resp, err)
	}

	// The plugin crashes: its listener goes with it.
	conn.down()
	a.stop()
	start := time.Now()
	_, err = tpCall(t, tc, ln.Addr(), "Echo.Hello", nil)
	if !stderrors.Is(err, transport.ErrNotSent) || tpCode(t, err) != 503 {
		t.Fatalf("call while the plugin is down: %v, want a 503 wrapping ErrNotSent", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("call while the plugin is down took %v, want it to fail fast", d)
	}

	// A new process comes up; the host's listener is back on the same address by itself.
	b := startTPPlugin(t)
	conn.up(b.cc)
	deadline := time.Now().Add(tpWait)
	for {
		resp, err := tpCall(t, direct, ln.Addr(), "Echo.Hello", []byte("after"))
		if err == nil && string(resp.Body) == "after" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener on %s never came back: %v", ln.Addr(), err)
		}
		<-time.After(10 * time.Millisecond) // poll interval
	}
	if resp, err := tpCall(t, tc, ln.Addr(), "Echo.Hello", []byte("via plugin")); err != nil || string(resp.Body) != "via plugin" {
		t.Fatalf("call through the new plugin: %v, %v", resp, err)
	}

	// Close: Serve returns nil, and every goroutine goes away.
	ln.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(tpWait):
		t.Fatal("Serve never returned after Close")
	}
	direct.Close()
	tc.Close()
	b.stop()
	tpSettle(t, baseline)
}

func TestTransportPluginStoppedForGood(t *testing.T) {
	p := startTPPlugin(t)
	conn := newTPSwitchConn(p.cc)
	_, ln, served := tpListen(t, conn, tpEcho{})
	conn.stop()
	p.stop()
	select {
	case err := <-served:
		if !stderrors.Is(err, transport.ErrClosed) {
			t.Fatalf("Serve after the plugin stopped for good: %v, want transport.ErrClosed", err)
		}
	case <-time.After(tpWait):
		t.Fatal("Serve kept waiting for a plugin that was stopped for good")
	}
	if _, err := tpCall(t, tpDirect(t), ln.Addr(), "Echo.Hello", nil); err == nil {
		t.Fatal("the listener still answers")
	}
}

func TestTransportPluginNoGoroutineLeak(t *testing.T) {
	baseline := runtime.NumGoroutine()
	p := startTPPlugin(t)
	tc := plugin.NewTransportClient("http", plugin.StaticConn(p.cc))
	ln, err := tc.Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ln.Serve(tpEcho{}) }()
	direct := transport.NewHTTP()
	var open []transport.Stream
	for _, tr := range []transport.Transport{tc, direct} {
		if _, err := tpCall(t, tr, ln.Addr(), "Echo.Hello", []byte("x")); err != nil {
			t.Fatal(err)
		}
		conn, _ := tr.Dial(tpCtx(t), ln.Addr())
		s, err := conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
		if err != nil {
			t.Fatal(err)
		}
		tpEchoStream(t, s)
		// A stream still open when the listener closes.
		s, err = conn.Stream(tpCtx(t), map[string]string{metadata.Endpoint: "Echo.Stream"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send([]byte("left open")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}

	ln.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	for _, s := range open {
		if _, err := s.Recv(); err == nil {
			t.Fatal("Recv on a stream of a closed listener succeeded")
		}
		s.Close()
	}
	direct.Close()
	tc.Close()
	p.stop()
	tpSettle(t, baseline)
}

// tpSettle waits until no more goroutines run than at baseline.
func tpSettle(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(tpWait)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines still run, %d before:\n%s", runtime.NumGoroutine(), baseline, buf.String())
		}
		<-time.After(10 * time.Millisecond) // poll interval
	}
}

// tpNoCalls is a transport plugin built before the Calls stream: every Calls
// stream ends at once with Unimplemented.
type tpNoCalls struct{ pluginv1.TransportServer }

func (tpNoCalls) Calls(pluginv1.Transport_CallsServer) error {
	return status.Error(codes.Unimplemented, "unknown method Calls")
}

// endedFirst is the host's end of a Calls stream the plugin ended before the
// host's first batch left: SendMsg fails with io.EOF, as gRPC's does on an
// ended stream, and RecvMsg reports the plugin's status only after that.
type endedFirst struct {
	grpc.ClientStream
	once sync.Once
	sent chan struct{}
}

func (s *endedFirst) SendMsg(any) error {
	s.once.Do(func() { close(s.sent) })
	return io.EOF
}

func (s *endedFirst) RecvMsg(m any) error {
	select {
	case <-s.sent:
	case <-s.Context().Done():
	}
	return s.ClientStream.RecvMsg(m)
}

// TestTransportPluginWithoutCallsStream checks that calls through a plugin that
// does not serve the Calls stream are made as Call RPCs, also those queued on
// the Calls stream before the plugin refused it: none may fail.
func TestTransportPluginWithoutCallsStream(t *testing.T) {
	own := transport.NewHTTP()
	t.Cleanup(func() { _ = own.Close() })
	cc := tpServeOn(t, tpNoCalls{plugin.NewTransportServer(own)},
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil || method != pluginv1.Transport_Calls_FullMethodName {
				return s, err
			}
			return &endedFirst{ClientStream: s, sent: make(chan struct{})}, nil
		}))

	echoAddr := tpEchoAddr(t)

	tc := plugin.NewTransportClient("http", plugin.StaticConn(cc))
	t.Cleanup(func() { _ = tc.Close() })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(fmt.Sprintf(`"%d"`, i))
			resp, err := tpCall(t, tc, echoAddr, "Echo.Hello", body)
			if err != nil || !bytes.Equal(resp.Body, body) {
				t.Errorf("call %d = %v, %v; want the echo over a Call RPC", i, resp, err)
			}
		}()
	}
	wg.Wait()
}

// TestTransportPluginCallAfterCloseOpensNoStream calls through a connection
// dialed before its transport closed. The call still goes through, but as a
// single Call RPC: a Calls stream opened after Close would never be retired,
// and its goroutines and the plugin's end of it would stay until the plugin
// stopped.
func TestTransportPluginCallAfterCloseOpensNoStream(t *testing.T) {
	own := transport.NewHTTP()
	t.Cleanup(func() { _ = own.Close() })
	var opened atomic.Int32
	cc := tpServeOn(t, plugin.NewTransportServer(own),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if method == pluginv1.Transport_Calls_FullMethodName {
				opened.Add(1)
			}
			return streamer(ctx, desc, cc, method, opts...)
		}))

	echoAddr := tpEchoAddr(t)

	tc := plugin.NewTransportClient("http", plugin.StaticConn(cc))
	conn, err := tc.Dial(tpCtx(t), echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	call := func(body string) {
		t.Helper()
		resp, err := conn.Call(tpCtx(t), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Hello"}, Body: []byte(body)})
		if err != nil || string(resp.Body) != body {
			t.Fatalf("call = %v, %v; want the echo", resp, err)
		}
	}
	call(`"before"`)
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d Calls streams opened by the first call, want 1", n)
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	call(`"after"`)
	if n := opened.Load(); n != 1 {
		t.Fatalf("a call after Close opened a Calls stream (%d in all); nothing would ever close it", n)
	}
}

// tpServeOn serves ts as a plugin's transport on loopback gRPC and returns the
// host's connection to it, dialed with opts; t.Cleanup stops both.
func tpServeOn(t *testing.T, ts pluginv1.TransportServer, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pluginv1.RegisterTransportServer(srv, ts)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() { srv.Stop(); <-served })
	cc, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// tpEchoAddr serves tpEcho on the built-in http transport and returns its
// address; t.Cleanup stops it.
func tpEchoAddr(t *testing.T) string {
	t.Helper()
	ln, err := tpDirect(t).Listen(tpCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tpServe(t, ln, tpEcho{})
	return ln.Addr()
}

// TestTransportPluginCloseClosesTheSocket closes plugin listeners, served and
// not, and dials their address at once: as with a built-in listener, nobody may
// connect once Close returns.
func TestTransportPluginCloseClosesTheSocket(t *testing.T) {
	p := startTPPlugin(t)
	tc := plugin.NewTransportClient("http", plugin.StaticConn(p.cc))
	t.Cleanup(func() { _ = tc.Close() })
	for _, served := range []bool{false, true} {
		for i := range 10 {
			ln, err := tc.Listen(tpCtx(t), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if served {
				done := tpServe(t, ln, tpEcho{})
				if _, err := tpCall(t, p.http, ln.Addr(), "Echo.Hello", []byte(`"x"`)); err != nil {
					t.Fatal(err)
				}
				ln.Close()
				<-done
			} else {
				ln.Close()
			}
			if c, err := net.Dial("tcp", ln.Addr()); err == nil {
				c.Close()
				t.Fatalf("listener %d (served %v): %s still accepts connections after Close returned", i, served, ln.Addr())
			}
		}
	}
}
