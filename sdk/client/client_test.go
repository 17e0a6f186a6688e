package client_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// streamRefuser is a transport whose streams fail to open with err, counting
// the tries.
type streamRefuser struct {
	transport.Transport
	err   error
	tries atomic.Int32
}

func (r *streamRefuser) Dial(context.Context, string) (transport.Conn, error) { return r, nil }
func (r *streamRefuser) Call(context.Context, *transport.Message) (*transport.Message, error) {
	return nil, r.err
}
func (r *streamRefuser) Stream(context.Context, map[string]string) (transport.Stream, error) {
	r.tries.Add(1)
	return nil, r.err
}
func (r *streamRefuser) Close() error { return nil }

// TestStreamOpenRetries checks opening a stream is tried on other nodes when
// a node is unavailable, but not when the answer says no node would take it.
func TestStreamOpenRetries(t *testing.T) {
	reg := registry.NewMemory()
	t.Cleanup(func() { reg.Close() })
	var nodes []*registry.Node
	for i := range 4 {
		nodes = append(nodes, &registry.Node{ID: fmt.Sprint(i), Address: fmt.Sprintf("10.0.0.%d:1", i)})
	}
	if err := reg.Register(context.Background(), &registry.Service{Name: "echo", Nodes: nodes}, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		err   error
		tries int32
	}{
		{"unavailable", errors.Unavailable("echo", "down"), 3},
		{"not found", errors.NotFound("echo", "no such stream endpoint"), 1},
		{"method not allowed", errors.MethodNotAllowed("echo", "streams need POST"), 1},
	} {
		tr := &streamRefuser{err: tc.err}
		cli := newClient(t, client.Registry(reg), client.Transport(tr), client.Retries(2))
		_, err := cli.Stream(context.Background(), "echo", "Echo.Count")
		if errors.Code(err) != errors.Code(tc.err) || tr.tries.Load() != tc.tries {
			t.Errorf("%s: %v after %d tries; want code %d after %d", tc.name, err, tr.tries.Load(), errors.Code(tc.err), tc.tries)
		}
	}
}

// TestErrorAnswerInAnUnknownFormatKeepsItsStatus checks an error answer whose
// body no codec reads (a proxy's plain-text 503) still reports its status.
func TestErrorAnswerInAnUnknownFormatKeepsItsStatus(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "upstream connect error")
	}))
	t.Cleanup(proxy.Close)
	addr := strings.TrimPrefix(proxy.URL, "http://")
	err := newClient(t).Call(context.Background(), "echo", "Echo.Say", map[string]string{}, nil, client.WithAddress(addr), client.WithRetries(0))
	if errors.Code(err) != http.StatusServiceUnavailable {
		t.Fatalf("%v, want the proxy's 503", err)
	}
}

// TestDeadlinePassedBeforeSending checks a call whose deadline passed before a
// try could be sent is a 504 that says it never left.
func TestDeadlinePassedBeforeSending(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := newClient(t).Call(ctx, "echo", "Echo.Say", map[string]string{}, nil, client.WithAddress(closedAddr(t)))
	if errors.Code(err) != http.StatusGatewayTimeout || !stderrors.Is(err, transport.ErrNotSent) {
		t.Fatalf("%v, want a 504 wrapping transport.ErrNotSent", err)
	}
}
