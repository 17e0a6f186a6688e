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

// startTry starts the CLIENT span of one try of c at addr and writes its trace
// context into c's header.
func (s *state) startTry(ctx context.Context, c *backendCall, addr string, attempt int) (context.Context, telemetry.RequestSpan) {
	tel := s.g.tel
	if !tel.Tracing() {
		return ctx, telemetry.RequestSpan{}
	}
	return tel.StartClient(ctx, c.header, http.MethodPost, c.endpoint, addr, attempt, c.service)
}
