package plugin_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
)

// newRegistryAdapter serves r over gRPC and returns the host-side adapter to it.
func newRegistryAdapter(t *testing.T, r registry.Registry) registry.Registry {
	t.Helper()
	s := startAdapterServer(t, r, nil)
	return plugin.NewRegistryClient("test-registry", plugin.StaticConn(s.cc))
}

// greeter is a service with metadata, endpoints and two nodes.
func greeter(version string, nodeIDs ...string) *registry.Service {
	svc := &registry.Service{
		Name:     "greeter",
		Version:  version,
		Metadata: map[string]string{"team": "core", "protocol": "http"},
		Endpoints: []*registry.Endpoint{
			{Name: "Greeter.Hello", Request: "HelloRequest", Response: "HelloResponse", Metadata: map[string]string{"method": "POST"}},
			{Name: "Greeter.Stream", Metadata: map[string]string{"stream": "true"}},
		},
	}
	for i, id := range nodeIDs {
		svc.Nodes = append(svc.Nodes, &registry.Node{
			ID: id, Address: fmt.Sprintf("127.0.0.1:%d", 9000+i), Metadata: map[string]string{"zone": "eu-" + id},
		})
	}
	return svc
}

func TestRegistryAdapterRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistryAdapter(t, newMemoryRegistry(t))
	if got := r.Name(); got != "test-registry" {
		t.Fatalf("Name() = %q, want the name the host gave", got)
	}
	v1, v2 := greeter("1.0.0", "a", "b"), greeter("2.0.0", "c")
	for _, svc := range []*registry.Service{v1, v2} {
		if err := r.Register(ctx, svc, 0); err != nil {
			t.Fatalf("Register %s: %v", svc.Version, err)
		}
	}
	got, err := r.GetService(ctx, "greeter")
	if err != nil {
		t.Fatalf("GetService: %v", err)
	}
	if want := []*registry.Service{v1, v2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("GetService = %s, want %s", dump(got), dump(want))
	}
	got[0].Metadata["team"] = "changed" // the caller owns what it got
	again, err := r.GetService(ctx, "greeter")
	if err != nil || again[0].Metadata["team"] != "core" {
		t.Fatalf("GetService after changing a result = %s, %v", dump(again), err)
	}

	list, err := r.ListServices(ctx)
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	if len(list) != 2 || list[0].Version != "1.0.0" || list[1].Version != "2.0.0" ||
		!reflect.DeepEqual(list[0].Endpoints, v1.Endpoints) || !reflect.DeepEqual(list[0].Metadata, v1.Metadata) {
		t.Fatalf("ListServices = %s", dump(list))
	}

	if err := r.Deregister(ctx, &registry.Service{Name: "greeter", Version: "1.0.0", Nodes: []*registry.Node{{ID: "a"}}}); err != nil {
		t.Fatalf("Deregister a: %v", err)
	}
	got, err = r.GetService(ctx, "greeter")
	if err != nil || len(got) != 2 || len(got[0].Nodes) != 1 || got[0].Nodes[0].ID != "b" {
		t.Fatalf("GetService after deregistering node a = %s, %v", dump(got), err)
	}
	for _, svc := range []*registry.Service{v1, v2} {
		if err := r.Deregister(ctx, svc); err != nil {
			t.Fatalf("Deregister %s: %v", svc.Version, err)
		}
	}
	if _, err := r.GetService(ctx, "greeter"); !stderrors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after deregistering everything: %v, want ErrNotFound", err)
	}
}

func TestRegistryAdapterNotFoundCrosses(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistryAdapter(t, newMemoryRegistry(t))
	_, err := r.GetService(ctx, "missing")
	if !stderrors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService(missing) = %v, want an error wrapping registry.ErrNotFound", err)
	}
	env := envelopeOf(t, err)
	if env.Code != 404 || env.ID != "memory" || env.Status != "Not Found" {
		t.Fatalf("envelope = %+v, want 404 from the plugin's memory registry", env)
	}
	if !stderrors.Is(err, errors.NotFound("", "")) {
		t.Fatalf("errors.Is(%v, NotFound) = false", err)
	}
}

func TestRegistryAdapterInvalidService(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistryAdapter(t, newMemoryRegistry(t))
	for _, svc := range []*registry.Service{nil, {Name: "x"}, {Name: "x", Nodes: []*registry.Node{{ID: "n"}}}} {
		if err := r.Register(ctx, svc, 0); !stderrors.Is(err, registry.ErrInvalidService) {
			t.Errorf("Register(%+v) = %v, want ErrInvalidService", svc, err)
		}
	}
	if err := r.Deregister(ctx, &registry.Service{}); !stderrors.Is(err, registry.ErrInvalidService) {
		t.Errorf("Deregister(no name) = %v, want ErrInvalidService", err)
	}
}

// failingRegistry answers every call with err.
type failingRegistry struct {
	registry.Registry
	err error
}

func (f failingRegistry) Name() string { return "failing" }
func (f failingRegistry) Register(context.Context, *registry.Service, time.Duration) error {
	return f.err
}
func (f failingRegistry) GetService(context.Context, string) ([]*registry.Service, error) {
	return nil, f.err
}
func (f failingRegistry) ListServices(context.Context) ([]*registry.Service, error) {
	return nil, f.err
}
func (f failingRegistry) Watch(context.Context) (registry.Watcher, error) { return nil, f.err }

func TestRegistryAdapterErrorsCross(t *testing.T) {
	conflict := errors.Conflict("consul", "service %q is owned by another agent", "greeter")
	tests := []struct {
		name     string
		err      error
		code     int32
		id       string
		sentinel error
	}{
		{"envelope 409 intact", conflict, 409, "consul", nil},
		{"wrapped envelope", fmt.Errorf("consul: %w", conflict), 409, "consul", nil},
		{"not found", fmt.Errorf("consul: %w: %q", registry.ErrNotFound, "greeter"), 404, "failing", registry.ErrNotFound},
		{"invalid service", fmt.Errorf("%w: no nodes", registry.ErrInvalidService), 400, "failing", registry.ErrInvalidService},
		{"closed", fmt.Errorf("consul: %w", registry.ErrClosed), 503, "failing", nil},
		{"plain error", stderrors.New("consul agent said no"), 500, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			r := newRegistryAdapter(t, failingRegistry{err: tc.err})
			calls := map[string]func() error{
				"Register": func() error { return r.Register(ctx, greeter("1", "a"), time.Second) },
				"GetService": func() error {
					_, err := r.GetService(ctx, "greeter")
					return err
				},
				"ListServices": func() error {
					_, err := r.ListServices(ctx)
					return err
				},
				"Watch": func() error {
					_, err := r.Watch(ctx)
					return err
				},
			}
			for call, fn := range calls {
				err := fn()
				env := envelopeOf(t, err)
				if env.Code != tc.code || env.ID != tc.id || env.Detail == "" {
					t.Errorf("%s: envelope %+v, want code %d from %q", call, env, tc.code, tc.id)
				}
				if tc.err == conflict && !reflect.DeepEqual(env, conflict) {
					t.Errorf("%s: envelope %+v, want %+v intact", call, env, conflict)
				}
				if tc.sentinel != nil && !stderrors.Is(err, tc.sentinel) {
					t.Errorf("%s: %v does not wrap %v", call, err, tc.sentinel)
				}
			}
		})
	}
}

func TestRegistryAdapterWatchInOrder(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistryAdapter(t, newMemoryRegistry(t))
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(w.Stop)

	// Watch returned, so the plugin's watcher is open: every change below streams.
	steps := []struct {
		do   func() error
		want registry.EventType
	}{
		{func() error { return r.Register(ctx, greeter("1", "a"), 0) }, registry.Create},
		{func() error { return r.Register(ctx, greeter("1", "a", "b"), 0) }, registry.Update},
		{func() error { return r.Register(ctx, greeter("2", "c"), 0) }, registry.Create},
		{func() error { return r.Deregister(ctx, greeter("1", "a")) }, registry.Update},
		{func() error { return r.Deregister(ctx, greeter("1", "a", "b")) }, registry.Delete},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	wantNodes := [][]string{{"a"}, {"a", "b"}, {"c"}, {"b"}, {"b"}}
	wantVersion := []string{"1", "1", "2", "1", "1"}
	for i, s := range steps {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var ids []string
		for _, n := range ev.Service.Nodes {
			ids = append(ids, n.ID)
		}
		if ev.Type != s.want || ev.Service.Version != wantVersion[i] || !reflect.DeepEqual(ids, wantNodes[i]) || ev.Timestamp.IsZero() {
			t.Fatalf("event %d = %s %s nodes %v at %v, want %s %s nodes %v", i, ev.Type, ev.Service.Version, ids, ev.Timestamp, s.want, wantVersion[i], wantNodes[i])
		}
		if i == 0 && (!reflect.DeepEqual(ev.Service.Endpoints, greeter("1").Endpoints) || ev.Service.Metadata["team"] != "core" || ev.Service.Nodes[0].Metadata["zone"] != "eu-a") {
			t.Fatalf("event 0 lost metadata or endpoints: %s", dump([]*registry.Service{ev.Service}))
		}
	}

	w.Stop()
	if _, err := w.Next(); !stderrors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after Stop = %v, want ErrWatcherStopped", err)
	}
}

func TestRegistryAdapterWatchEndsWithContext(t *testing.T) {
	r := newRegistryAdapter(t, newMemoryRegistry(t))
	ctx, cancel := context.WithCancel(testCtx(t))
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(w.Stop)
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next()
		errc <- err
	}()
	cancel()
	if err := receive(t, errc, "Next to return after cancel"); !stderrors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}
	if _, err := r.Watch(ctx); !stderrors.Is(err, context.Canceled) {
		t.Fatalf("Watch(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestRegistryAdapterTTL(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistryAdapter(t, newMemoryRegistry(t, registry.WithReapInterval(5*time.Millisecond)))
	if err := r.Register(ctx, greeter("1", "a"), 50*time.Millisecond); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if _, err := r.GetService(ctx, "greeter"); err != nil {
		t.Fatalf("GetService right after Register: %v", err)
	}
	eventually(t, "the node to expire after its TTL", func() bool {
		_, err := r.GetService(ctx, "greeter")
		return stderrors.Is(err, registry.ErrNotFound)
	})
}

func TestRegistryAdapterBehindCache(t *testing.T) {
	ctx := testCtx(t)
	inner := newRegistryAdapter(t, newMemoryRegistry(t))
	c := registry.NewCache(inner)
	t.Cleanup(func() { _ = c.Close() })
	eventually(t, "the cache's watch to open", c.Ready)

	applied := c.Stats().Events
	if err := inner.Register(ctx, greeter("1", "a"), 0); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := c.WaitApplied(ctx, applied+1); err != nil { // else a fetch racing the event is not kept
		t.Fatal(err)
	}
	got, err := c.Lookup(ctx, "greeter")
	if err != nil || len(got) != 1 || len(got[0].Nodes) != 1 {
		t.Fatalf("Lookup = %s, %v", dump(got), err)
	}
	// A change reaches the cache through the watch stream, not through a fetch.
	fetches, applied := c.Stats().Fetches, c.Stats().Events
	if fetches != 1 {
		t.Fatalf("fetches = %d after the first lookup, want 1", fetches)
	}
	if err := c.Register(ctx, greeter("1", "a", "b"), 0); err != nil {
		t.Fatalf("Register through the cache: %v", err)
	}
	if err := c.WaitApplied(ctx, applied+1); err != nil {
		t.Fatal(err)
	}
	got, err = c.Lookup(ctx, "greeter")
	if err != nil || len(got) != 1 || len(got[0].Nodes) != 2 {
		t.Fatalf("Lookup after the update = %s, %v", dump(got), err)
	}
	if st := c.Stats(); st.Fetches != fetches || st.Watches != 1 {
		t.Fatalf("stats %+v: the update should come from the single watch, not a fetch", st)
	}
}

// dump formats services for failure messages.
func dump(svcs []*registry.Service) string {
	out := "["
	for _, s := range svcs {
		if s == nil {
			out += "nil "
			continue
		}
		out += fmt.Sprintf("{%s %s md=%v eps=%d nodes=", s.Name, s.Version, s.Metadata, len(s.Endpoints))
		for _, n := range s.Nodes {
			out += fmt.Sprintf("%s@%s%v ", n.ID, n.Address, n.Metadata)
		}
		out += "} "
	}
	return out + "]"
}
