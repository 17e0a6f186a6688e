package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrNoNodes is returned (wrapped, naming the service and the filter that emptied
// the candidates) when a selector has no node to pick.
var ErrNoNodes = errors.New("registry: no nodes available")

// Selector picks the node one call goes to. The services are one name's versions,
// as returned by Cache.Lookup; the returned Node is shared and must not be
// modified. Done must be called exactly once, with the call's error, when the call
// ends. Selectors are safe for concurrent use.
type Selector interface {
	Select(services []*Service, opts ...SelectOption) (*Node, Done, error)
}

// Done reports the end of a call to the selected node.
type Done func(err error)

// SelectOption narrows the candidate nodes of one Select call.
type SelectOption func(*SelectOptions)

// SelectOptions is the filter of one Select call; custom selectors read it
// through NewSelectOptions and Match.
type SelectOptions struct {
	Version  string      // only this service version ("" = any)
	Metadata [][2]string // key/value pairs the service or the node must carry
	Exclude  []string    // node IDs to skip (the node a retry just failed on)
}

// WithVersion keeps only nodes of service version v.
func WithVersion(v string) SelectOption {
	return func(o *SelectOptions) { o.Version = v }
}

// WithMetadata keeps only nodes whose service or own metadata has key = value.
// Several WithMetadata options must all match.
func WithMetadata(key, value string) SelectOption {
	return func(o *SelectOptions) { o.Metadata = append(o.Metadata, [2]string{key, value}) }
}

// Exclude skips the nodes with these IDs, so a retry avoids the node that failed.
func Exclude(nodeIDs ...string) SelectOption {
	return func(o *SelectOptions) { o.Exclude = append(o.Exclude, nodeIDs...) }
}

// NewSelectOptions applies opts; it returns nil (no filter) when there are none.
func NewSelectOptions(opts ...SelectOption) *SelectOptions {
	if len(opts) == 0 {
		return nil
	}
	o := new(SelectOptions)
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// Match reports whether node n of service s passes every filter; a nil o matches
// everything.
func (o *SelectOptions) Match(s *Service, n *Node) bool {
	return o.matchVersion(s) && o.matchMetadata(s, n) && o.matchExclude(n)
}

func (o *SelectOptions) matchVersion(s *Service) bool {
	return o == nil || o.Version == "" || s.Version == o.Version
}

func (o *SelectOptions) matchMetadata(s *Service, n *Node) bool {
	if o == nil {
		return true
	}
	for _, kv := range o.Metadata {
		if v, ok := s.Metadata[kv[0]]; ok && v == kv[1] {
			continue
		}
		if v, ok := n.Metadata[kv[0]]; ok && v == kv[1] {
			continue
		}
		return false
	}
	return true
}

func (o *SelectOptions) matchExclude(n *Node) bool {
	return o == nil || !slices.Contains(o.Exclude, n.ID)
}

// RoundRobin returns a selector that cycles through the nodes, one counter per
// service name.
func RoundRobin() Selector { return &roundRobin{} }

// Random returns a selector that picks a node uniformly at random.
func Random() Selector { return random{} }

// LeastOutstanding returns a selector that picks the node with the fewest calls in
// flight (counted by node ID between Select and Done), ties broken at random.
func LeastOutstanding() Selector { return &leastOutstanding{} }

// SelectorByName returns a new built-in selector: "round_robin", "random" or
// "least_outstanding" (the names used in configuration).
func SelectorByName(name string) (Selector, error) {
	switch name {
	case "round_robin":
		return RoundRobin(), nil
	case "random":
		return Random(), nil
	case "least_outstanding":
		return LeastOutstanding(), nil
	}
	return nil, fmt.Errorf("registry: unknown selector %q (want round_robin, random or least_outstanding)", name)
}

// nopDone is the Done of selectors that keep no per-call state.
func nopDone(error) {}

// roundRobin keeps one counter per service name.
type roundRobin struct {
	counters sync.Map // service name → *atomic.Uint64
}

// Select picks the next node in turn for this service name.
func (r *roundRobin) Select(services []*Service, opts ...SelectOption) (*Node, Done, error) {
	f := NewSelectOptions(opts...)
	n := countNodes(services, f)
	if n == 0 {
		return nil, nil, noNodes(services, f)
	}
	v, ok := r.counters.Load(services[0].Name)
	if !ok {
		v, _ = r.counters.LoadOrStore(services[0].Name, new(atomic.Uint64))
	}
	i := (v.(*atomic.Uint64).Add(1) - 1) % uint64(n)
	return nthNode(services, f, int(i)), nopDone, nil
}

// random needs no state: math/rand/v2's top-level functions are concurrency-safe.
type random struct{}

// Select picks any candidate node with equal chance.
func (random) Select(services []*Service, opts ...SelectOption) (*Node, Done, error) {
	f := NewSelectOptions(opts...)
	n := countNodes(services, f)
	if n == 0 {
		return nil, nil, noNodes(services, f)
	}
	return nthNode(services, f, rand.IntN(n)), nopDone, nil
}

// leastOutstanding keeps an in-flight counter per node ID. A counter at zero is
// the same as no counter, so idle counters are pruned once there are many.
type leastOutstanding struct {
	counters sync.Map     // node ID → *inflight
	size     atomic.Int64 // counters stored
	pruning  atomic.Bool
}

// pruneAbove is how many node counters a leastOutstanding keeps before dropping
// the idle ones (nodes come and go; their IDs must not pile up).
const pruneAbove = 4096

// inflight counts one node's calls; done is built once so Select does not allocate.
type inflight struct {
	n    atomic.Int64
	done Done
}

// Select picks the candidate with the fewest calls in flight and counts one more.
func (l *leastOutstanding) Select(services []*Service, opts ...SelectOption) (*Node, Done, error) {
	f := NewSelectOptions(opts...)
	var (
		best      *Node
		bestCount *inflight
		bestN     int64
		ties      int
	)
	for _, s := range services {
		if !f.matchVersion(s) {
			continue
		}
		for _, n := range s.Nodes {
			if !f.matchMetadata(s, n) || !f.matchExclude(n) {
				continue
			}
			c := l.counter(n.ID)
			switch cn := c.n.Load(); {
			case best == nil || cn < bestN:
				best, bestCount, bestN, ties = n, c, cn, 1
			case cn == bestN:
				// Reservoir sampling: each tied node wins with probability 1/ties.
				ties++
				if rand.IntN(ties) == 0 {
					best, bestCount = n, c
				}
			}
		}
	}
	if best == nil {
		return nil, nil, noNodes(services, f)
	}
	bestCount.n.Add(1)
	return best, bestCount.done, nil
}

// counter returns the node's in-flight counter, creating it on first use.
func (l *leastOutstanding) counter(id string) *inflight {
	if v, ok := l.counters.Load(id); ok {
		return v.(*inflight)
	}
	c := &inflight{}
	c.done = func(error) { c.n.Add(-1) }
	v, loaded := l.counters.LoadOrStore(id, c)
	if !loaded && l.size.Add(1) > pruneAbove {
		l.prune()
	}
	return v.(*inflight)
}

// prune drops idle counters. A Select racing with it may count one call on a
// dropped counter; that call is then invisible to later picks, a harmless skew.
func (l *leastOutstanding) prune() {
	if !l.pruning.CompareAndSwap(false, true) {
		return
	}
	defer l.pruning.Store(false)
	l.counters.Range(func(k, v any) bool {
		if v.(*inflight).n.Load() == 0 {
			if _, deleted := l.counters.LoadAndDelete(k); deleted {
				l.size.Add(-1)
			}
		}
		return true
	})
}

// countNodes counts the nodes passing f.
func countNodes(services []*Service, f *SelectOptions) int {
	n := 0
	for _, s := range services {
		if f == nil {
			n += len(s.Nodes)
			continue
		}
		if !f.matchVersion(s) {
			continue
		}
		for _, node := range s.Nodes {
			if f.matchMetadata(s, node) && f.matchExclude(node) {
				n++
			}
		}
	}
	return n
}

// nthNode returns the i-th node passing f, in services order.
func nthNode(services []*Service, f *SelectOptions, i int) *Node {
	for _, s := range services {
		if f == nil {
			if i < len(s.Nodes) {
				return s.Nodes[i]
			}
			i -= len(s.Nodes)
			continue
		}
		if !f.matchVersion(s) {
			continue
		}
		for _, node := range s.Nodes {
			if f.matchMetadata(s, node) && f.matchExclude(node) {
				if i == 0 {
					return node
				}
				i--
			}
		}
	}
	return nil
}

// noNodes builds the ErrNoNodes error, naming the filter that left nothing: the
// filters are applied in turn (version, metadata, exclude) and the first one that
// empties the candidates is reported.
func noNodes(services []*Service, f *SelectOptions) error {
	if len(services) == 0 {
		return fmt.Errorf("%w: no services given", ErrNoNodes)
	}
	name := services[0].Name
	total := countNodes(services, nil)
	if total == 0 {
		return fmt.Errorf("%w: service %q has no nodes", ErrNoNodes, name)
	}
	if f == nil {
		return fmt.Errorf("%w: service %q", ErrNoNodes, name)
	}
	stages := []struct {
		desc string
		keep func(*Service, *Node) bool
	}{
		{fmt.Sprintf("version %q", f.Version), func(s *Service, _ *Node) bool { return f.matchVersion(s) }},
		{describeMetadata(f.Metadata), func(s *Service, n *Node) bool { return f.matchVersion(s) && f.matchMetadata(s, n) }},
		{fmt.Sprintf("exclude %q", f.Exclude), f.Match},
	}
	before := total
	for _, st := range stages {
		left := 0
		for _, s := range services {
			for _, n := range s.Nodes {
				if st.keep(s, n) {
					left++
				}
			}
		}
		if left == 0 {
			return fmt.Errorf("%w: service %q: filter %s removed every node (%d before it)", ErrNoNodes, name, st.desc, before)
		}
		before = left
	}
	return fmt.Errorf("%w: service %q", ErrNoNodes, name)
}

// describeMetadata renders metadata filters as key=value pairs.
func describeMetadata(kvs [][2]string) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = fmt.Sprintf("%s=%q", kv[0], kv[1])
	}
	return "metadata " + strings.Join(parts, ",")
}
