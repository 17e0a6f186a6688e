// Package registry defines service discovery: the Registry contract, the built-in
// memory registry, the watch-fed cache every lookup goes through, and selectors.
package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Errors every implementation returns (wrapped, so errors.Is works).
var (
	// ErrNotFound is returned when no instance of a service is registered.
	ErrNotFound = errors.New("registry: service not found")
	// ErrInvalidService is returned by Register and Deregister for a service that
	// has no name, no nodes, or a node without an ID or address.
	ErrInvalidService = errors.New("registry: invalid service")
	// ErrClosed is returned by a registry (or cache) used after Close.
	ErrClosed = errors.New("registry: closed")
	// ErrWatcherStopped is what Watcher.Next returns after Stop.
	ErrWatcherStopped = errors.New("registry: watcher stopped")
	// ErrWatcherOverflow is what Watcher.Next returns once a watcher fell so far
	// behind that events were dropped: the consumer must resync with GetService.
	ErrWatcherOverflow = errors.New("registry: watcher fell behind, events dropped; resync")
)

// Registry stores which instances of which services are running where.
// Implementations must be safe for concurrent use.
type Registry interface {
	// Name is the registry's short name ("memory", "consul").
	Name() string
	// Register adds or refreshes svc's nodes; they expire after ttl unless
	// registered again (ttl <= 0 means no expiry).
	Register(ctx context.Context, svc *Service, ttl time.Duration) error
	// Deregister removes svc's nodes (only the nodes listed in svc).
	Deregister(ctx context.Context, svc *Service) error
	// GetService returns every registered version of the named service, or
	// ErrNotFound.
	GetService(ctx context.Context, name string) ([]*Service, error)
	// ListServices returns every service, without nodes guaranteed.
	ListServices(ctx context.Context) ([]*Service, error)
	// Watch streams changes until ctx ends or the Watcher is stopped.
	Watch(ctx context.Context) (Watcher, error)
}

// Service is one version of a named service and the nodes running it.
type Service struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Endpoints []*Endpoint       `json:"endpoints,omitempty"`
	Nodes     []*Node           `json:"nodes,omitempty"`
}

// Endpoint describes one callable Handler.Method and its request/response shapes,
// kept for the gateway and generated docs.
type Endpoint struct {
	Name     string            `json:"name"`
	Request  string            `json:"request,omitempty"`
	Response string            `json:"response,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Node is one running instance. Address is host:port as a caller dials it.
type Node struct {
	ID       string            `json:"id"`
	Address  string            `json:"address"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EventType says what happened to a service.
type EventType int

// The event types a Watcher yields.
const (
	Create EventType = iota + 1
	Update
	Delete
)

// String returns "create", "update" or "delete".
func (t EventType) String() string {
	switch t {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "unknown"
}

// Event is one change to one version of a service. For Create and Update, Service
// holds that version's full current state (every node); for Delete, it holds the
// nodes that went away (no nodes means the whole version went away).
type Event struct {
	Type      EventType
	Service   *Service
	Timestamp time.Time
}

// Watcher yields registry events.
type Watcher interface {
	// Next blocks until the next event; it returns an error once the watcher is
	// stopped or its context ends.
	Next() (*Event, error)
	Stop()
}

// Validate reports whether s can be registered: it needs a name and at least one
// node, and every node needs a unique ID and an address.
func (s *Service) Validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil service", ErrInvalidService)
	}
	if s.Name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidService)
	}
	if len(s.Nodes) == 0 {
		return fmt.Errorf("%w: service %q has no nodes", ErrInvalidService, s.Name)
	}
	seen := make(map[string]struct{}, len(s.Nodes))
	for i, n := range s.Nodes {
		switch {
		case n == nil:
			return fmt.Errorf("%w: service %q: node %d is nil", ErrInvalidService, s.Name, i)
		case n.ID == "":
			return fmt.Errorf("%w: service %q: node %d has no ID", ErrInvalidService, s.Name, i)
		case n.Address == "":
			return fmt.Errorf("%w: service %q: node %q has no address", ErrInvalidService, s.Name, n.ID)
		}
		if _, dup := seen[n.ID]; dup {
			return fmt.Errorf("%w: service %q: node ID %q appears twice", ErrInvalidService, s.Name, n.ID)
		}
		seen[n.ID] = struct{}{}
	}
	return nil
}

// Clone returns a deep copy of s that shares nothing with it.
func (s *Service) Clone() *Service {
	if s == nil {
		return nil
	}
	c := &Service{Name: s.Name, Version: s.Version, Metadata: maps.Clone(s.Metadata)}
	if s.Endpoints != nil {
		c.Endpoints = make([]*Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			c.Endpoints[i] = e.Clone()
		}
	}
	if s.Nodes != nil {
		c.Nodes = make([]*Node, len(s.Nodes))
		for i, n := range s.Nodes {
			c.Nodes[i] = n.Clone()
		}
	}
	return c
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	return &Node{ID: n.ID, Address: n.Address, Metadata: maps.Clone(n.Metadata)}
}

// Clone returns a deep copy of e.
func (e *Endpoint) Clone() *Endpoint {
	if e == nil {
		return nil
	}
	return &Endpoint{Name: e.Name, Request: e.Request, Response: e.Response, Metadata: maps.Clone(e.Metadata)}
}
