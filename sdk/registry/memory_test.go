package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

func TestMemoryRegisterGetDeregister(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t)
	if m.Name() != "memory" {
		t.Fatalf("Name() = %q, want memory", m.Name())
	}
	mustRegister(t, m, svc("greeter", "v2", "c"))
	mustRegister(t, m, svc("greeter", "v1", "a", "b"))

	steps := []struct {
		name    string
		op      func() error
		want    []string // nil: not found
		wantErr error
	}{
		{"both versions, sorted", nil, []string{"v1/a", "v1/b", "v2/c"}, nil},
		{"deregister one node", func() error { return m.Deregister(ctx, svc("greeter", "v1", "a")) }, []string{"v1/b", "v2/c"}, nil},
		{"deregister unknown node", func() error { return m.Deregister(ctx, svc("greeter", "v1", "zz")) }, []string{"v1/b", "v2/c"}, nil},
		{"deregister unknown version", func() error { return m.Deregister(ctx, svc("greeter", "v9", "b")) }, []string{"v1/b", "v2/c"}, nil},
		{"deregister a whole version", func() error { return m.Deregister(ctx, svc("greeter", "v1", "b")) }, []string{"v2/c"}, nil},
		{"deregister the last node", func() error { return m.Deregister(ctx, svc("greeter", "v2", "c")) }, nil, registry.ErrNotFound},
	}
	for _, st := range steps {
		if st.op != nil {
			if err := st.op(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		got, err := m.GetService(ctx, "greeter")
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: GetService error = %v, want %v", st.name, err, st.wantErr)
		}
		if ids := nodeIDs(got); !slices.Equal(ids, st.want) {
			t.Fatalf("%s: nodes = %v, want %v", st.name, ids, st.want)
		}
	}
}

func TestMemoryGetServiceReturnsCopies(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t)
	s := svc("greeter", "v1", "a")
	s.Metadata = map[string]string{"zone": "eu"}
	mustRegister(t, m, s)
	s.Nodes[0].Address = "changed by the caller after Register"

	got, err := m.GetService(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	got[0].Metadata["zone"] = "us"
	got[0].Nodes[0].ID = "mutated"

	again, err := m.GetService(ctx, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Metadata["zone"] != "eu" || again[0].Nodes[0].ID != "a" || again[0].Nodes[0].Address != "10.0.0.1:8080" {
		t.Fatalf("registry state changed through a copy: %+v %+v", again[0], again[0].Nodes[0])
	}
}

func TestMemoryListServices(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t)
	mustRegister(t, m, svc("users", "v1", "u"))
	mustRegister(t, m, svc("greeter", "v2", "b"))
	mustRegister(t, m, svc("greeter", "v1", "a"))

	list, err := m.ListServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Name+"@"+s.Version)
	}
	if want := []string{"greeter@v1", "greeter@v2", "users@v1"}; !slices.Equal(got, want) {
		t.Fatalf("ListServices = %v, want %v", got, want)
	}
}

func TestMemoryRegisterRejectsInvalid(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t)
	noAddr := svc("greeter", "v1", "a")
	noAddr.Nodes[0].Address = ""
	for _, tc := range []struct {
		name string
		svc  *registry.Service
	}{
		{"nil", nil},
		{"no name", svc("", "v1", "a")},
		{"no nodes", svc("greeter", "v1")},
		{"node without ID", svc("greeter", "v1", "")},
		{"node without address", noAddr},
		{"duplicate node IDs", svc("greeter", "v1", "a", "a")},
		{"nil node", &registry.Service{Name: "greeter", Nodes: []*registry.Node{nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Register(ctx, tc.svc, 0); !errors.Is(err, registry.ErrInvalidService) {
				t.Fatalf("Register error = %v, want ErrInvalidService", err)
			}
		})
	}
}

func TestMemoryWatchEventsInOrder(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t)
	w, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	withMeta := svc("greeter", "v1", "a", "b")
	withMeta.Metadata = map[string]string{"zone": "eu"}
	ops := []struct {
		name  string
		op    func() error
		event registry.EventType // 0: no event expected
		nodes []string
	}{
		{"first node creates", func() error { return m.Register(ctx, svc("greeter", "v1", "a"), time.Minute) }, registry.Create, []string{"v1/a"}},
		{"pure refresh is silent", func() error { return m.Register(ctx, svc("greeter", "v1", "a"), time.Minute) }, 0, nil},
		{"new node updates", func() error { return m.Register(ctx, svc("greeter", "v1", "b"), time.Minute) }, registry.Update, []string{"v1/a", "v1/b"}},
		{"metadata change updates", func() error { return m.Register(ctx, withMeta, time.Minute) }, registry.Update, []string{"v1/a", "v1/b"}},
		{"other version creates", func() error { return m.Register(ctx, svc("greeter", "v2", "c"), 0) }, registry.Create, []string{"v2/c"}},
		{"removing a node updates", func() error { return m.Deregister(ctx, svc("greeter", "v1", "a")) }, registry.Update, []string{"v1/b"}},
		{"removing the last node deletes", func() error { return m.Deregister(ctx, svc("greeter", "v1", "b")) }, registry.Delete, []string{"v1/b"}},
	}
	var want []string
	for _, op := range ops {
		if err := op.op(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if op.event != 0 {
			want = append(want, fmt.Sprintf("%s %v", op.event, op.nodes))
		}
	}
	var got []string
	for range want {
		ev := next(t, w)
		if ev.Service.Name != "greeter" || ev.Timestamp.IsZero() {
			t.Fatalf("event without name or time: %+v", ev)
		}
		got = append(got, fmt.Sprintf("%s %v", ev.Type, nodeIDs([]*registry.Service{ev.Service})))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestMemoryTTL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		refresh bool // register again 9s in
		advance time.Duration
		want    []string
		event   registry.EventType // 0: none
	}{
		{"expires after its ttl", 10 * time.Second, false, 11 * time.Second, []string{"v1/b"}, registry.Update},
		{"refresh before ttl keeps it", 10 * time.Second, true, 18 * time.Second, []string{"v1/a", "v1/b"}, 0},
		{"refreshed node still expires", 10 * time.Second, true, 20 * time.Second, []string{"v1/b"}, registry.Update},
		{"ttl 0 never expires", 0, false, 1000 * time.Hour, []string{"v1/a", "v1/b"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			clock := newFakeClock()
			m := newMemory(t, registry.WithClock(clock.Now))
			if err := m.Register(ctx, svc("greeter", "v1", "a"), tc.ttl); err != nil {
				t.Fatal(err)
			}
			mustRegister(t, m, &registry.Service{Name: "greeter", Version: "v1",
				Nodes: []*registry.Node{{ID: "b", Address: "10.0.0.2:8080"}}})
			w, err := m.Watch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Stop)
			if tc.refresh {
				clock.Advance(9 * time.Second)
				if err := m.Register(ctx, svc("greeter", "v1", "a"), tc.ttl); err != nil {
					t.Fatal(err)
				}
				clock.Advance(tc.advance - 9*time.Second)
			} else {
				clock.Advance(tc.advance)
			}
			registry.ExpireNow(m)
			got, err := m.GetService(ctx, "greeter")
			if err != nil {
				t.Fatal(err)
			}
			if ids := nodeIDs(got); !slices.Equal(ids, tc.want) {
				t.Fatalf("nodes = %v, want %v", ids, tc.want)
			}
			if tc.event != 0 {
				if ev := next(t, w); ev.Type != tc.event {
					t.Fatalf("event = %v, want %v", ev.Type, tc.event)
				}
			}
		})
	}
}

func TestMemoryTTLIsPerNode(t *testing.T) {
	ctx := testCtx(t)
	clock := newFakeClock()
	m := newMemory(t, registry.WithClock(clock.Now))
	for id, ttl := range map[string]time.Duration{"a": 10 * time.Second, "b": 20 * time.Second, "c": 30 * time.Second} {
		if err := m.Register(ctx, svc("greeter", "v1", id), ttl); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		advance time.Duration
		want    []string
	}{
		{11 * time.Second, []string{"v1/b", "v1/c"}},
		{5 * time.Second, []string{"v1/b", "v1/c"}},
		{5 * time.Second, []string{"v1/c"}},
		{10 * time.Second, nil},
	} {
		clock.Advance(step.advance)
		registry.ExpireNow(m)
		got, err := m.GetService(ctx, "greeter")
		if step.want == nil && !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("GetService = %v, %v; want ErrNotFound", nodeIDs(got), err)
		}
		if ids := nodeIDs(got); !slices.Equal(ids, step.want) {
			t.Fatalf("nodes = %v, want %v", ids, step.want)
		}
	}
}

func TestMemoryTTLExpiryEmitsDelete(t *testing.T) {
	ctx := testCtx(t)
	clock := newFakeClock()
	m := newMemory(t, registry.WithClock(clock.Now))
	w, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if err := m.Register(ctx, svc("greeter", "v1", "a"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	registry.ExpireNow(m)

	if ev := next(t, w); ev.Type != registry.Create {
		t.Fatalf("first event = %v, want create", ev.Type)
	}
	ev := next(t, w)
	if ev.Type != registry.Delete || !slices.Equal(nodeIDs([]*registry.Service{ev.Service}), []string{"v1/a"}) {
		t.Fatalf("expiry event = %v %v, want delete [v1/a]", ev.Type, nodeIDs([]*registry.Service{ev.Service}))
	}
	if _, err := m.GetService(ctx, "greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after expiry: %v, want ErrNotFound", err)
	}
}

func TestMemoryReaperRunsInBackground(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t, registry.WithReapInterval(2*time.Millisecond))
	w, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if err := m.Register(ctx, svc("greeter", "v1", "a"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, want := range []registry.EventType{registry.Create, registry.Delete} {
		if ev := next(t, w); ev.Type != want {
			t.Fatalf("event = %v, want %v", ev.Type, want)
		}
	}
}

func TestMemorySlowWatcherDoesNotBlockRegister(t *testing.T) {
	ctx := testCtx(t)
	m := newMemory(t, registry.WithWatchBuffer(4))
	slow, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.Stop)

	const services = 20
	done := make(chan error, 1)
	go func() {
		for i := range services {
			if err := m.Register(ctx, svc(fmt.Sprintf("svc-%02d", i), "v1", "a"), 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Register blocked on a watcher nobody reads")
	}

	// The queued events come first, then the overflow error that asks for a resync.
	for i := range 4 {
		if ev := next(t, slow); ev.Service.Name != fmt.Sprintf("svc-%02d", i) {
			t.Fatalf("event %d is for %s", i, ev.Service.Name)
		}
	}
	if _, err := slow.Next(); !errors.Is(err, registry.ErrWatcherOverflow) {
		t.Fatalf("Next after overflow = %v, want ErrWatcherOverflow", err)
	}
	list, err := m.ListServices(ctx)
	if err != nil || len(list) != services {
		t.Fatalf("ListServices = %d services, %v; want %d", len(list), err, services)
	}
}

func TestMemoryWatcherEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(m *registry.Memory, w registry.Watcher, cancel context.CancelFunc)
		want error
	}{
		{"Stop", func(_ *registry.Memory, w registry.Watcher, _ context.CancelFunc) { w.Stop() }, registry.ErrWatcherStopped},
		{"context canceled", func(_ *registry.Memory, _ registry.Watcher, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"registry closed", func(m *registry.Memory, _ registry.Watcher, _ context.CancelFunc) { _ = m.Close() }, registry.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemory(t)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			w, err := m.Watch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() {
				_, err := w.Next()
				got <- err
			}()
			tc.end(m, w, cancel)
			select {
			case err := <-got:
				if !errors.Is(err, tc.want) {
					t.Fatalf("Next = %v, want %v", err, tc.want)
				}
			case <-time.After(waitLimit):
				t.Fatal("Next did not return")
			}
			w.Stop() // idempotent
		})
	}
}

func TestMemoryAfterCloseAndCanceledContext(t *testing.T) {
	m := newMemory(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Register(canceled, svc("greeter", "v1", "a"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Register with canceled ctx = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	ctx := testCtx(t)
	if err := m.Register(ctx, svc("greeter", "v1", "a"), time.Second); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("Register after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Watch(ctx); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("Watch after Close = %v, want ErrClosed", err)
	}
	if _, err := m.GetService(ctx, "greeter"); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("GetService after Close = %v, want ErrClosed", err)
	}
}
