package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/registry"
)

// TestConformance runs the registry suite against a real Consul dev agent. Consul
// checks TTLs at about 1s granularity, so the suite's TTL is 2s.
func TestConformance(t *testing.T) {
	a := startAgent(t)
	conformance.Registry(t, func(t *testing.T) registry.Registry { return newTestRegistry(t, a) },
		conformance.TTL(2*time.Second), conformance.Timeout(15*time.Second))
}

// TestVisibleThroughConsulAPI checks an instance registered through the plugin
// is what Consul's own HTTP API shows: ID, address, port, tags and meta.
func TestVisibleThroughConsulAPI(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	svc := &registry.Service{
		Name: "greeter", Version: "1.2.3",
		Metadata:  map[string]string{"team": "core"},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello", Request: "HelloRequest", Response: "HelloResponse"}},
		Nodes:     []*registry.Node{{ID: "greeter-1", Address: "127.0.0.1:9091", Metadata: map[string]string{"zone": "eu-1"}}},
	}
	if err := r.Register(t.Context(), svc, 0); err != nil {
		t.Fatal(err)
	}

	type instance struct {
		ServiceID, ServiceName, ServiceAddress string
		ServicePort                            int
		ServiceTags                            []string
		ServiceMeta                            map[string]string
	}
	var got []instance
	eventually(t, 10*time.Second, "the instance in /v1/catalog/service/greeter", func() error {
		resp, err := http.Get("http://" + a.addr() + "/v1/catalog/service/" + url.PathEscape(svc.Name))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		got = nil
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("%d instances, want 1: %+v", len(got), got)
		}
		return nil
	})
	in := got[0]
	if in.ServiceID != "greeter-1" || in.ServiceName != "greeter" || in.ServiceAddress != "127.0.0.1" || in.ServicePort != 9091 {
		t.Errorf("instance %+v, want ID greeter-1, name greeter, 127.0.0.1:9091", in)
	}
	if !slices.Contains(in.ServiceTags, "version=1.2.3") {
		t.Errorf("tags %v lack version=1.2.3", in.ServiceTags)
	}
	for k, v := range map[string]string{"version": "1.2.3", "svc-team": "core", "node-zone": "eu-1"} {
		if in.ServiceMeta[k] != v {
			t.Errorf("meta[%q] = %q, want %q (meta %v)", k, in.ServiceMeta[k], v, in.ServiceMeta)
		}
	}
	var eps []*registry.Endpoint
	if err := json.Unmarshal([]byte(in.ServiceMeta["endpoints-0"]), &eps); err != nil || len(eps) != 1 || eps[0].Name != "Greeter.Hello" {
		t.Errorf("meta endpoints-0 = %q (%v), want the endpoints as JSON", in.ServiceMeta["endpoints-0"], err)
	}
}

// TestDrainDeregisters checks Drain removes every instance the plugin registered.
func TestDrainDeregisters(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	svc := &registry.Service{Name: "drained", Version: "1.0.0", Nodes: []*registry.Node{
		{ID: "drained-1", Address: "127.0.0.1:9001"}, {ID: "drained-2", Address: "127.0.0.1:9002"},
	}}
	if err := r.Register(t.Context(), svc, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both instances passing", func() error {
		svcs, err := r.GetService(t.Context(), "drained")
		if err != nil {
			return err
		}
		if len(svcs) != 1 || len(svcs[0].Nodes) != 2 {
			return fmt.Errorf("got %v", svcs)
		}
		return nil
	})
	if err := r.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "no instance after Drain", func() error {
		_, err := r.GetService(t.Context(), "drained")
		if !errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("GetService = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err := r.Deregister(t.Context(), svc); err != nil {
		t.Errorf("Deregister of nodes already gone = %v, want nil", err)
	}
}

// TestUnfitServiceRefused checks what Consul cannot hold is refused clearly.
func TestUnfitServiceRefused(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	svc := &registry.Service{Name: "bad", Metadata: map[string]string{"has space": "x"},
		Nodes: []*registry.Node{{ID: "bad-1", Address: "127.0.0.1:9001"}}}
	if err := r.Register(t.Context(), svc, 0); !errors.Is(err, registry.ErrInvalidService) {
		t.Errorf("Register(metadata key with a space) = %v, want ErrInvalidService", err)
	}
	svc.Metadata = nil
	svc.Nodes[0].Address = "no-port"
	if err := r.Register(t.Context(), svc, 0); !errors.Is(err, registry.ErrInvalidService) {
		t.Errorf("Register(address without port) = %v, want ErrInvalidService", err)
	}
}

// TestConsulRestart kills Consul and starts a new dev agent (which remembers
// nothing) on the same ports: the keepalive must register the instance again,
// and a watcher must keep running, report the instance again and not spin.
func TestConsulRestart(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	svc := &registry.Service{Name: "survivor", Version: "1.0.0",
		Nodes: []*registry.Node{{ID: "survivor-1", Address: "127.0.0.1:9001"}}}
	// Registered once: the lease (15s) outlives the restart, the keepalive
	// (every 5s) does the rest.
	if err := r.Register(t.Context(), svc, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	found := func() error {
		svcs, err := r.GetService(t.Context(), svc.Name)
		if err != nil {
			return err
		}
		if len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
			return fmt.Errorf("got %v", svcs)
		}
		return nil
	}
	eventually(t, 10*time.Second, "the instance before the restart", found)

	w, err := r.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	events, done := make(chan *registry.Event, 256), make(chan error, 1)
	go func() {
		for {
			ev, err := w.Next()
			if err != nil {
				done <- err
				return
			}
			events <- ev
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Next did not return within 10s of Stop")
		}
	})

	a.restart()
	eventually(t, 20*time.Second, "the instance re-registered after the restart", found)

	// The watcher saw the new agent's catalog without the instance, then with it.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for created := false; !created; {
		select {
		case ev := <-events:
			if ev.Service.Name != svc.Name {
				continue
			}
			t.Logf("after the restart: %s %s@%s (%d nodes)", ev.Type, ev.Service.Name, ev.Service.Version, len(ev.Service.Nodes))
			created = ev.Type == registry.Create || ev.Type == registry.Update
		case err := <-done:
			t.Fatalf("watcher ended across the restart: %v", err)
		case <-ctx.Done():
			t.Fatal("no create event for the instance after the restart")
		}
	}
	// Backoff keeps failures during the outage few: a handful per query, not a loop.
	if n := r.watchErrors.Load(); n > 60 {
		t.Errorf("%d failed watch queries across one restart: retries are not backing off", n)
	} else {
		t.Logf("%d failed watch queries across the restart", n)
	}
}

// TestPathUnsafeNamesRefused checks names and node IDs that Consul's agent API
// would read as other paths (an empty, "." or ".." segment, which Consul's HTTP
// router cleans away) are refused instead of addressing something else: a
// Deregister that removes nothing while reporting success, or a GetService
// answering with another service's instances.
func TestPathUnsafeNamesRefused(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	ctx := t.Context()
	registerOne(t, r, "real", "real-1", "127.0.0.1:9001")
	if svcs, err := r.GetService(ctx, "other/../real"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf(`GetService("other/../real") = %v, %v; want ErrNotFound, not the instances of "real"`, svcs, err)
	}
	for _, id := range []string{"x/../../kv/z", "../x", "x/", "a//b", "."} {
		svc := &registry.Service{Name: "unsafe", Version: "1", Nodes: []*registry.Node{{ID: id, Address: "127.0.0.1:9002"}}}
		if err := r.Register(ctx, svc, 0); !errors.Is(err, registry.ErrInvalidService) {
			t.Errorf("Register(node ID %q) = %v, want ErrInvalidService", id, err)
			_ = r.Deregister(ctx, svc)
		}
		if err := r.Deregister(ctx, svc); !errors.Is(err, registry.ErrInvalidService) {
			t.Errorf("Deregister(node ID %q) = %v, want ErrInvalidService", id, err)
		}
	}
	bad := &registry.Service{Name: "a/../b", Version: "1", Nodes: []*registry.Node{{ID: "ab-1", Address: "127.0.0.1:9003"}}}
	if err := r.Register(ctx, bad, 0); !errors.Is(err, registry.ErrInvalidService) {
		t.Errorf(`Register(name "a/../b") = %v, want ErrInvalidService`, err)
		_ = r.Deregister(ctx, bad)
	}
	ok := &registry.Service{Name: "with/slash", Version: "1", Nodes: []*registry.Node{{ID: "with/slash-1", Address: "127.0.0.1:9004"}}}
	if err := r.Register(ctx, ok, 0); err != nil {
		t.Fatalf("Register(a name and ID with a plain slash) = %v, want nil", err)
	}
	if err := r.Deregister(ctx, ok); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "with/slash deregistered", func() error {
		if _, err := r.GetService(ctx, ok.Name); !errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("GetService = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// TestWatchIgnoresPathUnsafeNames checks a service registered in Consul by
// something else under a name Consul's API cannot address ("evil/../real" reads
// as "real") does not feed the watch another service's instances: when it goes
// away, the watcher must not report "real" deleted.
func TestWatchIgnoresPathUnsafeNames(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	ctx := t.Context()
	registerOne(t, r, "real", "real-1", "127.0.0.1:9001")
	client, _, err := r.current()
	if err != nil {
		t.Fatal(err)
	}
	evil := &api.AgentServiceRegistration{ID: "evil-1", Name: "evil/../real", Address: "127.0.0.1", Port: 9002}
	if err := client.Agent().ServiceRegister(evil); err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if err := client.Agent().ServiceDeregister(evil.ID); err != nil {
		t.Fatal(err)
	}
	registerOne(t, r, "marker", "marker-1", "127.0.0.1:9003")
	// The catalog reports evil gone no later than marker's arrival, and
	// marker's create comes after: every event about evil is in by then.
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s@%s (%d nodes)", ev.Type, ev.Service.Name, ev.Service.Version, len(ev.Service.Nodes))
		if ev.Service.Name == "real" && ev.Type == registry.Delete {
			t.Fatal(`the watcher reported "real" deleted when "evil/../real" went away`)
		}
		if ev.Service.Name == "marker" {
			return
		}
	}
}

// TestGetServiceMatchesTheNameExactly checks a lookup in another letter case
// does not answer with the instances of the service registered under the
// name: Consul ignores case, and callers key policies and breakers by name.
func TestGetServiceMatchesTheNameExactly(t *testing.T) {
	a := startAgent(t)
	r := newTestRegistry(t, a)
	ctx := t.Context()
	registerOne(t, r, "users", "users-1", "127.0.0.1:9011")
	eventually(t, 10*time.Second, "users registered", func() error {
		_, err := r.GetService(ctx, "users")
		return err
	})
	if svcs, err := r.GetService(ctx, "USERS"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf(`GetService("USERS") = %v, %v; want ErrNotFound, not the instances of "users"`, svcs, err)
	}
}

// registerOne registers service name with one node, id at addr, and
// deregisters it when the test ends.
func registerOne(t *testing.T, r *consulRegistry, name, id, addr string) {
	t.Helper()
	svc := &registry.Service{Name: name, Version: "1", Nodes: []*registry.Node{{ID: id, Address: addr}}}
	if err := r.Register(t.Context(), svc, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(context.Background(), svc) })
}
