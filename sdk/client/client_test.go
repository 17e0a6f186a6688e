package client_test

import (
	"context"
	stderrors "errors"
	"net"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c := client.New(append([]client.Option{client.WithBackoff(func(int) time.Duration { return 0 })}, opts...)...)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCallThatNeverLeftSaysSo checks a call that reached no server is a 503
// wrapping transport.ErrNotSent, so its caller knows it is safe to try again.
func TestCallThatNeverLeftSaysSo(t *testing.T) {
	reg := registry.NewMemory()
	t.Cleanup(func() { reg.Close() })
	dead := closedAddr(t)
	if err := reg.Register(context.Background(), &registry.Service{Name: "echo", Nodes: []*registry.Node{{ID: "dead", Address: dead}}}, 0); err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, client.Registry(reg))
	for _, tc := range []struct {
		name    string
		service string
		opts    []client.CallOption
	}{
		{"refused address", "echo", []client.CallOption{client.WithAddress(dead)}},
		{"refused registered node", "echo", nil},
		{"no instance registered", "nobody", nil},
	} {
		err := cli.Call(context.Background(), tc.service, "Echo.Say", map[string]string{}, nil, tc.opts...)
		if errors.Code(err) != 503 || !stderrors.Is(err, transport.ErrNotSent) {
			t.Errorf("%s: %v, want a 503 wrapping transport.ErrNotSent", tc.name, err)
		}
	}
}

// TestCanceledCallIsNotATimeout checks a call its caller canceled is reported
// as such (499), not as a deadline that passed (504).
func TestCanceledCallIsNotATimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newClient(t).Call(ctx, "echo", "Echo.Say", map[string]string{}, nil, client.WithAddress(closedAddr(t)))
	if errors.Code(err) != errors.StatusClientClosed {
		t.Errorf("canceled call: %v, want %d", err, errors.StatusClientClosed)
	}
}
