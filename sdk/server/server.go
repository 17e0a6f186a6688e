// Package server runs a service's handlers: it registers plain Go methods by
// reflection as endpoints named Handler.Method, decodes requests with the negotiated
// codec, runs middleware, and answers through any transport.
package server

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Request is one call as middleware sees it.
type Request struct {
	Service  string
	Endpoint string      // Handler.Method
	Header   metadata.MD // the incoming metadata
	// Body is the decoded request (a *Req) for unary and server-stream endpoints,
	// nil for bidirectional streams.
	Body any
	// Stream is set for streaming endpoints.
	Stream Stream
}

// Handler serves one decoded request; the returned value is the response (nil for
// streams).
type Handler func(ctx context.Context, req *Request) (any, error)

// Middleware wraps a Handler, e.g. for logging, auth or metrics.
type Middleware func(Handler) Handler

// Option configures a Server.
type Option func(*Server)

// Codecs sets the codecs the server negotiates between (default json + msgpack).
func Codecs(s *codec.Set) Option { return func(srv *Server) { srv.codecs = s } }

// WithMiddleware appends middleware; the first given is the outermost.
func WithMiddleware(mw ...Middleware) Option {
	return func(srv *Server) { srv.middleware = append(srv.middleware, mw...) }
}

// Telemetry records a SERVER span, the request duration histogram and a debug
// request log for every call; nil (the default) records nothing.
func Telemetry(t *telemetry.Telemetry) Option { return func(srv *Server) { srv.tel = t } }

// Logger receives handler panics and other errors that have no caller to go to.
func Logger(f func(msg string, args ...any)) Option { return func(srv *Server) { srv.logf = f } }

// Server dispatches transport messages to registered handler methods. It implements
// transport.Handler. Register handlers before serving.
type Server struct {
	name       string
	codecs     *codec.Set
	middleware []Middleware
	logf       func(msg string, args ...any)
	tel        *telemetry.Telemetry
	metrics    *telemetry.RPCMetrics

	mu      sync.RWMutex
	methods map[string]*method
	chain   Handler
}

var _ transport.Handler = (*Server)(nil)

// New returns a server for the service called name.
func New(name string, opts ...Option) *Server {
	s := &Server{name: name, methods: map[string]*method{}, logf: func(string, ...any) {}}
	for _, opt := range opts {
		opt(s)
	}
	if s.codecs == nil {
		s.codecs = codec.DefaultSet()
	}
	s.chain = s.invoke
	for i := len(s.middleware) - 1; i >= 0; i-- {
		s.chain = s.middleware[i](s.chain)
	}
	s.initTelemetry()
	return s
}

// Name returns the service name.
func (s *Server) Name() string { return s.name }

// Handle registers h's handler-shaped methods as endpoints named Type.Method.
func (s *Server) Handle(h any, opts ...HandleOption) error {
	_, methods, err := extractMethods(h, opts...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range methods {
		if _, dup := s.methods[m.name]; dup {
			return fmt.Errorf("server: endpoint %s is registered twice", m.name)
		}
	}
	for _, m := range methods {
		s.methods[m.name] = m
	}
	return nil
}

// Endpoints describes every registered endpoint, sorted by name, for the registry.
func (s *Server) Endpoints() []*registry.Endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*registry.Endpoint, 0, len(s.methods))
	for _, m := range s.methods {
		out = append(out, m.endpoint())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) lookup(endpoint string) (*method, error) {
	s.mu.RLock()
	m, ok := s.methods[endpoint]
	s.mu.RUnlock()
	if !ok {
		return nil, errors.NotFound(s.name, "service %s has no endpoint %q; call one of %v", s.name, endpoint, s.endpointNames())
	}
	return m, nil
}

func (s *Server) endpointNames() []string {
	eps := s.Endpoints()
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = ep.Name
	}
	return names
}

// ServeRequest decodes, dispatches and encodes one unary call.
func (s *Server) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	if s.tel != nil {
		return s.observeRequest(ctx, req)
	}
	return s.serveRequest(ctx, req)
}

func (s *Server) serveRequest(ctx context.Context, req *transport.Message) *transport.Message {
	md := metadata.MD(req.Header)
	reqCodec, err := s.codecs.ForContentType(md[metadata.ContentType], req.Body)
	if err != nil {
		return s.errorMessage(s.codecs.Default(), err)
	}
	respCodec, err := s.codecs.ForAccept(md[metadata.Accept], reqCodec)
	if err != nil {
		return s.errorMessage(reqCodec, err)
	}
	endpoint := md[metadata.Endpoint]
	m, err := s.lookup(endpoint)
	if err != nil {
		return s.errorMessage(respCodec, err)
	}
	if m.kind != Unary {
		return s.errorMessage(respCodec, errors.BadRequest(s.name, "%s is a %s endpoint: open a stream to call it", endpoint, m.kind))
	}
	in := reflect.New(m.reqType)
	if len(req.Body) > 0 {
		if err := reqCodec.Unmarshal(req.Body, in.Interface()); err != nil {
			return s.errorMessage(respCodec, errors.BadRequest(s.name, "malformed %s body for %s: %v", reqCodec.Name(), endpoint, err))
		}
	}
	ctx, cancel := withTimeout(ctx, md)
	defer cancel()
	ctx, trailer := metadata.NewServerContext(ctx, md)

	out, err := s.chain(ctx, &Request{Service: s.name, Endpoint: endpoint, Header: md, Body: in.Interface()})
	if err != nil {
		return s.withTrailer(s.errorMessage(respCodec, err), trailer)
	}
	body, err := respCodec.Marshal(out)
	if err != nil {
		return s.errorMessage(respCodec, errors.Internal(s.name, "encoding the %s response of %s: %v", respCodec.Name(), endpoint, err))
	}
	resp := &transport.Message{Header: map[string]string{metadata.ContentType: respCodec.ContentType()}, Body: body}
	return s.withTrailer(resp, trailer)
}

// invoke is the innermost handler: it calls the method.
func (s *Server) invoke(ctx context.Context, req *Request) (out any, err error) {
	m, err := s.lookup(req.Endpoint)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			s.logf("handler panic", "endpoint", req.Endpoint, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = nil, errors.Internal(s.name, "%s failed unexpectedly (panic); see the service log", req.Endpoint)
		}
	}()
	ctxv := reflect.ValueOf(ctx)
	switch m.kind {
	case Unary:
		res := m.fn.Call([]reflect.Value{ctxv, reflect.ValueOf(req.Body)})
		if e := res[1].Interface(); e != nil {
			return nil, e.(error)
		}
		if res[0].IsNil() {
			return reflect.New(m.respType).Interface(), nil
		}
		return res[0].Interface(), nil
	case ServerStream:
		res := m.fn.Call([]reflect.Value{ctxv, reflect.ValueOf(req.Body), reflect.ValueOf(&req.Stream).Elem()})
		if e := res[0].Interface(); e != nil {
			return nil, e.(error)
		}
		return nil, nil
	default:
		res := m.fn.Call([]reflect.Value{ctxv, reflect.ValueOf(&req.Stream).Elem()})
		if e := res[0].Interface(); e != nil {
			return nil, e.(error)
		}
		return nil, nil
	}
}

// errorMessage encodes err as the envelope with its status.
func (s *Server) errorMessage(c codec.Codec, err error) *transport.Message {
	e := errors.FromError(err)
	if e.ID == "" {
		e = &errors.Error{ID: s.name, Code: e.Code, Status: e.Status, Detail: e.Detail, Fields: e.Fields}
	}
	body, mErr := c.Marshal(e)
	if mErr != nil {
		c = s.codecs.Default()
		body, _ = c.Marshal(errors.Internal(s.name, "unencodable error: %v", mErr))
	}
	return &transport.Message{
		Header: map[string]string{
			metadata.ContentType: c.ContentType(),
			metadata.Status:      strconv.Itoa(int(e.Code)),
			metadata.Error:       "1",
		},
		Body: body,
	}
}

func (s *Server) withTrailer(resp *transport.Message, t *metadata.Trailer) *transport.Message {
	for k, v := range t.MD() {
		if _, taken := resp.Header[k]; !taken {
			resp.Header[k] = v
		}
	}
	return resp
}

// withTimeout applies the caller's remaining time budget, if it sent one.
func withTimeout(ctx context.Context, md metadata.MD) (context.Context, context.CancelFunc) {
	if v := md[metadata.Timeout]; v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return context.WithTimeout(ctx, d)
		}
	}
	return ctx, func() {}
}
