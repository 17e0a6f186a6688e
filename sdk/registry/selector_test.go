package registry_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/microhost/micro/sdk/registry"
)

// greeter is one service in two versions: v1 on a (zone eu) and b, v2 (zone eu,
// tier gold) on c.
func greeter() []*registry.Service {
	v1 := svc("greeter", "v1", "a", "b")
	v1.Nodes[0].Metadata = map[string]string{"zone": "eu"}
	v2 := svc("greeter", "v2", "c")
	v2.Metadata = map[string]string{"zone": "eu", "tier": "gold"}
	return []*registry.Service{v1, v2}
}

// selectors returns a fresh instance of every built-in selector.
func selectors() map[string]registry.Selector {
	return map[string]registry.Selector{
		"round_robin":       registry.RoundRobin(),
		"random":            registry.Random(),
		"least_outstanding": registry.LeastOutstanding(),
	}
}

// pick selects n times (ending each call at once) and counts picks per node ID.
func pick(t *testing.T, s registry.Selector, svcs []*registry.Service, n int, opts ...registry.SelectOption) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		node, done, err := s.Select(svcs, opts...)
		if err != nil {
			t.Fatalf("Select: %v", err)
		}
		counts[node.ID]++
		done(nil)
	}
	return counts
}

func TestRoundRobinVisitsEveryNodeEvenly(t *testing.T) {
	rr := registry.RoundRobin()
	users := []*registry.Service{svc("users", "v1", "u1", "u2")}
	counts := map[string]int{}
	for range 300 {
		for _, svcs := range [][]*registry.Service{greeter(), users} {
			node, done, err := rr.Select(svcs)
			if err != nil {
				t.Fatal(err)
			}
			counts[node.ID]++
			done(nil)
		}
	}
	want := map[string]int{"a": 100, "b": 100, "c": 100, "u1": 150, "u2": 150}
	if !maps.Equal(counts, want) {
		t.Fatalf("picks = %v, want %v (one counter per service)", counts, want)
	}
}

func TestRandomSpreadsPicks(t *testing.T) {
	counts := pick(t, registry.Random(), greeter(), 3000)
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] <= 500 {
			t.Fatalf("node %s got %d of 3000 picks: %v", id, counts[id], counts)
		}
	}
}

func TestLeastOutstandingPrefersIdleNode(t *testing.T) {
	lo := registry.LeastOutstanding()
	svcs := greeter()
	busy := map[string]registry.Done{}
	for range 2 {
		node, done, err := lo.Select(svcs)
		if err != nil {
			t.Fatal(err)
		}
		if busy[node.ID] != nil {
			t.Fatalf("picked %s again while another node was idle", node.ID)
		}
		busy[node.ID] = done
	}
	idle, done, err := lo.Select(svcs)
	if err != nil {
		t.Fatal(err)
	}
	if busy[idle.ID] != nil {
		t.Fatalf("picked busy node %s over the idle one", idle.ID)
	}
	busy[idle.ID] = done

	// Every node has one call in flight; the one that finishes is picked next.
	for _, id := range []string{"b", "a", "c"} {
		busy[id](nil)
		node, done, err := lo.Select(svcs)
		if err != nil {
			t.Fatal(err)
		}
		if node.ID != id {
			t.Fatalf("after %s finished, picked %s", id, node.ID)
		}
		busy[id] = done
	}
}

func TestLeastOutstandingBalancesInFlightCalls(t *testing.T) {
	lo := registry.LeastOutstanding()
	svcs := greeter()
	counts := map[string]int{}
	var dones []registry.Done
	for range 30 {
		node, done, err := lo.Select(svcs)
		if err != nil {
			t.Fatal(err)
		}
		counts[node.ID]++
		dones = append(dones, done)
	}
	if want := map[string]int{"a": 10, "b": 10, "c": 10}; !maps.Equal(counts, want) {
		t.Fatalf("in-flight picks = %v, want %v", counts, want)
	}
	for _, done := range dones {
		done(nil)
	}
	// All idle again: three calls kept in flight land on three different nodes.
	seen := map[string]bool{}
	for range 3 {
		node, _, err := lo.Select(svcs)
		if err != nil {
			t.Fatal(err)
		}
		if seen[node.ID] {
			t.Fatalf("picked %s twice after every call ended: a counter did not return to zero", node.ID)
		}
		seen[node.ID] = true
	}
}

func TestSelectFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []registry.SelectOption
		want []string
	}{
		{"no filter", nil, []string{"a", "b", "c"}},
		{"version", []registry.SelectOption{registry.WithVersion("v1")}, []string{"a", "b"}},
		{"service or node metadata", []registry.SelectOption{registry.WithMetadata("zone", "eu")}, []string{"a", "c"}},
		{"every metadata pair", []registry.SelectOption{registry.WithMetadata("zone", "eu"), registry.WithMetadata("tier", "gold")}, []string{"c"}},
		{"exclude", []registry.SelectOption{registry.Exclude("a", "c")}, []string{"b"}},
		{"combined", []registry.SelectOption{registry.WithVersion("v1"), registry.WithMetadata("zone", "eu")}, []string{"a"}},
	} {
		for name, s := range selectors() {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				got := slices.Sorted(maps.Keys(pick(t, s, greeter(), 300, tc.opts...)))
				if !slices.Equal(got, tc.want) {
					t.Fatalf("picked %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func TestSelectNoNodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		svcs  []*registry.Service
		opts  []registry.SelectOption
		texts []string // the error names the service and the filter
	}{
		{"no services", nil, nil, []string{"no services"}},
		{"no nodes", []*registry.Service{{Name: "greeter", Version: "v1"}}, nil, []string{`"greeter" has no nodes`}},
		{"version", greeter(), []registry.SelectOption{registry.WithVersion("v9")}, []string{`"greeter"`, `version "v9"`, "(3 before"}},
		{"metadata", greeter(), []registry.SelectOption{registry.WithVersion("v1"), registry.WithMetadata("tier", "gold")},
			[]string{`"greeter"`, `metadata tier="gold"`, "(2 before"}},
		{"exclude", greeter(), []registry.SelectOption{registry.WithVersion("v2"), registry.Exclude("c")},
			[]string{`"greeter"`, `exclude ["c"]`, "(1 before"}},
	} {
		for name, s := range selectors() {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				node, done, err := s.Select(tc.svcs, tc.opts...)
				if !errors.Is(err, registry.ErrNoNodes) || node != nil || done != nil {
					t.Fatalf("Select = %v, %v; want ErrNoNodes", node, err)
				}
				for _, text := range tc.texts {
					if !strings.Contains(err.Error(), text) {
						t.Fatalf("error %q does not mention %q", err, text)
					}
				}
			})
		}
	}
}

func TestSelectorsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	svcs := greeter()
	for name, s := range selectors() {
		_, done, _ := s.Select(svcs) // creates per-service and per-node state
		done(nil)
		allocs := testing.AllocsPerRun(1000, func() {
			_, done, _ := s.Select(svcs)
			done(nil)
		})
		if allocs != 0 {
			t.Errorf("%s: Select allocates %.1f times per call, want 0", name, allocs)
		}
	}
}

func TestSelectorsConcurrentUse(t *testing.T) {
	svcs := greeter()
	for name, s := range selectors() {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 200 {
						node, done, err := s.Select(svcs, registry.Exclude("b"))
						if err != nil || node.ID == "b" {
							t.Errorf("Select = %v, %v", node, err)
							return
						}
						done(nil)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestSelectorByName(t *testing.T) {
	for _, name := range []string{"round_robin", "random", "least_outstanding"} {
		if s, err := registry.SelectorByName(name); err != nil || s == nil {
			t.Fatalf("SelectorByName(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := registry.SelectorByName("fastest"); err == nil || !strings.Contains(err.Error(), "round_robin") {
		t.Fatalf("unknown selector error = %v, want the valid names", err)
	}
}
