package host

import (
	"context"
	"os"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/microhost/micro/host/config"
)

// newSpanExporter builds the exporter telemetry.tracing configures: OTLP over
// gRPC or HTTP (protobuf), or JSON lines on stdout.
func newSpanExporter(ctx context.Context, t *config.Tracing) (sdktrace.SpanExporter, error) {
	switch t.Exporter {
	case "stdout":
		return stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	case "otlp_http":
		opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(t.Timeout)}
		switch {
		case strings.Contains(t.Endpoint, "://"):
			opts = append(opts, otlptracehttp.WithEndpointURL(t.Endpoint))
		case t.Endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(t.Endpoint))
		}
		if t.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(t.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(t.Headers))
		}
		return otlptracehttp.New(ctx, opts...)
	default:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(t.Timeout)}
		switch { // host:port, or a URL as OTEL_EXPORTER_OTLP_ENDPOINT takes it
		case strings.Contains(t.Endpoint, "://"):
			opts = append(opts, otlptracegrpc.WithEndpointURL(t.Endpoint))
		case t.Endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(t.Endpoint))
		}
		if t.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(t.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(t.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
}

// newSampler is the sampler of the OTEL_TRACES_SAMPLER name t.Sampler.
func newSampler(t *config.Tracing) sdktrace.Sampler {
	switch t.Sampler {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(t.Ratio)
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.Ratio))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// newResource describes this process to the tracing backend: service.name,
// service.version, host.name and the configured attributes.
func newResource(t *config.Tracing) *resource.Resource {
	version := t.ServiceVersion
	if version == "" {
		version = buildVersion()
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(t.ServiceName), semconv.ServiceVersion(version)}
	if name, err := os.Hostname(); err == nil {
		attrs = append(attrs, semconv.HostName(name))
	}
	for k, v := range t.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	return resource.NewSchemaless(attrs...)
}

// buildVersion is the version of the module this binary was built from,
// "(devel)" for a local build.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
