package plugin

import (
	"google.golang.org/grpc"
)

// Conn gives the host-side adapters the current connection to a plugin process
// that may be restarted by its supervisor.
type Conn interface {
	// Current returns the live connection, or an *errors.Error with code 503 while
	// the plugin is down or restarting, so calls fail fast instead of hanging.
	Current() (grpc.ClientConnInterface, error)
	// Changed returns a channel that is closed at the next restart (or when the
	// plugin is stopped for good, after which Current keeps failing); adapters wait
	// on it to re-open Watch, Subscribe and Listen streams.
	Changed() <-chan struct{}
	// Stopped reports whether the plugin was stopped for good (the host is
	// shutting down); adapters stop re-opening streams then.
	Stopped() bool
}

// StaticConn is a Conn over one connection that never restarts; tests and
// in-process wiring use it.
func StaticConn(cc grpc.ClientConnInterface) Conn { return staticConn{cc: cc} }

type staticConn struct{ cc grpc.ClientConnInterface }

func (s staticConn) Current() (grpc.ClientConnInterface, error) { return s.cc, nil }
func (s staticConn) Changed() <-chan struct{}                   { return nil }
func (s staticConn) Stopped() bool                              { return false }
