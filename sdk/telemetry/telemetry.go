// Package telemetry is what instrumented Microhost code records with: an
// OpenTelemetry tracer provider, the W3C propagator, a Prometheus registerer and
// an hclog logger, passed explicitly (never through otel's globals). A nil
// *Telemetry records nothing and costs next to nothing.
package telemetry

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of the spans Microhost itself starts.
const Scope = "github.com/microhost/micro"

// Telemetry bundles the providers one component records with. Build it with New;
// derive a component's own with For.
type Telemetry struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	reg    prometheus.Registerer
	log    hclog.Logger
	// continueOnly: spans only continue a trace a caller started.
	continueOnly bool
}

// Option configures New.
type Option func(*Telemetry)

// WithTracerProvider records spans with tp; without it no span is started.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(t *Telemetry) { t.tp = tp }
}

// WithRegisterer registers metrics with reg; without it none are kept.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(t *Telemetry) { t.reg = reg }
}

// WithPropagator carries trace context with p (default: W3C traceparent,
// tracestate and baggage).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Telemetry) { t.prop = p }
}

// WithLogger writes request logs to l (default: nowhere).
func WithLogger(l hclog.Logger) Option {
	return func(t *Telemetry) { t.log = l }
}

// ContinueOnly makes spans only continue a trace the caller started: where no
// trace context arrives, nothing is traced. A plugin uses it, so the host alone
// decides what is traced, and untraced work costs no span.
func ContinueOnly() Option {
	return func(t *Telemetry) { t.continueOnly = true }
}

// New returns a Telemetry from opts.
func New(opts ...Option) *Telemetry {
	t := &Telemetry{}
	for _, opt := range opts {
		opt(t)
	}
	if t.prop == nil {
		t.prop = W3C()
	}
	if t.log == nil {
		t.log = hclog.NewNullLogger()
	}
	if t.tp != nil {
		t.tracer = t.tp.Tracer(Scope)
	}
	return t
}

// W3C is the propagator Microhost speaks on every hop: traceparent, tracestate
// and baggage.
func W3C() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// For returns a copy for the component called name: its metrics get the
// constant label service=name, so several services of one host share a
// registry without clashing.
func (t *Telemetry) For(name string) *Telemetry {
	if t == nil {
		return nil
	}
	c := *t
	if t.reg != nil {
		c.reg = prometheus.WrapRegistererWith(prometheus.Labels{"service": name}, t.reg)
	}
	return &c
}

// Logged returns a copy whose request logs go to l, such as a component's
// own logger with its own level.
func (t *Telemetry) Logged(l hclog.Logger) *Telemetry {
	if t == nil {
		return nil
	}
	c := *t
	c.log = l
	return &c
}

// Traces reports whether work under ctx gets a span: tracing is on and, with
// ContinueOnly, ctx carries a caller's span context.
func (t *Telemetry) Traces(ctx context.Context) bool {
	if !t.Tracing() {
		return false
	}
	return !t.continueOnly || trace.SpanContextFromContext(ctx).IsValid()
}

// Tracing reports whether spans are recorded.
func (t *Telemetry) Tracing() bool { return t != nil && t.tracer != nil }

// Tracer returns the tracer Microhost's spans come from; a no-op one when
// tracing is off.
func (t *Telemetry) Tracer() trace.Tracer {
	if !t.Tracing() {
		return noop.NewTracerProvider().Tracer(Scope)
	}
	return t.tracer
}

// TracerProvider returns the tracer provider, nil when tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.tp
}

// Propagator returns the propagator for trace context and baggage.
func (t *Telemetry) Propagator() propagation.TextMapPropagator {
	if t == nil || t.prop == nil {
		return W3C()
	}
	return t.prop
}

// Registerer returns where metrics go, nil when metrics are off.
func (t *Telemetry) Registerer() prometheus.Registerer {
	if t == nil {
		return nil
	}
	return t.reg
}

// Logger returns the request logger; a null logger when none was given.
func (t *Telemetry) Logger() hclog.Logger {
	if t == nil || t.log == nil {
		return hclog.NewNullLogger()
	}
	return t.log
}
