package plugin

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/telemetry"
)

// maxBufferedSpans bounds the finished spans a plugin keeps until the host
// collects them; past it the oldest are dropped and counted.
const maxBufferedSpans = 4096

// pluginTelemetry is what a plugin process records with: its own Prometheus
// registry and a tracer provider whose spans wait in a buffer for the host's
// CollectSpans, so they leave through the host's exporter and the plugin needs
// no exporter configuration of its own. Spans only follow the host's
// sampling decision: a plugin never starts a trace.
type pluginTelemetry struct {
	registry *prometheus.Registry
	tp       *sdktrace.TracerProvider
	tel      *telemetry.Telemetry
	spans    *spanBuffer
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newPluginTelemetry(info Info, extra []prometheus.Collector) (*pluginTelemetry, error) {
	pt := &pluginTelemetry{registry: prometheus.NewRegistry(), spans: &spanBuffer{}}
	pt.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "micro_plugin_server_calls_total",
		Help: "Calls the plugin served, by protocol method and gRPC code.",
	}, []string{"method", "code"})
	pt.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "micro_plugin_server_call_duration_seconds",
		Help:    "Time the plugin took to serve unary calls, by protocol method.",
		Buckets: telemetry.DurationBuckets,
	}, []string{"method"})
	cs := append([]prometheus.Collector{
		pt.calls, pt.duration, pt.spans.droppedCounter(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, extra...)
	for _, c := range cs {
		if err := pt.registry.Register(c); err != nil {
			return nil, err
		}
	}
	res := resource.NewSchemaless(
		semconv.ServiceName("micro-"+info.Kind+"-"+info.Name),
		semconv.ServiceVersion(info.Version),
	)
	pt.tp = sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
		sdktrace.WithSyncer(pt.spans),
	)
	pt.tel = telemetry.New(telemetry.WithTracerProvider(pt.tp), telemetry.WithRegisterer(pt.registry), telemetry.ContinueOnly())
	return pt, nil
}

// serverOptions are the interceptors that record each call: a SERVER span
// continuing the host's trace for unary calls of the kind services, and the
// call metrics for every call.
func (pt *pluginTelemetry) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(pt.unary),
		grpc.ChainStreamInterceptor(pt.stream),
	}
}

func (pt *pluginTelemetry) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	method := strings.TrimPrefix(info.FullMethod, "/")
	if !strings.HasPrefix(info.FullMethod, "/"+pluginv1.Plugin_ServiceDesc.ServiceName+"/") {
		md, _ := grpcmd.FromIncomingContext(ctx)
		ctx = pt.tel.Propagator().Extract(ctx, grpcCarrier(md))
		var span trace.Span
		ctx, span = pt.tel.Tracer().Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.RPCSystemNameKey.String("grpc"), semconv.RPCMethodKey.String(method)))
		defer span.End()
		resp, err := handler(ctx, req)
		if err != nil {
			span.SetStatus(otelcodes.Error, status.Convert(err).Message())
		}
		pt.observe(method, err, start, true)
		return resp, err
	}
	resp, err := handler(ctx, req)
	pt.observe(method, err, start, true)
	return resp, err
}

func (pt *pluginTelemetry) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	pt.observe(strings.TrimPrefix(info.FullMethod, "/"), err, time.Time{}, false)
	return err
}

func (pt *pluginTelemetry) observe(method string, err error, start time.Time, unary bool) {
	pt.calls.WithLabelValues(method, status.Code(err).String()).Inc()
	if unary {
		pt.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	}
}

// metrics gathers the plugin's registry in the protobuf exposition format.
func (pt *pluginTelemetry) metrics() ([]byte, error) {
	families, err := pt.registry.Gather()
	if err != nil && len(families) == 0 {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// collect hands over the buffered spans as OTLP.
func (pt *pluginTelemetry) collect() (*pluginv1.CollectSpansResponse, error) {
	spans, dropped := pt.spans.take()
	resp := &pluginv1.CollectSpansResponse{Dropped: dropped}
	if len(spans) == 0 {
		return resp, nil
	}
	b, err := encodeSpans(spans)
	if err != nil {
		return nil, err
	}
	resp.Traces = b
	return resp, nil
}

// spanBuffer is the plugin's span exporter: finished spans wait in it for the
// host to collect them.
type spanBuffer struct {
	mu         sync.Mutex
	spans      []sdktrace.ReadOnlySpan
	dropped    uint64 // since the last take
	droppedAll prometheus.Counter
}

func (b *spanBuffer) droppedCounter() prometheus.Counter {
	b.droppedAll = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "micro_plugin_spans_dropped_total",
		Help: "Finished spans dropped because the host did not collect them in time.",
	})
	return b.droppedAll
}

// ExportSpans keeps spans for the host, dropping the oldest past the bound.
func (b *spanBuffer) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spans = append(b.spans, spans...)
	if over := len(b.spans) - maxBufferedSpans; over > 0 {
		b.spans = append(b.spans[:0:0], b.spans[over:]...)
		b.dropped += uint64(over)
		b.droppedAll.Add(float64(over))
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (b *spanBuffer) Shutdown(context.Context) error { return nil }

func (b *spanBuffer) take() ([]sdktrace.ReadOnlySpan, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	spans, dropped := b.spans, b.dropped
	b.spans, b.dropped = nil, 0
	return spans, dropped
}

// grpcCarrier reads and writes trace context in gRPC metadata.
type grpcCarrier grpcmd.MD

func (c grpcCarrier) Get(key string) string {
	if v := grpcmd.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c grpcCarrier) Set(key, value string) { grpcmd.MD(c).Set(key, value) }

func (c grpcCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}
