package telemetry_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

// BenchmarkRequestSpans is what tracing adds to one call when both ends are
// traced: a CLIENT span whose context goes into the request header, the SERVER
// span continuing it, both ended with their attributes and batched for export.
func BenchmarkRequestSpans(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(telemetry.NewBatcher(tracetest.NewNoopExporter(), telemetry.BatchConfig{})))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	tel := telemetry.New(telemetry.WithTracerProvider(tp))
	header := map[string]string{metadata.Endpoint: "Echo.Say", metadata.ContentType: "application/json"}
	b.ReportAllocs()
	for b.Loop() {
		_, client := tel.StartClient(context.Background(), header, "POST", "Echo.Say", "127.0.0.1:4000", 0, "echo")
		_, server := tel.StartServer(context.Background(), header, "POST", "Echo.Say", "echo")
		server.End(200, nil)
		client.End(200, nil)
	}
}
