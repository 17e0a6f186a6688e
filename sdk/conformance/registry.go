package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

// Registry runs the registry.Registry conformance suite. newRegistry is called once
// per subtest with that subtest's t and returns a registry connected to the
// backend under test; it registers whatever closing the registry needs with
// t.Cleanup. Subtests may share one backend: every service name is unique to the
// run, and every node registered is deregistered when its subtest ends.
//
// Reads are polled until they show what was written (within Timeout), so
// eventually consistent backends pass; events are matched by service name, so
// other traffic on a shared backend is ignored. The TTL subtests use TTL and can
// be skipped with SkipTTL.
//
// Subtests (each runnable alone with -run): RegisterGet, Versions, TwoNodes,
// Deregister, ListServices, Watch, ReRegister, TTLRefresh, TTLExpiry,
// InvalidService, ConcurrentRegister.
func Registry(t *testing.T, newRegistry func(t *testing.T) registry.Registry, opts ...Option) {
	t.Helper()
	s := &registrySuite{cfg: newConfig(opts), newRegistry: newRegistry}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"RegisterGet", s.registerGet},
		{"Versions", s.versions},
		{"TwoNodes", s.twoNodes},
		{"Deregister", s.deregister},
		{"ListServices", s.listServices},
		{"Watch", s.watch},
		{"ReRegister", s.reRegister},
		{"TTLRefresh", s.ttlRefresh},
		{"TTLExpiry", s.ttlExpiry},
		{"InvalidService", s.invalidService},
		{"ConcurrentRegister", s.concurrentRegister},
	} {
		t.Run(tc.name, tc.run)
	}
}

// registrySuite holds what every registry subtest needs.
type registrySuite struct {
	cfg         config
	newRegistry func(t *testing.T) registry.Registry
}

// open returns a registry for one subtest.
func (s *registrySuite) open(t *testing.T) registry.Registry {
	t.Helper()
	r := s.newRegistry(t)
	if r == nil {
		t.Fatal("newRegistry returned nil")
	}
	return r
}

// serviceName returns a service name unique to this run and subtest.
func serviceName(t *testing.T) string {
	return "conformance-" + slug(t.Name()) + "-" + newID()
}

// newService builds one version of name with a node per id, each on its own
// loopback address, with node metadata naming the node.
func newService(name, version string, ids ...string) *registry.Service {
	svc := &registry.Service{Name: name, Version: version}
	for i, id := range ids {
		svc.Nodes = append(svc.Nodes, &registry.Node{
			ID:       id,
			Address:  fmt.Sprintf("127.0.0.1:%d", 20001+i),
			Metadata: map[string]string{"node": id},
		})
	}
	return svc
}

// register registers a copy of svc with ttl, failing t on error, and deregisters
// it when the test ends.
func (s *registrySuite) register(t *testing.T, r registry.Registry, svc *registry.Service, ttl time.Duration) {
	t.Helper()
	if err := r.Register(callCtx(t, s.cfg.timeout), svc.Clone(), ttl); err != nil {
		t.Fatalf("Register(%s %s, nodes %v, ttl %v): %v", svc.Name, svc.Version, ids(svc.Nodes), ttl, err)
	}
	gone := svc.Clone()
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx(s.cfg.timeout)
		defer cancel()
		_ = r.Deregister(ctx, gone) // may already be gone: the test deregistered it
	})
}

// deregisterNodes deregisters the listed nodes of svc, failing t on error.
func (s *registrySuite) deregisterNodes(t *testing.T, r registry.Registry, svc *registry.Service, nodes ...*registry.Node) {
	t.Helper()
	d := svc.Clone()
	d.Nodes = nil
	for _, n := range nodes {
		d.Nodes = append(d.Nodes, n.Clone())
	}
	if err := r.Deregister(callCtx(t, s.cfg.timeout), d); err != nil {
		t.Fatalf("Deregister(%s %s, nodes %v): %v", d.Name, d.Version, ids(d.Nodes), err)
	}
}

// waitFor polls GetService(name) until check accepts the versions it returns.
func (s *registrySuite) waitFor(t *testing.T, r registry.Registry, name, what string, check func([]*registry.Service) error) {
	t.Helper()
	eventually(t, s.cfg.timeout, what, func() error {
		svcs, err := r.GetService(callCtx(t, s.cfg.timeout), name)
		if err != nil {
			return fmt.Errorf("GetService(%q): %w", name, err)
		}
		return check(svcs)
	})
}

// waitGone polls GetService(name) until it fails with an error wrapping
// registry.ErrNotFound.
func (s *registrySuite) waitGone(t *testing.T, r registry.Registry, name string, within time.Duration, what string) {
	t.Helper()
	eventually(t, within, what, func() error {
		svcs, err := r.GetService(callCtx(t, s.cfg.timeout), name)
		switch {
		case err == nil:
			return fmt.Errorf("GetService(%q) still returns %s", name, describe(svcs))
		case !errors.Is(err, registry.ErrNotFound):
			return fmt.Errorf("GetService(%q) = %v, want an error wrapping registry.ErrNotFound", name, err)
		}
		return nil
	})
}

// expectVersions returns a check that GetService returned exactly the versions of
// want, each matching per matchService.
func expectVersions(want ...*registry.Service) func([]*registry.Service) error {
	return func(got []*registry.Service) error {
		if len(got) != len(want) {
			return fmt.Errorf("got %d versions (%s), want %d (%s)", len(got), describe(got), len(want), describe(want))
		}
		for _, w := range want {
			g := findVersion(got, w.Version)
			if g == nil {
				return fmt.Errorf("version %q missing: got %s", w.Version, describe(got))
			}
			if err := matchService(g, w); err != nil {
				return err
			}
		}
		return nil
	}
}

// findVersion returns the entry of svcs with version v, or nil.
func findVersion(svcs []*registry.Service, v string) *registry.Service {
	for _, s := range svcs {
		if s != nil && s.Version == v {
			return s
		}
	}
	return nil
}

// matchService reports how got differs from want. Name, version, the set of node
// IDs, node addresses and endpoint names and shapes must be equal; metadata must
// hold every key of want's (backends may add keys of their own).
func matchService(got, want *registry.Service) error {
	where := fmt.Sprintf("service %s %s", want.Name, want.Version)
	if got.Name != want.Name || got.Version != want.Version {
		return fmt.Errorf("%s: got name %q version %q", where, got.Name, got.Version)
	}
	if err := subset(got.Metadata, want.Metadata); err != nil {
		return fmt.Errorf("%s: metadata: %w", where, err)
	}
	for _, we := range want.Endpoints {
		i := slices.IndexFunc(got.Endpoints, func(e *registry.Endpoint) bool { return e != nil && e.Name == we.Name })
		if i < 0 {
			return fmt.Errorf("%s: endpoint %q missing (got %d endpoints)", where, we.Name, len(got.Endpoints))
		}
		ge := got.Endpoints[i]
		if ge.Request != we.Request || ge.Response != we.Response {
			return fmt.Errorf("%s: endpoint %q is %q → %q, want %q → %q", where, we.Name, ge.Request, ge.Response, we.Request, we.Response)
		}
		if err := subset(ge.Metadata, we.Metadata); err != nil {
			return fmt.Errorf("%s: endpoint %q metadata: %w", where, we.Name, err)
		}
	}
	if g, w := ids(got.Nodes), ids(want.Nodes); !slices.Equal(g, w) {
		return fmt.Errorf("%s: nodes %v, want %v", where, g, w)
	}
	for _, wn := range want.Nodes {
		gn := got.Nodes[slices.IndexFunc(got.Nodes, func(n *registry.Node) bool { return n.ID == wn.ID })]
		if gn.Address != wn.Address {
			return fmt.Errorf("%s: node %q address %q, want %q", where, wn.ID, gn.Address, wn.Address)
		}
		if err := subset(gn.Metadata, wn.Metadata); err != nil {
			return fmt.Errorf("%s: node %q metadata: %w", where, wn.ID, err)
		}
	}
	return nil
}

// subset reports the first key of want that got lacks or holds another value for.
func subset(got, want map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := got[k]; !ok || v != want[k] {
			return fmt.Errorf("key %q = %q (present %v), want %q; got %v", k, v, ok, want[k], got)
		}
	}
	return nil
}

// ids returns the sorted IDs of nodes; a nil node shows as "<nil>".
func ids(nodes []*registry.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if n == nil {
			out = append(out, "<nil>")
			continue
		}
		out = append(out, n.ID)
	}
	slices.Sort(out)
	return out
}

// describe renders versions and their nodes for failure messages.
func describe(svcs []*registry.Service) string {
	parts := make([]string, 0, len(svcs))
	for _, s := range svcs {
		if s == nil {
			parts = append(parts, "<nil>")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s@%s%v", s.Name, s.Version, ids(s.Nodes)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// registerGet checks one version comes back with its metadata, endpoints and
// nodes intact.
func (s *registrySuite) registerGet(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	want := &registry.Service{
		Name:     name,
		Version:  "1.2.3",
		Metadata: map[string]string{"team": "conformance", "note": "zoë ✓ 🚀"},
		Endpoints: []*registry.Endpoint{
			{Name: "Greeter.Hello", Request: "HelloRequest", Response: "HelloResponse", Metadata: map[string]string{"idempotent": "true"}},
			{Name: "Greeter.Stream", Request: "StreamRequest", Response: "StreamResponse", Metadata: map[string]string{"stream": "true"}},
		},
		Nodes: []*registry.Node{{ID: name + "-1", Address: "127.0.0.1:20001", Metadata: map[string]string{"zone": "eu-1", "weight": "10"}}},
	}
	s.register(t, r, want, 0)
	s.waitFor(t, r, name, "the registered service", expectVersions(want))
}

// versions checks two versions of one name are kept apart.
func (s *registrySuite) versions(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	v1 := newService(name, "1.0.0", name+"-v1")
	v2 := newService(name, "2.0.0", name+"-v2")
	v2.Nodes[0].Address = "127.0.0.1:20002"
	v2.Metadata = map[string]string{"generation": "2"}
	s.register(t, r, v1, 0)
	s.register(t, r, v2, 0)
	s.waitFor(t, r, name, "both versions", expectVersions(v1, v2))
}

// twoNodes checks a second Register of the same version adds its node.
func (s *registrySuite) twoNodes(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	both := newService(name, "1.0.0", name+"-a", name+"-b")
	a, b := both.Clone(), both.Clone()
	a.Nodes, b.Nodes = a.Nodes[:1], b.Nodes[1:]
	s.register(t, r, a, 0)
	s.waitFor(t, r, name, "the first node", expectVersions(a))
	s.register(t, r, b, 0)
	s.waitFor(t, r, name, "both nodes of one version", expectVersions(both))
}

// deregister checks Deregister removes only the nodes listed, and that a name
// without nodes is not found.
func (s *registrySuite) deregister(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	v1 := newService(name, "1.0.0", name+"-a", name+"-b")
	v2 := newService(name, "2.0.0", name+"-c")
	s.register(t, r, v1, 0)
	s.register(t, r, v2, 0)
	s.waitFor(t, r, name, "two versions", expectVersions(v1, v2))

	s.deregisterNodes(t, r, v1, v1.Nodes[0])
	left := v1.Clone()
	left.Nodes = left.Nodes[1:]
	s.waitFor(t, r, name, "one node of 1.0.0 deregistered", expectVersions(left, v2))

	s.deregisterNodes(t, r, v1, v1.Nodes[1])
	s.waitFor(t, r, name, "the last node of 1.0.0 deregistered", expectVersions(v2))

	s.deregisterNodes(t, r, v2, v2.Nodes...)
	s.waitGone(t, r, name, s.cfg.timeout, "every node deregistered")
}

// listServices checks a registered name is listed.
func (s *registrySuite) listServices(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	s.register(t, r, newService(name, "1.0.0", name+"-1"), 0)
	eventually(t, s.cfg.timeout, "ListServices includes the service", func() error {
		all, err := r.ListServices(callCtx(t, s.cfg.timeout))
		if err != nil {
			return fmt.Errorf("ListServices: %w", err)
		}
		if !slices.ContainsFunc(all, func(svc *registry.Service) bool { return svc != nil && svc.Name == name }) {
			return fmt.Errorf("%q not among the %d services listed", name, len(all))
		}
		return nil
	})
}

// watch checks a watcher sees a version created, updated with a second node and
// deleted, each event holding the state the contract says, and that Stop ends it.
func (s *registrySuite) watch(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	w := s.startWatch(t, r)

	both := newService(name, "1.0.0", name+"-a", name+"-b")
	a, b := both.Clone(), both.Clone()
	a.Nodes, b.Nodes = a.Nodes[:1], b.Nodes[1:]

	s.register(t, r, a, 0)
	w.expect(t, name, "create with node a", func(ev *registry.Event) error {
		return eventIs(ev, registry.Create, a, true)
	})
	s.register(t, r, b, 0)
	w.expect(t, name, "update with nodes a and b", func(ev *registry.Event) error {
		return eventIs(ev, registry.Update, both, true)
	})
	s.deregisterNodes(t, r, both, both.Nodes...)
	w.expect(t, name, "delete", func(ev *registry.Event) error {
		return eventIs(ev, registry.Delete, both, false)
	})

	w.w.Stop()
	select {
	case <-w.done:
	case <-time.After(s.cfg.timeout):
		t.Fatalf("Next still blocks %v after Stop; it must return an error", s.cfg.timeout)
	}
	if w.err == nil {
		t.Error("Next returned a nil error after Stop")
	}
}

// eventIs reports how ev differs from an event of type typ about want; with
// nodes, the event's nodes must be exactly want's.
func eventIs(ev *registry.Event, typ registry.EventType, want *registry.Service, nodes bool) error {
	if ev.Type != typ {
		return fmt.Errorf("event %s, want %s", ev.Type, typ)
	}
	if ev.Service.Version != want.Version {
		return fmt.Errorf("%s event for version %q, want %q", ev.Type, ev.Service.Version, want.Version)
	}
	if nodes {
		return matchService(ev.Service, want)
	}
	return nil
}

// watch is a running Watcher whose events a goroutine forwards to a channel, so
// waits can have deadlines.
type watch struct {
	timeout time.Duration
	w       registry.Watcher
	events  chan *registry.Event
	done    chan struct{} // closed when Next returned an error, held in err
	err     error
}

// startWatch starts a watcher, stopped when the test ends.
func (s *registrySuite) startWatch(t *testing.T, r registry.Registry) *watch {
	t.Helper()
	w, err := r.Watch(t.Context())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	wa := &watch{timeout: s.cfg.timeout, w: w, events: make(chan *registry.Event, 1024), done: make(chan struct{})}
	go func() {
		defer close(wa.done)
		for {
			ev, err := w.Next()
			if err != nil {
				wa.err = err
				return
			}
			select {
			case wa.events <- ev:
			default: // nobody reads this far behind; drop rather than block Stop
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		select {
		case <-wa.done:
		case <-time.After(s.cfg.timeout):
			t.Errorf("watcher's Next did not return within %v of Stop", s.cfg.timeout)
		}
	})
	return wa
}

// expect waits for an event about name that check accepts, skipping events about
// other names and, for name, those check rejects (listed if none is accepted).
func (w *watch) expect(t *testing.T, name, what string, check func(*registry.Event) error) {
	t.Helper()
	timer := time.NewTimer(w.timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev := <-w.events:
			if ev == nil || ev.Service == nil {
				t.Fatalf("watcher yielded an event without a service: %#v", ev)
			}
			if ev.Service.Name != name {
				continue
			}
			err := check(ev)
			if err == nil {
				return
			}
			seen = append(seen, fmt.Sprintf("%s %s (%v)", ev.Type, describe([]*registry.Service{ev.Service}), err))
		case <-w.done:
			t.Fatalf("watcher ended (Next: %v) while waiting for %s; events seen for %s: %v", w.err, what, name, seen)
		case <-timer.C:
			t.Fatalf("no %s event for %s within %v; events seen for it: %v", what, name, w.timeout, seen)
		}
	}
}

// reRegister checks registering a node again updates it in place: one node, with
// its new address and metadata, and the version's new metadata.
func (s *registrySuite) reRegister(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	svc := newService(name, "1.0.0", name+"-1")
	svc.Metadata = map[string]string{"rev": "1"}
	s.register(t, r, svc, 0)
	s.waitFor(t, r, name, "the first registration", expectVersions(svc))

	svc.Metadata["rev"] = "2"
	svc.Nodes[0].Address = "127.0.0.1:20099"
	svc.Nodes[0].Metadata["rev"] = "2"
	s.register(t, r, svc, 0)
	s.waitFor(t, r, name, "the node updated in place", expectVersions(svc))

	s.register(t, r, svc, 0) // the same again: still one node
	s.waitFor(t, r, name, "an identical registration changing nothing", expectVersions(svc))
}

// ttlRefresh checks a node registered again before its TTL ends outlives it:
// while a goroutine refreshes it every quarter TTL from the first registration,
// it must be found at every check for one and a half TTLs, and a watcher must
// not see it deleted in between.
func (s *registrySuite) ttlRefresh(t *testing.T) {
	if s.cfg.skipTTL {
		t.Skip("TTL tests skipped by conformance.SkipTTL")
	}
	r := s.open(t)
	name := serviceName(t)
	ttl, every := s.cfg.ttl, s.cfg.ttl/4
	svc := newService(name, "1.0.0", name+"-1")
	w := s.startWatch(t, r)
	start := time.Now()
	s.register(t, r, svc, ttl)

	stop, refreshed := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				refreshed <- nil
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
			err := r.Register(ctx, svc.Clone(), ttl)
			cancel()
			if err != nil {
				refreshed <- fmt.Errorf("refreshing Register %v after the first: %w", time.Since(start).Round(time.Millisecond), err)
				return
			}
		}
	}()
	stopped := false
	stopRefresh := func() error {
		if stopped {
			return nil
		}
		stopped = true
		close(stop)
		return <-refreshed
	}
	t.Cleanup(func() { _ = stopRefresh() })

	s.waitFor(t, r, name, "the registered node", expectVersions(svc))
	check := time.NewTicker(every / 2)
	defer check.Stop()
	for time.Since(start) < ttl+ttl/2 {
		<-check.C
		svcs, err := r.GetService(callCtx(t, s.cfg.timeout), name)
		if err == nil {
			err = expectVersions(svc)(svcs)
		}
		if err != nil {
			t.Fatalf("%v after the first registration (TTL %v, refreshed every %v): %v",
				time.Since(start).Round(time.Millisecond), ttl, every, err)
		}
	}
	if err := stopRefresh(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-w.events:
			if ev != nil && ev.Service != nil && ev.Service.Name == name && ev.Type == registry.Delete {
				t.Fatalf("a watcher saw %s deleted at %v although it was refreshed every %v (TTL %v)",
					name, ev.Timestamp.Sub(start).Round(time.Millisecond), every, ttl)
			}
		default:
			return
		}
	}
}

// ttlExpiry checks a node never refreshed disappears within its TTL (plus
// Timeout) and that a watcher is told.
func (s *registrySuite) ttlExpiry(t *testing.T) {
	if s.cfg.skipTTL {
		t.Skip("TTL tests skipped by conformance.SkipTTL")
	}
	r := s.open(t)
	name := serviceName(t)
	w := s.startWatch(t, r)
	svc := newService(name, "1.0.0", name+"-1")
	s.register(t, r, svc, s.cfg.ttl)
	s.waitFor(t, r, name, "the registered node", expectVersions(svc))
	s.waitGone(t, r, name, s.cfg.ttl+s.cfg.timeout, fmt.Sprintf("expiry of a node registered with TTL %v", s.cfg.ttl))
	w.expect(t, name, "delete on expiry", func(ev *registry.Event) error {
		return eventIs(ev, registry.Delete, svc, false)
	})
}

// invalidService checks Register and Deregister refuse malformed services with an
// error wrapping registry.ErrInvalidService, and register nothing.
func (s *registrySuite) invalidService(t *testing.T) {
	r := s.open(t)
	name := serviceName(t)
	node := func(id, addr string) []*registry.Node { return []*registry.Node{{ID: id, Address: addr}} }
	cases := []struct {
		what string
		svc  *registry.Service
	}{
		{"an empty name", &registry.Service{Version: "1.0.0", Nodes: node(name+"-1", "127.0.0.1:20001")}},
		{"no nodes", &registry.Service{Name: name, Version: "1.0.0"}},
		{"a node without an ID", &registry.Service{Name: name, Version: "1.0.0", Nodes: node("", "127.0.0.1:20001")}},
		{"a node without an address", &registry.Service{Name: name, Version: "1.0.0", Nodes: node(name+"-1", "")}},
	}
	for _, tc := range cases {
		err := r.Register(callCtx(t, s.cfg.timeout), tc.svc, 0)
		if !errors.Is(err, registry.ErrInvalidService) {
			t.Errorf("Register(service with %s) = %v, want an error wrapping registry.ErrInvalidService", tc.what, err)
		}
		if err == nil {
			ctx, cancel := cleanupCtx(s.cfg.timeout)
			_ = r.Deregister(ctx, tc.svc)
			cancel()
		}
	}
	if _, err := r.GetService(callCtx(t, s.cfg.timeout), name); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService after refused registrations = %v, want an error wrapping registry.ErrNotFound", err)
	}
	err := r.Deregister(callCtx(t, s.cfg.timeout), &registry.Service{Version: "1.0.0", Nodes: node(name+"-1", "127.0.0.1:20001")})
	if !errors.Is(err, registry.ErrInvalidService) {
		t.Errorf("Deregister(service with an empty name) = %v, want an error wrapping registry.ErrInvalidService", err)
	}
}

// concurrentRegister checks nodes registered and deregistered from many
// goroutines at once all land.
func (s *registrySuite) concurrentRegister(t *testing.T) {
	const n = 16
	r := s.open(t)
	name := serviceName(t)
	nodeIDs := make([]string, n)
	for i := range nodeIDs {
		nodeIDs[i] = fmt.Sprintf("%s-%02d", name, i)
	}
	all := newService(name, "1.0.0", nodeIDs...)
	one := func(i int) *registry.Service {
		svc := all.Clone()
		svc.Nodes = svc.Nodes[i : i+1]
		return svc
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx(s.cfg.timeout)
		defer cancel()
		_ = r.Deregister(ctx, all)
	})

	parallel := func(op string, f func(*registry.Service) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if err := f(one(i)); err != nil {
					errs <- fmt.Errorf("%s node %d: %w", op, i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		reportErrors(t, errs)
		if t.Failed() {
			t.FailNow()
		}
	}
	parallel("Register", func(svc *registry.Service) error {
		if err := r.Register(callCtx(t, s.cfg.timeout), svc, 0); err != nil {
			return err
		}
		// Reads race the writes; an eventually consistent backend may not show
		// the service yet, but must not fail otherwise.
		if _, err := r.GetService(callCtx(t, s.cfg.timeout), name); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("GetService: %w", err)
		}
		return nil
	})
	s.waitFor(t, r, name, fmt.Sprintf("all %d nodes registered concurrently", n), expectVersions(all))
	parallel("Deregister", func(svc *registry.Service) error {
		return r.Deregister(callCtx(t, s.cfg.timeout), svc)
	})
	s.waitGone(t, r, name, s.cfg.timeout, fmt.Sprintf("all %d nodes deregistered concurrently", n))
}
