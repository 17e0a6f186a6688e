package telemetry

import (
	"context"
	"net"
	"strconv"

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

// StartServer starts the SERVER span of an incoming request, named
// "{method} {route}" and parented by the caller's trace context in header (nil
// when there is none to read).
func (t *Telemetry) StartServer(ctx context.Context, header map[string]string, method, route string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.Tracing() {
		// No spans here, but a caller's trace context still passes through to
		// the calls this request makes.
		if header[metadata.TraceParent] != "" {
			ctx = t.Extract(ctx, header)
		}
		return ctx, noSpan
	}
	if header != nil {
		ctx = t.Extract(ctx, header)
	}
	ctx, span := t.Tracer().Start(ctx, method+" "+route, serverKind)
	if span.IsRecording() { // a span the sampler dropped is not worth its attributes
		all := make([]attribute.KeyValue, 0, len(attrs)+3)
		all = append(all, semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRouteKey.String(route))
		span.SetAttributes(append(all, attrs...)...)
	}
	return ctx, span
}

// StartClient starts the CLIENT span of one try of a call to addr, named
// "{method} {route}", and writes its trace context into header for the callee.
// attempt counts from 0; later tries carry http.request.resend_count.
func (t *Telemetry) StartClient(ctx context.Context, header map[string]string, method, route, addr string, attempt int, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.Tracing() {
		// No spans here; a trace context that came in still goes on.
		if header != nil && trace.SpanContextFromContext(ctx).IsValid() {
			t.Inject(ctx, header)
		}
		return ctx, noSpan
	}
	ctx, span := t.Tracer().Start(ctx, method+" "+route, clientKind)
	if span.IsRecording() { // a span the sampler dropped is not worth its attributes
		all := make([]attribute.KeyValue, 0, len(attrs)+6)
		all = append(all, semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRouteKey.String(route))
		if host, port, err := net.SplitHostPort(addr); err == nil {
			all = append(all, semconv.ServerAddressKey.String(host))
			if p, err := strconv.Atoi(port); err == nil {
				all = append(all, semconv.ServerPortKey.Int(p))
			}
		} else if addr != "" {
			all = append(all, semconv.ServerAddressKey.String(addr))
		}
		if attempt > 0 {
			all = append(all, semconv.HTTPRequestResendCountKey.Int(attempt))
		}
		span.SetAttributes(append(all, attrs...)...)
	}
	if header != nil {
		t.Inject(ctx, header)
	}
	return ctx, span
}

// The span kinds as start options, built once.
var (
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
)

// noSpan is what the Start functions return when tracing is off: ending it
// does nothing.
var noSpan = trace.SpanFromContext(context.Background())

// EndServer records the status a request was answered with and ends span: 5xx
// marks the span as an error, as the conventions say for servers.
func EndServer(span trace.Span, status int, err error) { end(span, status, err, 500) }

// EndClient records the status a try came back with and ends span: 4xx and
// 5xx mark it as an error, as the conventions say for clients.
func EndClient(span trace.Span, status int, err error) { end(span, status, err, 400) }

func end(span trace.Span, status int, err error, errorFrom int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(status))
	}
	if status >= errorFrom {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		desc := ""
		if err != nil {
			desc = err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End()
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
