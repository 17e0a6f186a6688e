package broker_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

// TestInstrumentTracing checks when a published message gets a PRODUCER span
// and a traceparent: always when sampled, never for a new trace the sampler
// dropped, and with ContinueOnly only under a caller's span.
func TestInstrumentTracing(t *testing.T) {
	parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	}))
	for _, tc := range []struct {
		name       string
		sampler    sdktrace.Sampler
		opts       []telemetry.Option
		ctx        context.Context
		wantSpans  int
		wantHeader bool
	}{
		{"sampled root", sdktrace.AlwaysSample(), nil, context.Background(), 2, true},
		{"dropped root", sdktrace.NeverSample(), nil, context.Background(), 0, false},
		{"continue only, no caller", sdktrace.ParentBased(sdktrace.NeverSample()), []telemetry.Option{telemetry.ContinueOnly()}, context.Background(), 0, false},
		{"continue only, under a caller", sdktrace.ParentBased(sdktrace.NeverSample()), []telemetry.Option{telemetry.ContinueOnly()}, parent, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			mem := broker.NewMemory()
			t.Cleanup(func() { _ = mem.Close() })
			b := broker.Instrument(mem, telemetry.New(append(tc.opts, telemetry.WithTracerProvider(tp))...))

			got := make(chan map[string]string, 1)
			sub, err := b.Subscribe(context.Background(), "orders.placed", func(_ context.Context, d broker.Delivery) error {
				got <- d.Message().Header
				return nil
			}, broker.AutoAck(true))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			if err := b.Publish(tc.ctx, "orders.placed", &broker.Message{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			var header map[string]string
			select {
			case header = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no delivery within 10s")
			}
			if _, has := header[metadata.TraceParent]; has != tc.wantHeader {
				t.Errorf("delivered header %v: traceparent present = %v, want %v", header, has, tc.wantHeader)
			}
			// The consumer span ends after the handler returns: poll for it.
			deadline := time.Now().Add(10 * time.Second)
			for len(rec.Ended()) < tc.wantSpans && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := len(rec.Ended()); n != tc.wantSpans {
				t.Errorf("%d spans ended, want %d (producer and consumer)", n, tc.wantSpans)
			}
		})
	}
}

// TestConsumerSpanNamedByPattern checks a consumer span is named by the
// subscribed pattern (a bounded set of names), not by each concrete topic.
func TestConsumerSpanNamedByPattern(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mem := broker.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	b := broker.Instrument(mem, telemetry.New(telemetry.WithTracerProvider(tp)))
	done := make(chan struct{}, 1)
	sub, err := b.Subscribe(context.Background(), "orders.*", func(context.Context, broker.Delivery) error {
		done <- struct{}{}
		return nil
	}, broker.AutoAck(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Publish(context.Background(), "orders.4711", &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindConsumer {
				if s.Name() != "process orders.*" {
					t.Fatalf("consumer span %q, want \"process orders.*\"", s.Name())
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no consumer span within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
