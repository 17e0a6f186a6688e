package broker

import (
	"strings"
	"sync"
	"sync/atomic"
)

// maxCachedTopics bounds the per-topic match cache; past it half is evicted.
const maxCachedTopics = 4096

// sublist indexes subscriptions by pattern in a token trie and caches the match
// result per published topic, so publishing to a known topic allocates nothing.
type sublist struct {
	mu    sync.RWMutex
	root  node
	cache map[string]*matches // topic → subscribers; cleared on every change
}

// node is one token position of the trie.
type node struct {
	literal map[string]*node // next literal tokens
	any     *node            // next token "*"
	rest    *node            // last token ">"
	plain   []*subscription  // plain subscriptions whose pattern ends here
	groups  map[string]*group
}

// matches is the immutable set of subscribers of one topic.
type matches struct {
	plain  []*subscription
	groups []*group
}

// group is a queue group: the subscriptions sharing one pattern and one queue
// name. Each message goes to one member, chosen round robin.
type group struct {
	name    string
	pattern string
	members atomic.Pointer[[]*subscription] // copy on write under sublist.mu
	next    atomic.Uint64                   // round-robin cursor
}

// load returns the current members; the slice must not be modified.
func (g *group) load() []*subscription {
	if p := g.members.Load(); p != nil {
		return *p
	}
	return nil
}

// insert indexes s under its pattern and sets s.group to its queue group (nil
// when plain).
func (l *sublist) insert(s *subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := &l.root
	for tok := range strings.SplitSeq(s.pattern, ".") {
		n = n.child(tok)
	}
	l.cache = nil
	if s.opts.Queue == "" {
		n.plain = append(n.plain, s)
		return
	}
	g := n.groups[s.opts.Queue]
	if g == nil {
		if n.groups == nil {
			n.groups = make(map[string]*group)
		}
		g = &group{name: s.opts.Queue, pattern: s.pattern}
		n.groups[s.opts.Queue] = g
	}
	members := append(append([]*subscription(nil), g.load()...), s)
	g.members.Store(&members)
	s.group = g
}

// remove drops s from the index and prunes the nodes left empty.
func (l *sublist) remove(s *subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	type step struct {
		parent *node
		tok    string
	}
	var path []step
	n := &l.root
	for tok := range strings.SplitSeq(s.pattern, ".") {
		next := n.lookup(tok)
		if next == nil {
			return
		}
		path = append(path, step{n, tok})
		n = next
	}
	l.cache = nil
	if s.group == nil {
		n.plain = without(n.plain, s)
	} else if g := n.groups[s.group.name]; g == s.group {
		members := without(append([]*subscription(nil), g.load()...), s)
		g.members.Store(&members)
		if len(members) == 0 {
			delete(n.groups, g.name)
		}
	}
	for i := len(path) - 1; i >= 0 && n.empty(); i-- {
		path[i].parent.unlink(path[i].tok)
		n = path[i].parent
	}
}

// match returns the subscribers of topic, from the cache when it can.
func (l *sublist) match(topic string) *matches {
	l.mu.RLock()
	m, ok := l.cache[topic]
	l.mu.RUnlock()
	if ok {
		return m
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.cache[topic]; ok {
		return m
	}
	m = &matches{}
	l.root.collect(topic, m)
	if l.cache == nil {
		l.cache = make(map[string]*matches)
	}
	if len(l.cache) >= maxCachedTopics {
		for k := range l.cache { // map order is random: evict a random half
			delete(l.cache, k)
			if len(l.cache) < maxCachedTopics/2 {
				break
			}
		}
	}
	l.cache[topic] = m
	return m
}

// child returns the node after tok, creating it.
func (n *node) child(tok string) *node {
	switch tok {
	case AnyToken:
		if n.any == nil {
			n.any = &node{}
		}
		return n.any
	case RestTokens:
		if n.rest == nil {
			n.rest = &node{}
		}
		return n.rest
	}
	c := n.literal[tok]
	if c == nil {
		if n.literal == nil {
			n.literal = make(map[string]*node)
		}
		c = &node{}
		n.literal[tok] = c
	}
	return c
}

// lookup returns the node after pattern token tok, or nil.
func (n *node) lookup(tok string) *node {
	switch tok {
	case AnyToken:
		return n.any
	case RestTokens:
		return n.rest
	}
	return n.literal[tok]
}

// unlink removes the child after pattern token tok.
func (n *node) unlink(tok string) {
	switch tok {
	case AnyToken:
		n.any = nil
	case RestTokens:
		n.rest = nil
	default:
		delete(n.literal, tok)
	}
}

// empty reports whether the node holds nothing and leads nowhere.
func (n *node) empty() bool {
	return len(n.literal) == 0 && n.any == nil && n.rest == nil && len(n.plain) == 0 && len(n.groups) == 0
}

// collect adds to m the subscribers whose pattern, from this node on, matches the
// remaining tokens of topic. Each node is reached at most once, so no duplicates.
func (n *node) collect(topic string, m *matches) {
	tok, rest, more := strings.Cut(topic, ".")
	if n.rest != nil {
		m.add(n.rest)
	}
	for _, c := range [...]*node{n.literal[tok], n.any} {
		switch {
		case c == nil:
		case more:
			c.collect(rest, m)
		default:
			m.add(c)
		}
	}
}

// add appends the subscribers ending at n.
func (m *matches) add(n *node) {
	m.plain = append(m.plain, n.plain...)
	for _, g := range n.groups {
		m.groups = append(m.groups, g)
	}
}

// without returns subs minus s, reusing the backing array.
func without(subs []*subscription, s *subscription) []*subscription {
	for i, x := range subs {
		if x == s {
			copy(subs[i:], subs[i+1:])
			subs[len(subs)-1] = nil
			return subs[:len(subs)-1]
		}
	}
	return subs
}
