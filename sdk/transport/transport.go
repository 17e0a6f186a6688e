// Package transport defines how Microhost moves request/response messages and
// bidirectional streams between processes, and provides the built-in http transport.
package transport

import (
	"context"
	"errors"
)

// Message is one request or response: headers (canonical names from sdk/metadata)
// and a body already encoded by a codec. A response's status, when not 200, is in
// Header[metadata.Status].
type Message struct {
	Header map[string]string
	Body   []byte
}

// Handler is what a Listener serves; sdk/server implements it.
type Handler interface {
	// ServeRequest answers one request message. It never returns nil.
	ServeRequest(ctx context.Context, req *Message) *Message
	// ServeStream runs one bidirectional stream opened with header; returning ends
	// the stream, an error is delivered to the peer's Recv.
	ServeStream(ctx context.Context, header map[string]string, s Stream) error
}

// Transport listens for and dials connections of one kind.
type Transport interface {
	// Name is the short name used in config ("http", "ws").
	Name() string
	// Listen binds addr ("127.0.0.1:0" picks a free port).
	Listen(ctx context.Context, addr string) (Listener, error)
	// Dial returns a connection to addr; implementations pool and share them, so
	// Dial is cheap and the returned Conn is safe for concurrent calls.
	Dial(ctx context.Context, addr string) (Conn, error)
	// Close releases every pooled connection and background worker.
	Close() error
}

// Listener accepts requests on a bound address.
type Listener interface {
	// Addr is the address actually bound, with the real port.
	Addr() string
	// Serve hands requests to h until Shutdown or Close; it then returns nil.
	Serve(h Handler) error
	// Shutdown stops accepting, reports not-ready, and waits for in-flight
	// requests and streams until ctx ends.
	Shutdown(ctx context.Context) error
	// Close stops at once.
	Close() error
}

// Conn calls one remote address.
type Conn interface {
	// Call sends req and waits for the response. Header[metadata.Endpoint] names
	// what is called. A returned error is a transport failure, never an
	// application error (those come back as a response with a status).
	// Once Call returns, the caller may change req.Header (a retry does);
	// req.Body may still be read and must not be changed.
	Call(ctx context.Context, req *Message) (*Message, error)
	// Stream opens a bidirectional stream; header carries the endpoint and metadata.
	Stream(ctx context.Context, header map[string]string) (Stream, error)
	// Close releases this address's pooled connections.
	Close() error
}

// Stream is one bidirectional stream of framed messages. Send and Recv may be used
// from different goroutines; concurrent Sends are serialised.
type Stream interface {
	// Send writes one message body.
	Send(body []byte) error
	// Recv reads the next message body; io.EOF when the peer finished cleanly, an
	// *errors.Error when the peer ended with an error.
	Recv() ([]byte, error)
	// CloseSend tells the peer no more messages follow.
	CloseSend() error
	// Close ends the stream in both directions.
	Close() error
}

// ErrNotSent marks a failure before any byte of the request left this process
// (connection refused, pool exhausted); such calls are safe to retry anywhere.
var ErrNotSent = errors.New("transport: request not sent")

// ErrClosed is returned after a Transport or Listener was closed.
var ErrClosed = errors.New("transport: closed")

// HealthReporter is implemented by transports that check pooled addresses in the
// background; Healthy answers from the last check without any I/O.
type HealthReporter interface {
	Healthy(addr string) bool
}
