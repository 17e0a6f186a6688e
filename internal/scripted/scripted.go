// Package scripted is a transport for tests whose answers are scripted per
// address, and a selector that always takes the first node allowed: with both,
// a test sees exactly which nodes a caller's tries go to.
package scripted

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// FirstNode selects the first node the options let through, so which node a
// try goes to depends only on what the caller excludes.
type FirstNode struct{}

// Select returns the first node opts let through.
func (FirstNode) Select(services []*registry.Service, opts ...registry.SelectOption) (*registry.Node, registry.Done, error) {
	o := registry.NewSelectOptions(opts...)
	for _, s := range services {
		for _, n := range s.Nodes {
			if o.Match(s, n) {
				return n, func(error) {}, nil
			}
		}
	}
	return nil, nil, errors.New("no node matches")
}

// Transport answers every call itself: 503 from the failing addresses, an
// echo from the others; it reports the unhealthy ones and records where each
// call went. The zero value is ready.
type Transport struct {
	mu                 sync.Mutex
	failing, unhealthy []string
	dialed             []string
}

// Reset sets the failing and unhealthy addresses and forgets the calls made.
func (t *Transport) Reset(failing, unhealthy []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing, t.unhealthy, t.dialed = failing, unhealthy, nil
}

// Calls lists the addresses called, in order.
func (t *Transport) Calls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.dialed)
}

// Name is "scripted".
func (*Transport) Name() string { return "scripted" }

// Listen fails: a scripted transport only calls.
func (*Transport) Listen(context.Context, string) (transport.Listener, error) {
	return nil, errors.New("scripted: no listeners")
}

// Dial returns a connection answering as scripted for addr.
func (t *Transport) Dial(_ context.Context, addr string) (transport.Conn, error) {
	return conn{t, addr}, nil
}

// Close does nothing.
func (*Transport) Close() error { return nil }

// Healthy reports whether addr is not among the unhealthy ones.
func (t *Transport) Healthy(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !slices.Contains(t.unhealthy, addr)
}

type conn struct {
	t    *Transport
	addr string
}

func (c conn) Call(context.Context, *transport.Message) (*transport.Message, error) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	c.t.dialed = append(c.t.dialed, c.addr)
	if slices.Contains(c.t.failing, c.addr) {
		return &transport.Message{
			Header: map[string]string{metadata.Status: "503", metadata.ContentType: "application/json"},
			Body:   []byte(`{"id":"echo","code":503,"detail":"down"}`),
		}, nil
	}
	return &transport.Message{
		Header: map[string]string{metadata.ContentType: "application/json"},
		Body:   []byte(`{"text":"hi"}`),
	}, nil
}

func (conn) Stream(context.Context, map[string]string) (transport.Stream, error) {
	return nil, errors.New("scripted: no streams")
}

func (conn) Close() error { return nil }
