package service_test

import (
	"bytes"
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
	"github.com/microhost/micro/sdk/transport"
)

func newClient(t *testing.T, r registry.Registry, opts ...client.Option) *client.Client {
	t.Helper()
	c := client.New(append([]client.Option{client.Registry(r)}, opts...)...)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCallCodecsAndProtocols(t *testing.T) {
	reg := registry.NewMemory()
	svc := start(t, "echo", &Echo{}, service.Registry(reg))
	cases := []struct {
		name  string
		trans transport.Transport
		codec codec.Codec
	}{
		{"json over http1.1", transport.NewHTTP(), codec.JSON()},
		{"msgpack over http1.1", transport.NewHTTP(), codec.Msgpack()},
		{"json over h2c", transport.NewHTTP(transport.HTTP2(true)), codec.JSON()},
		{"msgpack over h2c", transport.NewHTTP(transport.HTTP2(true)), codec.Msgpack()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { tc.trans.Close() })
			c := newClient(t, reg, client.Transport(tc.trans), client.Codec(tc.codec))
			var rsp EchoResponse
			if err := c.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "héllo"}, &rsp); err != nil {
				t.Fatal(err)
			}
			if rsp.Text != "héllo" || rsp.Instance != svc.ID() {
				t.Fatalf("got %+v", rsp)
			}
		})
	}
}

func TestRegistersRealAddressAndEndpoints(t *testing.T) {
	reg := registry.NewMemory()
	svc := start(t, "echo", &Echo{}, service.Registry(reg), service.Address("localhost:0"), service.Version("1.2.3"), service.Metadata("zone", "a"))
	svcs, err := reg.GetService(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("registered %+v", svcs)
	}
	s, n := svcs[0], svcs[0].Nodes[0]
	host, port, _ := net.SplitHostPort(n.Address)
	if host != "127.0.0.1" || port == "0" || n.Address != svc.Addr() {
		t.Fatalf("registered address %q, want the real bound 127.0.0.1:<port>", n.Address)
	}
	if s.Version != "1.2.3" || n.Metadata["zone"] != "a" || n.Metadata["transport"] != "http" {
		t.Errorf("registered %+v %+v", s, n)
	}
	var names []string
	for _, ep := range s.Endpoints {
		names = append(names, ep.Name+":"+ep.Metadata["kind"])
	}
	want := "Echo.Count:server-stream Echo.Flaky:unary Echo.Panic:unary Echo.Say:unary Echo.Sum:bidi-stream"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("endpoints %q, want %q", got, want)
	}
}

func TestErrorEnvelopeCrossesWithStatus(t *testing.T) {
	reg := registry.NewMemory()
	start(t, "echo", &Echo{}, service.Registry(reg))
	for _, c := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
		cli := newClient(t, reg, client.Codec(c))
		err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Fail: 409}, nil)
		var e *errors.Error
		if !stderrors.As(err, &e) {
			t.Fatalf("%s: error %T %v is not an envelope", c.Name(), err, err)
		}
		if e.Code != 409 || e.ID != "echo" || e.Status != "Conflict" || e.Detail != "failing as asked with 409" {
			t.Errorf("%s: envelope %+v", c.Name(), e)
		}
		if !stderrors.Is(err, errors.Conflict("", "")) {
			t.Errorf("%s: errors.Is does not match by code", c.Name())
		}
	}
	cli := newClient(t, reg)
	err := cli.Call(context.Background(), "echo", "Echo.Missing", &EchoRequest{}, nil)
	if errors.Code(err) != 404 || !strings.Contains(err.Error(), "Echo.Say") {
		t.Errorf("unknown endpoint: %v, want 404 listing the endpoints", err)
	}
	err = cli.Call(context.Background(), "echo", "Echo.Panic", &EchoRequest{}, nil)
	if errors.Code(err) != 500 {
		t.Errorf("panicking handler: %v, want 500", err)
	}
	var rsp EchoResponse
	if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "still up"}, &rsp); err != nil || rsp.Text != "still up" {
		t.Errorf("after a panic the service should keep serving: %v %+v", err, rsp)
	}
	err = cli.Call(context.Background(), "nobody", "X.Y", &EchoRequest{}, nil)
	if errors.Code(err) != 503 || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("unknown service: %v, want 503 naming it", err)
	}
}

func TestMetadataBothWays(t *testing.T) {
	reg := registry.NewMemory()
	svc := start(t, "echo", &Echo{}, service.Registry(reg))
	cli := newClient(t, reg)
	ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{"micro-tenant": "acme"})
	var rsp EchoResponse
	var back metadata.MD
	if err := cli.Call(ctx, "echo", "Echo.Say", &EchoRequest{Text: "x"}, &rsp, client.ResponseHeader(&back)); err != nil {
		t.Fatal(err)
	}
	if rsp.Tenant != "acme" {
		t.Errorf("server saw tenant %q, want acme", rsp.Tenant)
	}
	if got, _ := back.Get("Micro-Served-By"); got != svc.ID() {
		t.Errorf("response metadata Micro-Served-By = %q, want %q", got, svc.ID())
	}
}

func TestDeadlinePropagationAndTimeout(t *testing.T) {
	reg := registry.NewMemory()
	start(t, "echo", &Echo{}, service.Registry(reg))
	cli := newClient(t, reg)

	var rsp EchoResponse
	if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{}, &rsp, client.WithTimeout(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(rsp.Deadline)
	if err != nil || d <= 0 || d > 2*time.Second {
		t.Fatalf("handler saw deadline %q, want the caller's remaining budget (0, 2s]", rsp.Deadline)
	}

	err = cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Delay: "ctx"}, &rsp, client.WithTimeout(50*time.Millisecond))
	if errors.Code(err) != 504 {
		t.Fatalf("call past its timeout: %v, want 504", err)
	}
}

func TestRetriesOnlyWhenSafe(t *testing.T) {
	reg := registry.NewMemory()
	e := &Echo{}
	start(t, "echo", e, service.Registry(reg))
	cli := newClient(t, reg, client.Retries(3), client.WithBackoff(func(int) time.Duration { return time.Millisecond }))

	// Flaky is registered idempotent: two 503s, then success.
	var rsp EchoResponse
	if err := cli.Call(context.Background(), "echo", "Echo.Flaky", &EchoRequest{Text: "ok", Fail: 2}, &rsp); err != nil {
		t.Fatalf("idempotent endpoint should be retried: %v", err)
	}
	if got := e.calls.Load(); got != 3 {
		t.Errorf("Flaky called %d times, want 3", got)
	}

	// Say is not idempotent: one try only, unless the caller opts in.
	e.calls.Store(0)
	err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Fail: 503}, nil)
	if errors.Code(err) != 503 || e.calls.Load() != 1 {
		t.Errorf("non-idempotent call: %v after %d tries, want 503 after 1", err, e.calls.Load())
	}
	e.calls.Store(0)
	err = cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Fail: 503}, nil, client.Idempotent())
	if errors.Code(err) != 503 || e.calls.Load() != 4 {
		t.Errorf("opted-in call: %v after %d tries, want 503 after 4", err, e.calls.Load())
	}
	// Client errors are never retried.
	e.calls.Store(0)
	err = cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Fail: 400}, nil, client.Idempotent())
	if errors.Code(err) != 400 || e.calls.Load() != 1 {
		t.Errorf("400: %v after %d tries, want 1", err, e.calls.Load())
	}
}

func TestRetryGoesToAnotherNodeWhenOneIsGone(t *testing.T) {
	reg := registry.NewMemory()
	live := start(t, "echo", &Echo{}, service.Registry(reg))
	// A registration whose process is gone: the port refuses connections.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if err := reg.Register(context.Background(), &registry.Service{Name: "echo", Version: "latest", Nodes: []*registry.Node{{ID: "dead", Address: dead}}}, 0); err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, reg, client.WithBackoff(func(int) time.Duration { return 0 }))
	for i := 0; i < 10; i++ {
		var rsp EchoResponse
		// Not idempotent, yet safe to retry: the refused connection sent nothing.
		if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "x"}, &rsp); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if rsp.Instance != live.ID() {
			t.Fatalf("answered by %q", rsp.Instance)
		}
	}
}

func TestMiddlewareOrder(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	record := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	srvMW := func(name string) server.Middleware {
		return func(next server.Handler) server.Handler {
			return func(ctx context.Context, req *server.Request) (any, error) {
				record("server " + name + " " + req.Endpoint)
				return next(ctx, req)
			}
		}
	}
	cliMW := func(name string) client.Middleware {
		return func(next client.Handler) client.Handler {
			return func(ctx context.Context, req *client.Request, rsp any) error {
				record("client " + name)
				req.Header.Set("Micro-Tenant", "from-middleware")
				return next(ctx, req, rsp)
			}
		}
	}
	reg := registry.NewMemory()
	start(t, "echo", &Echo{}, service.Registry(reg), service.ServerOptions(server.WithMiddleware(srvMW("outer"), srvMW("inner"))))
	cli := newClient(t, reg, client.WithMiddleware(cliMW("outer"), cliMW("inner")))
	var rsp EchoResponse
	if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{}, &rsp); err != nil {
		t.Fatal(err)
	}
	want := "client outer|client inner|server outer Echo.Say|server inner Echo.Say"
	if got := strings.Join(trace, "|"); got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	if rsp.Tenant != "from-middleware" {
		t.Errorf("metadata set by client middleware did not arrive: %q", rsp.Tenant)
	}
}

func TestStreaming(t *testing.T) {
	reg := registry.NewMemory()
	start(t, "echo", &Echo{}, service.Registry(reg))
	for _, c := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
		cli := newClient(t, reg, client.Codec(c))
		t.Run("server stream "+c.Name(), func(t *testing.T) {
			s, err := cli.Stream(context.Background(), "echo", "Echo.Count")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Send(&CountRequest{To: 50}); err != nil {
				t.Fatal(err)
			}
			s.CloseSend()
			for i := 1; ; i++ {
				var n Number
				err := s.Recv(&n)
				if stderrors.Is(err, io.EOF) {
					if i != 51 {
						t.Fatalf("stream ended after %d messages, want 50", i-1)
					}
					break
				}
				if err != nil || n.N != i {
					t.Fatalf("message %d: %+v %v", i, n, err)
				}
			}
		})
		t.Run("bidi stream "+c.Name(), func(t *testing.T) {
			s, err := cli.Stream(context.Background(), "echo", "Echo.Sum")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			total := 0
			for i := 1; i <= 20; i++ {
				total += i
				if err := s.Send(&Number{N: i}); err != nil {
					t.Fatal(err)
				}
				var got Number
				if err := s.Recv(&got); err != nil || got.N != total {
					t.Fatalf("after %d: %+v %v, want %d", i, got, err, total)
				}
			}
			if err := s.Send(&Number{N: -1}); err != nil {
				t.Fatal(err)
			}
			var got Number
			err = s.Recv(&got)
			if e := errors.FromError(err); e.Code != 422 || len(e.Fields) != 1 || e.Fields[0].Field != "n" {
				t.Fatalf("stream error %v, want 422 with the field", err)
			}
		})
	}
}

func TestBadInputOverRawHTTP(t *testing.T) {
	reg := registry.NewMemory()
	svc := start(t, "echo", &Echo{}, service.Registry(reg))
	url := "http://" + svc.Addr() + "/Echo.Say"
	cases := []struct {
		name        string
		contentType string
		accept      string
		body        []byte
		want        int
		detail      string
	}{
		{"good json", "application/json; charset=utf-8", "", []byte(`{"text":"hi"}`), 200, ""},
		{"malformed json", "application/json", "", []byte(`{"text":`), 400, "malformed json"},
		{"wrong field type", "application/json", "", []byte(`{"text":42}`), 400, "malformed json"},
		{"unknown content type", "text/plain", "", []byte(`hi`), 415, "text/plain"},
		{"nothing acceptable", "application/json", "text/html", []byte(`{}`), 406, "text/html"},
		{"over 4 MiB", "application/json", "", bytes.Repeat([]byte(" "), 4<<20+1), 413, "limit"},
		{"msgpack alias", "application/x-msgpack", "", []byte{0x81, 0xa4, 't', 'e', 'x', 't', 0xa2, 'h', 'i'}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == 200 {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("error content type %q", resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), fmt.Sprintf(`"code":%d`, tc.want)) || !strings.Contains(string(body), tc.detail) {
				t.Errorf("body %s is not an envelope with %d naming %q", body, tc.want, tc.detail)
			}
		})
	}
	// Nothing was lost: the service still answers.
	cli := newClient(t, reg)
	var rsp EchoResponse
	if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "alive"}, &rsp); err != nil || rsp.Text != "alive" {
		t.Fatalf("after bad input: %v %+v", err, rsp)
	}
}

func TestHeartbeatKeepsRegistrationAlive(t *testing.T) {
	mem := registry.NewMemory(registry.WithReapInterval(5 * time.Millisecond))
	t.Cleanup(func() { mem.Close() })
	counting := &countingRegistry{Registry: mem}
	start(t, "echo", &Echo{}, service.Registry(counting), service.TTL(60*time.Millisecond))
	// Several heartbeats span more than three TTLs; the node must still be there.
	waitFor(t, func() bool { return counting.registers.Load() >= 10 }, "ten heartbeats")
	if n := nodes(t, mem, "echo"); len(n) != 1 {
		t.Fatalf("after heartbeats the registry has %v, want one node", n)
	}
}

// TestGracefulDrainOnSIGTERM sends this process a real SIGTERM: instance A handles
// signals, instance B ignores them. The call in flight on A completes, A
// deregisters and drains, and later calls go to B.
func TestGracefulDrainOnSIGTERM(t *testing.T) {
	reg := registry.NewMemory()
	b := start(t, "echo", &Echo{}, service.Registry(reg))

	ea := &Echo{started: make(chan struct{}, 1)}
	a := service.New("echo", service.Registry(reg), service.DrainTimeout(10*time.Second))
	ea.instance = a.ID()
	if err := a.Handle(ea); err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(context.Background()) }()
	<-a.Ready()

	cli := newClient(t, reg, client.Selector(registry.RoundRobin()))
	// Start a slow call on A.
	inflight := make(chan error, 1)
	var slow EchoResponse
	go func() {
		inflight <- cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "slow", Delay: "300ms"}, &slow,
			client.WithAddress(a.Addr()), client.WithTimeout(10*time.Second))
	}()
	<-ea.started

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-inflight; err != nil || slow.Text != "slow" || slow.Instance != a.ID() {
		t.Fatalf("in-flight call during drain: %v %+v", err, slow)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("A's Run after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A did not stop after SIGTERM")
	}
	if n := nodes(t, reg, "echo"); len(n) != 1 || !strings.HasPrefix(n[0], b.ID()) {
		t.Fatalf("after A stopped the registry has %v, want only B", n)
	}
	for i := 0; i < 10; i++ {
		var rsp EchoResponse
		if err := cli.Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "after"}, &rsp); err != nil {
			t.Fatalf("call %d after A drained: %v", i, err)
		}
		if rsp.Instance != b.ID() {
			t.Fatalf("call %d answered by %s, want B", i, rsp.Instance)
		}
	}
}

// countingRegistry counts Register calls (heartbeats).
type countingRegistry struct {
	registry.Registry
	registers atomicInt
}

func (c *countingRegistry) Register(ctx context.Context, s *registry.Service, ttl time.Duration) error {
	c.registers.Add(1)
	return c.Registry.Register(ctx, s, ttl)
}

// goroutinesIn counts the goroutines whose stack has fn in it.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// TestRunReleasesWhatTheServiceCreated checks a service that made its own
// transport and registry stops their background work when Run returns.
func TestRunReleasesWhatTheServiceCreated(t *testing.T) {
	const health, reaper = "transport.(*HTTP).healthLoop", "registry.(*Memory).reap"
	healthBefore, reaperBefore := goroutinesIn(health), goroutinesIn(reaper)

	svc := service.New("echo", service.HandleSignals(false))
	if err := svc.Handle(&Echo{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Ready()
	var rsp EchoResponse
	if err := svc.Client().Call(context.Background(), "echo", "Echo.Say", &EchoRequest{Text: "x"}, &rsp); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return goroutinesIn(health) <= healthBefore && goroutinesIn(reaper) <= reaperBefore
	}, "the service's transport health checks and registry reaper to stop")
}
