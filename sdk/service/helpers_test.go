package service_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
)

type EchoRequest struct {
	Text  string `json:"text"`
	Delay string `json:"delay,omitempty"` // a duration to wait, or "ctx" to wait for cancellation
	Fail  int32  `json:"fail,omitempty"`  // answer with this status
}

type EchoResponse struct {
	Text     string `json:"text"`
	Instance string `json:"instance"`
	Tenant   string `json:"tenant,omitempty"`
	Deadline string `json:"deadline,omitempty"`
}

type CountRequest struct {
	To int `json:"to"`
}

type Number struct {
	N int `json:"n"`
}

// Echo is the handler the tests run.
type Echo struct {
	instance string
	calls    atomic.Int64
	started  chan struct{} // receives once per call, if set
}

func (e *Echo) Say(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	e.calls.Add(1)
	if e.started != nil {
		e.started <- struct{}{}
	}
	switch req.Delay {
	case "":
	case "ctx":
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		d, err := time.ParseDuration(req.Delay)
		if err != nil {
			return nil, errors.BadRequest("echo", "delay: %v", err)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if req.Fail != 0 {
		return nil, errors.New("echo", req.Fail, "failing as asked with %d", req.Fail)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	tenant, _ := md.Get("Micro-Tenant")
	metadata.SetResponse(ctx, "Micro-Served-By", e.instance)
	rsp := &EchoResponse{Text: req.Text, Instance: e.instance, Tenant: tenant}
	if dl, ok := ctx.Deadline(); ok {
		rsp.Deadline = time.Until(dl).Round(time.Millisecond).String()
	}
	return rsp, nil
}

// Flaky fails with 503 until it has been called `failures` times.
func (e *Echo) Flaky(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	if n := e.calls.Add(1); n <= int64(req.Fail) {
		return nil, errors.Unavailable("echo", "flaky call %d", n)
	}
	return &EchoResponse{Text: req.Text, Instance: e.instance}, nil
}

func (e *Echo) Panic(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	panic("boom")
}

func (e *Echo) Count(ctx context.Context, req *CountRequest, stream server.Stream) error {
	for i := 1; i <= req.To; i++ {
		if err := stream.Send(&Number{N: i}); err != nil {
			return err
		}
	}
	return nil
}

// Sum reads numbers until the caller closes its side, answering each with the
// running total, then fails if asked to with a negative number.
func (e *Echo) Sum(ctx context.Context, stream server.Stream) error {
	total := 0
	for {
		var n Number
		if err := stream.Recv(&n); err != nil {
			if stderrors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if n.N < 0 {
			return errors.Unprocessable("echo", []errors.FieldError{{Field: "n", Detail: "must not be negative"}}, "negative number")
		}
		total += n.N
		if err := stream.Send(&Number{N: total}); err != nil {
			return err
		}
	}
}

// NotAHandler has the wrong shape and is left out.
func (e *Echo) NotAHandler(s string) string { return s }

// start runs a service with handler e in the background until the test ends.
func start(t *testing.T, name string, e *Echo, opts ...service.Option) *service.Service {
	t.Helper()
	opts = append([]service.Option{service.HandleSignals(false), service.DrainTimeout(5 * time.Second)}, opts...)
	svc := service.New(name, opts...)
	if e.instance == "" {
		e.instance = svc.ID()
	}
	if err := svc.Handle(e, server.Idempotent("Flaky")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service %s: Run: %v", name, err)
		}
	})
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("service %s stopped before it was ready: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("service %s not ready", name)
	}
	return svc
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func nodes(t *testing.T, r registry.Registry, name string) []string {
	t.Helper()
	svcs, err := r.GetService(context.Background(), name)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range svcs {
		for _, n := range s.Nodes {
			out = append(out, fmt.Sprintf("%s@%s", n.ID, n.Address))
		}
	}
	return out
}

type atomicInt = atomic.Int64
