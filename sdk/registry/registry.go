// Package registry defines service discovery: the Registry contract, the built-in
// memory registry, the watch-fed cache every lookup goes through, and selectors.
package registry

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when no instance of a service is registered.
var ErrNotFound = errors.New("registry: service not found")

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

// Event is one change. For Delete, Service holds the nodes that went away.
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
