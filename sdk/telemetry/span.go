package telemetry

import (
	"context"
	"net"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
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
	if header != nil {
		ctx = t.Extract(ctx, header)
	}
	all := make([]attribute.KeyValue, 0, len(attrs)+2)
	all = append(all, semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRouteKey.String(route))
	return t.Tracer().Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(append(all, attrs...)...))
}

// StartClient starts the CLIENT span of one try of a call to addr, named
// "{method} {route}", and writes its trace context into header for the callee.
// attempt counts from 0; later tries carry http.request.resend_count.
func (t *Telemetry) StartClient(ctx context.Context, header map[string]string, method, route, addr string, attempt int, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	all := make([]attribute.KeyValue, 0, len(attrs)+5)
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
	ctx, span := t.Tracer().Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(append(all, attrs...)...))
	if header != nil {
		t.Inject(ctx, header)
	}
	return ctx, span
}

// RPCAttributes describe a Microhost RPC beyond its route (the endpoint):
// micro.service, the service called.
func RPCAttributes(service, endpoint string) []attribute.KeyValue {
	return []attribute.KeyValue{ServiceKey.String(service)}
}

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
