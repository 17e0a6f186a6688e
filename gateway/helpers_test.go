package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
)

// GetUserRequest names a user; id arrives as a path parameter.
type GetUserRequest struct {
	ID      int  `json:"id"`
	Verbose bool `json:"verbose,omitempty"`
}

// User is what Users answers.
type User struct {
	ID       int               `json:"id"`
	Name     string            `json:"name"`
	Internal string            `json:"internal,omitempty"`
	Verbose  bool              `json:"verbose,omitempty"`
	Profile  map[string]string `json:"profile,omitempty"`
}

// EchoRequest is echoed back with the metadata the call arrived with.
type EchoRequest struct {
	Text  string   `json:"text,omitempty"`
	Path  string   `json:"path,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Fail  int32    `json:"fail,omitempty"`  // answer with this status
	Delay string   `json:"delay,omitempty"` // wait this long (or "ctx": until cancelled)
}

// EchoResponse carries the request and its metadata.
type EchoResponse struct {
	Text     string            `json:"text"`
	Path     string            `json:"path,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Instance string            `json:"instance"`
	Header   map[string]string `json:"header"`
}

// Users is a backend service handler.
type Users struct{}

// Get returns a user.
func (Users) Get(ctx context.Context, req *GetUserRequest) (*User, error) {
	if req.ID <= 0 {
		return nil, errors.Unprocessable("users", []errors.FieldError{{Field: "id", Detail: "must be positive"}}, "invalid user id %d", req.ID)
	}
	if req.ID == 404 {
		return nil, errors.NotFound("users", "no user %d", req.ID)
	}
	return &User{ID: req.ID, Name: "user" + itoa(req.ID), Internal: "secret", Verbose: req.Verbose,
		Profile: map[string]string{"city": "Oslo"}}, nil
}

// Delete removes a user (an endpoint backend policies block).
func (Users) Delete(ctx context.Context, req *GetUserRequest) (*User, error) {
	return &User{ID: req.ID}, nil
}

// Echo is a backend handler that counts its calls and can fail or stall.
type Echo struct {
	instance string
	calls    atomic.Int64
	// failFirst makes the first n calls answer 503.
	failFirst atomic.Int64
	// stallFirst makes the first n calls wait for their deadline.
	stallFirst atomic.Int64
}

// Say echoes.
func (e *Echo) Say(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	e.calls.Add(1)
	if e.failFirst.Add(-1) >= 0 {
		return nil, errors.Unavailable("echo", "failing on purpose")
	}
	if e.stallFirst.Add(-1) >= 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if req.Fail != 0 {
		return nil, errors.New("echo", req.Fail, "asked to fail with %d", req.Fail)
	}
	switch req.Delay {
	case "":
	case "ctx":
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		d, _ := time.ParseDuration(req.Delay)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return &EchoResponse{Text: req.Text, Path: req.Path, Tags: req.Tags, Instance: e.instance, Header: md}, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// backend runs a real service with handler h registered in reg until stop
// (or the test's end).
type backend struct {
	svc  *service.Service
	stop func()
}

func startBackend(t testing.TB, reg registry.Registry, name string, h any, opts ...server.HandleOption) *backend {
	t.Helper()
	svc := service.New(name, service.Registry(reg), service.Address("127.0.0.1:0"),
		service.HandleSignals(false), service.DrainTimeout(time.Second))
	if err := svc.Handle(h, opts...); err != nil {
		t.Fatal(err)
	}
	return runBackend(t, svc)
}

// runBackend runs svc until the test ends and waits until it is ready.
func runBackend(t testing.TB, svc *service.Service) *backend {
	t.Helper()
	name := svc.Name()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("backend %s: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("backend %s not ready", name)
	}
	stopped := false
	b := &backend{svc: svc}
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
	}
	t.Cleanup(b.stop)
	return b
}

// startGateway serves a gateway for cfg over reg on a loopback port and waits
// until it is ready.
func startGateway(t testing.TB, cfg gateway.Config, reg registry.Registry, opts ...gateway.Option) (*gateway.Gateway, string) {
	t.Helper()
	g, err := gateway.New(cfg, append([]gateway.Option{gateway.Registry(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("gateway Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	waitFor(t, "gateway ready", func() bool { return g.Ready() })
	return g, base
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// problem decodes a problem document and checks its content type.
func (r response) problem(t *testing.T) gateway.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != gateway.ProblemContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, gateway.ProblemContentType, r.body)
	}
	var p gateway.Problem
	r.json(t, &p)
	return p
}

// do sends one request; header is "Name: value" lines.
func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	r, err := send(method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's: it reports failures
// instead of ending the test.
func send(method, url, body string, header ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading the answer to %s %s: %w", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}, nil
}

// startRawBackend serves h as the only node of service name: a backend that
// speaks the wire format (POST /Handler.Method) without the SDK, so a test
// controls its status codes and headers exactly.
func startRawBackend(t testing.TB, reg registry.Registry, name string, h http.HandlerFunc) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	svc := &registry.Service{Name: name, Version: "raw", Nodes: []*registry.Node{{ID: name + "-raw", Address: srv.Listener.Addr().String()}}}
	if err := reg.Register(context.Background(), svc, 0); err != nil {
		t.Fatal(err)
	}
}
