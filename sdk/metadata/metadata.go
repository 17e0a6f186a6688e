// Package metadata holds the one table of header names every Microhost layer uses
// and carries metadata in a context from client to server and back.
package metadata

import (
	"context"
	"net/textproto"
	"strings"
)

// Header names. Every transport, the gateway and the plugin boundary use these and
// no others; keys are canonical MIME header names.
const (
	Service     = "Micro-Service"    // the called service's registered name
	Endpoint    = "Micro-Endpoint"   // Handler.Method being called
	RequestID   = "Micro-Request-Id" // one id per request, forwarded or generated
	Timeout     = "Micro-Timeout"    // remaining time budget, Go duration text ("250ms")
	Status      = "Micro-Status"     // the response status code on transports without one
	Error       = "Micro-Error"      // "1" when the body is an error envelope
	From        = "Micro-From"       // the calling service's name, when known
	Stream      = "Micro-Stream"     // "1" on a request that opens a bidirectional stream
	ContentType = "Content-Type"     // the request or response codec
	Accept      = "Accept"           // what the caller can read
	TraceParent = "Traceparent"      // W3C trace context
	TraceState  = "Tracestate"       // W3C trace context vendor state
	Baggage     = "Baggage"          // W3C baggage
	Auth        = "Authorization"    // bearer tokens
	Principal   = "Micro-Principal"  // an internal token forwarding a verified caller; servers verify it or drop it
	Challenge   = "Www-Authenticate" // how to authenticate, sent with a 401
	RetryAfter  = "Retry-After"      // when to try again, sent with a 429 or 503
	Prefix      = "Micro-"           // every Microhost-specific header starts with this

	// Set by the gateway on the calls it proxies (RFC 7239 and the de facto
	// X-Forwarded-* names), so a handler sees the original client.
	Forwarded       = "Forwarded"
	ForwardedFor    = "X-Forwarded-For"
	ForwardedHost   = "X-Forwarded-Host"
	ForwardedProto  = "X-Forwarded-Proto"
	FailedParts     = "Micro-Failed-Parts" // gateway aggregation: the parts that failed, comma-separated
	RequestIDLegacy = "X-Request-Id"       // accepted from HTTP clients when Micro-Request-Id is absent
)

// Propagated reports whether a header name crosses a hop: every Micro-* name and the
// standard names in the table above. name must be canonical.
func Propagated(name string) bool {
	if strings.HasPrefix(name, Prefix) {
		return true
	}
	switch name {
	case ContentType, Accept, TraceParent, TraceState, Baggage, Auth, Challenge, RetryAfter,
		Forwarded, ForwardedFor, ForwardedHost, ForwardedProto:
		return true
	}
	return false
}

// Canonical returns the canonical form of a header name.
func Canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

// MD is a set of metadata; keys are canonical header names.
type MD map[string]string

// Get returns the value of key, whatever its case.
func (md MD) Get(key string) (string, bool) {
	v, ok := md[key]
	if !ok {
		v, ok = md[Canonical(key)]
	}
	return v, ok
}

// Set stores value under the canonical form of key.
func (md MD) Set(key, value string) { md[Canonical(key)] = value }

// Copy returns a copy that can be changed without touching md.
func (md MD) Copy() MD {
	out := make(MD, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}

type outgoingKey struct{}

// NewOutgoingContext returns ctx carrying md to be sent with the next client call.
// Keys are canonicalised.
func NewOutgoingContext(ctx context.Context, md MD) context.Context {
	out := make(MD, len(md))
	for k, v := range md {
		out[Canonical(k)] = v
	}
	return context.WithValue(ctx, outgoingKey{}, out)
}

// AppendOutgoing returns ctx with key=value added to the outgoing metadata.
func AppendOutgoing(ctx context.Context, key, value string) context.Context {
	md, _ := FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set(key, value)
	return context.WithValue(ctx, outgoingKey{}, md)
}

// FromOutgoingContext returns the metadata a client call will send.
func FromOutgoingContext(ctx context.Context) (MD, bool) {
	md, ok := ctx.Value(outgoingKey{}).(MD)
	return md, ok
}

// NewIncomingContext returns ctx carrying the metadata a server received.
func NewIncomingContext(ctx context.Context, md MD) context.Context {
	return context.WithValue(ctx, serverCallKey{}, &serverCall{in: md})
}

// FromIncomingContext returns the metadata the current call arrived with.
func FromIncomingContext(ctx context.Context) (MD, bool) {
	sc, ok := ctx.Value(serverCallKey{}).(*serverCall)
	if !ok {
		return nil, false
	}
	return sc.in, true
}

// ForwardIncoming returns ctx whose outgoing metadata is the incoming metadata minus
// the per-hop names (service, endpoint, content type, accept, status, error,
// timeout, principal, challenge, retry-after), so a handler's own calls carry the request id,
// trace context and auth on. An internal principal token is addressed to one
// service and never forwarded.
func ForwardIncoming(ctx context.Context) context.Context {
	in, ok := FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	out, _ := FromOutgoingContext(ctx)
	merged := make(MD, len(in)+len(out))
	for k, v := range in {
		switch k {
		case Service, Endpoint, ContentType, Accept, Status, Error, Timeout, Principal, Challenge, RetryAfter:
			continue
		}
		merged[k] = v
	}
	for k, v := range out {
		merged[k] = v
	}
	return context.WithValue(ctx, outgoingKey{}, merged)
}

// Trailer collects metadata a handler sends back to its caller with the response.
type Trailer struct{ md MD }

// serverCall is what a server puts in a call's context: the incoming metadata and
// the collector for response metadata, under one key so a call costs one value.
type serverCall struct {
	in      MD
	trailer Trailer
}

type serverCallKey struct{}

// NewServerContext returns ctx carrying md as the incoming metadata of a server
// call and a collector for the metadata the handler sends back.
func NewServerContext(ctx context.Context, md MD) (context.Context, *Trailer) {
	sc := &serverCall{in: md}
	return context.WithValue(ctx, serverCallKey{}, sc), &sc.trailer
}

// SetResponse records key=value to be sent back to the caller of the current call.
// It reports false when ctx is not a server call's context.
func SetResponse(ctx context.Context, key, value string) bool {
	sc, ok := ctx.Value(serverCallKey{}).(*serverCall)
	if !ok {
		return false
	}
	if sc.trailer.md == nil {
		sc.trailer.md = MD{}
	}
	sc.trailer.md.Set(key, value)
	return true
}

// MD returns the collected response metadata (nil when none was set).
func (t *Trailer) MD() MD { return t.md }
