package telemetry

import (
	"context"
	"net"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/metadata"
)

// Attributes Microhost adds to the semantic conventions' own.
const (
	// ServiceKey names the Microhost service a span's request was for.
	ServiceKey = attribute.Key("micro.service")
)

// RequestSpan is the SERVER span of a request or the CLIENT span of one try of
// a call, holding what its attributes are made of until it ends: the tracer
// then records them all in one go, which costs it one allocation instead of one
// per call that adds attributes. The zero value (tracing off) does nothing.
type RequestSpan struct {
	span          trace.Span
	server        bool
	method, route string
	service, addr string
	attempt       int
}

// Span returns the underlying span (a non-recording one when tracing is off).
func (s RequestSpan) Span() trace.Span {
	if s.span == nil {
		return noSpan
	}
	return s.span
}

// IsRecording reports whether the span records anything.
func (s RequestSpan) IsRecording() bool { return s.span != nil && s.span.IsRecording() }

// StartServer starts the SERVER span of an incoming request for service, named
// "{method} {route}" and parented by the caller's trace context in header (nil
// when there is none to read).
func (t *Telemetry) StartServer(ctx context.Context, header map[string]string, method, route, service string) (context.Context, RequestSpan) {
	if !t.Tracing() {
		// No spans here, but a caller's trace context still passes through to
		// the calls this request makes.
		if header[metadata.TraceParent] != "" {
			ctx = t.Extract(ctx, header)
		}
		return ctx, RequestSpan{}
	}
	if header != nil {
		ctx = t.Extract(ctx, header)
	}
	ctx, span := t.Tracer().Start(ctx, spanName(method, route), serverKind...)
	return ctx, RequestSpan{span: span, server: true, method: method, route: route, service: service}
}

// StartClient starts the CLIENT span of one try of a call to service at addr,
// named "{method} {route}", and writes its trace context into header for the
// callee. attempt counts from 0; later tries carry http.request.resend_count.
func (t *Telemetry) StartClient(ctx context.Context, header map[string]string, method, route, addr string, attempt int, service string) (context.Context, RequestSpan) {
	if !t.Tracing() {
		// No spans here; a trace context that came in still goes on.
		if header != nil && trace.SpanContextFromContext(ctx).IsValid() {
			t.Inject(ctx, header)
		}
		return ctx, RequestSpan{}
	}
	ctx, span := t.Tracer().Start(ctx, spanName(method, route), clientKind...)
	if header != nil {
		t.Inject(ctx, header)
	}
	return ctx, RequestSpan{span: span, method: method, route: route, service: service, addr: addr, attempt: attempt}
}

// spanName is "{method} {route}", the conventions' name for HTTP spans.
func spanName(method, route string) string { return method + " " + route }

// End records the status the request or try was answered with and ends the
// span: 5xx marks a SERVER span as an error, 4xx and 5xx a CLIENT span, as the
// conventions say.
func (s RequestSpan) End(status int, err error) {
	if s.span == nil {
		return
	}
	if !s.span.IsRecording() { // a span the sampler dropped is not worth its attributes
		s.span.End()
		return
	}
	s.record(status, err)
}

// attrBuffers recycles the arrays record gathers a span's attributes in: the
// tracer copies what SetAttributes is given (the OpenTelemetry SDK appends to
// the span's own slice), so one array serves span after span.
var attrBuffers = sync.Pool{New: func() any { return new([maxRequestAttrs]attribute.KeyValue) }}

// maxRequestAttrs is the most attributes record sets on one span.
const maxRequestAttrs = 9

// record sets every attribute with one call and ends the span.
func (s RequestSpan) record(status int, err error) {
	buf := attrBuffers.Get().(*[maxRequestAttrs]attribute.KeyValue)
	defer func() {
		*buf = [maxRequestAttrs]attribute.KeyValue{} // keep no strings alive
		attrBuffers.Put(buf)
	}()
	attrs := append(buf[:0], semconv.HTTPRequestMethodKey.String(s.method), semconv.HTTPRouteKey.String(s.route))
	if s.service != "" {
		attrs = append(attrs, ServiceKey.String(s.service))
	}
	if !s.server {
		if host, port, err := net.SplitHostPort(s.addr); err == nil {
			attrs = append(attrs, semconv.ServerAddressKey.String(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPortKey.Int(p))
			}
		} else if s.addr != "" {
			attrs = append(attrs, semconv.ServerAddressKey.String(s.addr))
		}
		if s.attempt > 0 {
			attrs = append(attrs, semconv.HTTPRequestResendCountKey.Int(s.attempt))
		}
	}
	errorFrom := 400
	if s.server {
		errorFrom = 500
	}
	attrs = endAttributes(attrs, s.span, status, err, errorFrom)
	s.span.SetAttributes(attrs...)
	s.span.End()
}

// The span kinds as start option lists, built once: passing a single option
// would allocate its list on every call. The tracer only reads them.
var (
	serverKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// noSpan is what the Start functions return when tracing is off: ending it
// does nothing.
var noSpan = trace.SpanFromContext(context.Background())

// EndServer records the status a request was answered with and ends span, a
// SERVER span started without StartServer: 5xx marks it as an error.
func EndServer(span trace.Span, status int, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	var buf [2]attribute.KeyValue
	span.SetAttributes(endAttributes(buf[:0], span, status, err, 500)...)
	span.End()
}

// endAttributes appends the response's status code, and marks span as an
// error with error.type when status is errorFrom or above.
func endAttributes(attrs []attribute.KeyValue, span trace.Span, status int, err error, errorFrom int) []attribute.KeyValue {
	if status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(status))
	}
	if status >= errorFrom {
		attrs = append(attrs, semconv.ErrorTypeKey.String(StatusText(status)))
		desc := ""
		if err != nil {
			desc = err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	return attrs
}

// StatusText is the decimal text of an HTTP status, for metric labels,
// without allocating for the common ones.
func StatusText(status int) string {
	switch status {
	case 200:
		return "200"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(status)
}
