package server

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/schema"
)

// Kind says how an endpoint exchanges messages.
type Kind int

// The endpoint kinds a handler method may have.
const (
	Unary        Kind = iota // func(ctx, *Req) (*Resp, error)
	ServerStream             // func(ctx, *Req, server.Stream) error
	BidiStream               // func(ctx, server.Stream) error
)

// String names the kind as it appears in endpoint metadata.
func (k Kind) String() string {
	switch k {
	case ServerStream:
		return "server-stream"
	case BidiStream:
		return "bidi-stream"
	}
	return "unary"
}

var (
	typeContext = reflect.TypeFor[context.Context]()
	typeError   = reflect.TypeFor[error]()
	typeStream  = reflect.TypeFor[Stream]()
)

// method is one registered endpoint.
type method struct {
	name       string // Handler.Method
	kind       Kind
	fn         reflect.Value // bound method value
	reqType    reflect.Type  // the element type of *Req (nil for bidi)
	respType   reflect.Type  // the element type of *Resp (unary only)
	idempotent bool
	meta       map[string]string
	reqSchema  string // JSON Schema of the request, "" for bidi streams
	respSchema string // JSON Schema of the response, unary only
}

// HandleOption tunes how a handler's methods are registered.
type HandleOption func(*handleOptions)

type handleOptions struct {
	name       string
	idempotent map[string]bool
	meta       map[string]map[string]string
}

// Name registers the handler under name instead of its Go type name.
func Name(name string) HandleOption { return func(o *handleOptions) { o.name = name } }

// Idempotent marks methods (by Go method name) safe to retry: clients retry them on
// retryable failures without the caller opting in.
func Idempotent(methods ...string) HandleOption {
	return func(o *handleOptions) {
		for _, m := range methods {
			o.idempotent[m] = true
		}
	}
}

// EndpointMetadata attaches key=value to one method's registry endpoint, for the
// gateway and generated docs.
func EndpointMetadata(methodName, key, value string) HandleOption {
	return func(o *handleOptions) {
		if o.meta[methodName] == nil {
			o.meta[methodName] = map[string]string{}
		}
		o.meta[methodName][key] = value
	}
}

// extractMethods finds h's exported methods with a handler signature. Methods of
// other shapes are left out; a handler with none is an error.
func extractMethods(h any, opts ...HandleOption) (string, []*method, error) {
	o := handleOptions{idempotent: map[string]bool{}, meta: map[string]map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	if h == nil {
		return "", nil, fmt.Errorf("server: handler is nil")
	}
	v := reflect.ValueOf(h)
	t := v.Type()
	name := o.name
	if name == "" {
		name = reflect.Indirect(v).Type().Name()
	}
	if name == "" || !isExported(name) {
		return "", nil, fmt.Errorf("server: handler %s has no exported type name; pass server.Name(\"...\")", t)
	}
	var out []*method
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		if !m.IsExported() {
			continue
		}
		mt := m.Type // includes the receiver at In(0)
		md := &method{name: name + "." + m.Name, fn: v.Method(i), idempotent: o.idempotent[m.Name], meta: o.meta[m.Name]}
		switch {
		case mt.NumIn() == 3 && mt.NumOut() == 2 && mt.In(1) == typeContext &&
			isStructPtr(mt.In(2)) && isStructPtr(mt.Out(0)) && mt.Out(1) == typeError:
			md.kind, md.reqType, md.respType = Unary, mt.In(2).Elem(), mt.Out(0).Elem()
		case mt.NumIn() == 4 && mt.NumOut() == 1 && mt.In(1) == typeContext &&
			isStructPtr(mt.In(2)) && mt.In(3) == typeStream && mt.Out(0) == typeError:
			md.kind, md.reqType = ServerStream, mt.In(2).Elem()
		case mt.NumIn() == 3 && mt.NumOut() == 1 && mt.In(1) == typeContext &&
			mt.In(2) == typeStream && mt.Out(0) == typeError:
			md.kind = BidiStream
		default:
			continue
		}
		if md.reqType != nil {
			md.reqSchema = schema.JSON(md.reqType)
		}
		if md.respType != nil {
			md.respSchema = schema.JSON(md.respType)
		}
		out = append(out, md)
	}
	if len(out) == 0 {
		return "", nil, fmt.Errorf("server: handler %s has no method of a handler shape: "+
			"func(ctx, *Req) (*Resp, error), func(ctx, *Req, server.Stream) error or func(ctx, server.Stream) error", t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return name, out, nil
}

// endpoint describes m for the registry, with the JSON Schemas of its request
// and response so the gateway can document it.
func (m *method) endpoint() *registry.Endpoint {
	ep := &registry.Endpoint{Name: m.name, Metadata: map[string]string{"kind": m.kind.String()}}
	if m.reqType != nil {
		ep.Request = m.reqType.String()
	}
	if m.respType != nil {
		ep.Response = m.respType.String()
	}
	if m.idempotent {
		ep.Metadata["idempotent"] = "true"
	}
	if m.reqSchema != "" {
		ep.Metadata[schema.RequestKey] = m.reqSchema
	}
	if m.respSchema != "" {
		ep.Metadata[schema.ResponseKey] = m.respSchema
	}
	for k, v := range m.meta {
		ep.Metadata[k] = v
	}
	return ep
}

func isStructPtr(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

func isExported(name string) bool {
	r, _ := utf8.DecodeRuneInString(name)
	return unicode.IsUpper(r)
}

// newValue returns a new *T for the struct type t.
func newValue(t reflect.Type) any { return reflect.New(t).Interface() }
