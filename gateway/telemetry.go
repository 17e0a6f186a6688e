package gateway

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/telemetry"
)

// startRequest starts r's SERVER span, continuing the client's trace context,
// and returns r with the span in its context. It is named after the method
// until the route is known. Without telemetry it returns r and nil.
func (g *Gateway) startRequest(r *http.Request) (*http.Request, trace.Span) {
	if !g.tel.Tracing() {
		return r, nil
	}
	ctx := g.tel.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	method := methodLabel(r.Method)
	ctx, span := g.tel.Tracer().Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.URLPathKey.String(r.URL.Path)))
	return r.WithContext(ctx), span
}

// endRequest names and ends the span after the route template, and writes the
// debug request log with the trace and span ids.
func (g *Gateway) endRequest(r *http.Request, span trace.Span, route string, status int, d time.Duration) {
	if span != nil {
		span.SetName(methodLabel(r.Method) + " " + route)
		span.SetAttributes(semconv.HTTPRouteKey.String(route))
		telemetry.EndServer(span, status, nil)
	}
	if l := g.tel.Logger(); l.IsDebug() {
		telemetry.LoggerFrom(r.Context(), l).Debug("request", "method", r.Method, "route", route, "status", status, "duration", d.String())
	}
}

// startTry starts the CLIENT span of one try of c at addr and returns the
// header to send, a copy carrying the span's trace context.
func (s *state) startTry(ctx context.Context, c *backendCall, header map[string]string, addr string, attempt int) (context.Context, map[string]string, telemetry.RequestSpan) {
	tel := s.g.tel
	if !tel.Tracing() {
		return ctx, header, telemetry.RequestSpan{}
	}
	header = cloneHeader(header, 3) // never the call's own: tries run one at a time, but it is the caller's
	ctx, span := tel.StartClient(ctx, header, http.MethodPost, c.endpoint, addr, attempt, c.service)
	return ctx, header, span
}
