package telemetry_test

import (
	"context"
	"fmt"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTraces(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	under := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	}))
	for _, tc := range []struct {
		name string
		tel  *telemetry.Telemetry
		ctx  context.Context
		want bool
	}{
		{"nil", nil, under, false},
		{"tracing off", telemetry.New(), under, false},
		{"tracing on", telemetry.New(telemetry.WithTracerProvider(tp)), context.Background(), true},
		{"continue only, no caller", telemetry.New(telemetry.WithTracerProvider(tp), telemetry.ContinueOnly()), context.Background(), false},
		{"continue only, under a caller", telemetry.New(telemetry.WithTracerProvider(tp), telemetry.ContinueOnly()), under, true},
	} {
		if got := tc.tel.Traces(tc.ctx); got != tc.want {
			t.Errorf("%s: Traces = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStartWithTracingOff checks no span is recorded while a caller's trace
// context still goes from the server's request to the client's.
func TestStartWithTracingOff(t *testing.T) {
	tel := telemetry.New()
	ctx, span := tel.StartServer(context.Background(), map[string]string{metadata.TraceParent: callerTrace}, "POST", "Greeter.Hello", "greeter")
	if span.IsRecording() || span.Span().IsRecording() {
		t.Fatal("a span is recording with tracing off")
	}
	out := map[string]string{}
	_, cspan := tel.StartClient(ctx, out, "POST", "Store.Get", "127.0.0.1:8080", 0, "store")
	cspan.End(200, nil)
	span.End(200, nil)
	if got := out[metadata.TraceParent]; got != callerTrace {
		t.Fatalf("outgoing traceparent %q, want the caller's %q", got, callerTrace)
	}
	out = map[string]string{}
	if _, s := tel.StartClient(context.Background(), out, "POST", "Store.Get", "127.0.0.1:8080", 0, "store"); s.IsRecording() || len(out) != 0 {
		t.Fatalf("without a caller: recording %v, header %v; want neither", s.IsRecording(), out)
	}
}

// TestSpans checks span names, kinds, attributes and the error status.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel := telemetry.New(telemetry.WithTracerProvider(tp))

	ctx, server := tel.StartServer(context.Background(), map[string]string{metadata.TraceParent: callerTrace}, "POST", "Greeter.Hello", "greeter")
	out := map[string]string{}
	_, client := tel.StartClient(ctx, out, "POST", "Store.Get", "127.0.0.1:8080", 1, "store")
	client.End(404, fmt.Errorf("no such thing"))
	server.End(200, nil)

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	c, s := spans[0], spans[1]
	if s.Name() != "POST Greeter.Hello" || s.SpanKind() != trace.SpanKindServer || s.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("server span %q kind %v parent %v", s.Name(), s.SpanKind(), s.Parent())
	}
	if c.Name() != "POST Store.Get" || c.SpanKind() != trace.SpanKindClient || c.Parent().SpanID() != s.SpanContext().SpanID() {
		t.Errorf("client span %q kind %v parent %v", c.Name(), c.SpanKind(), c.Parent())
	}
	for _, tc := range []struct {
		kind string
		span sdktrace.ReadOnlySpan
		want map[string]string
	}{
		{"client", c, map[string]string{
			"http.request.method": "POST", "http.route": "Store.Get", "server.address": "127.0.0.1", "server.port": "8080",
			"http.request.resend_count": "1", "micro.service": "store", "http.response.status_code": "404", "error.type": "404",
		}},
		{"server", s, map[string]string{
			"http.request.method": "POST", "http.route": "Greeter.Hello", "micro.service": "greeter", "http.response.status_code": "200",
		}},
	} {
		attrs := map[string]string{}
		for _, a := range tc.span.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if len(attrs) != len(tc.want) {
			t.Errorf("%s span attributes %v, want exactly %v", tc.kind, attrs, tc.want)
		}
		for k, v := range tc.want {
			if attrs[k] != v {
				t.Errorf("%s span attribute %s = %q, want %q (all: %v)", tc.kind, k, attrs[k], v, attrs)
			}
		}
	}
	if c.Status().Code.String() != "Error" || s.Status().Code.String() == "Error" {
		t.Errorf("statuses client %v server %v; want a 404 to mark the client span only", c.Status(), s.Status())
	}
	if out[metadata.TraceParent] == "" || out[metadata.TraceParent] == callerTrace {
		t.Errorf("outgoing traceparent %q, want the client span's", out[metadata.TraceParent])
	}
}
