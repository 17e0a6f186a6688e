package service_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
	"github.com/microhost/micro/sdk/telemetry"
)

// Relay calls the back service and publishes what it got, so one request
// crosses a client, two servers and the broker.
type Relay struct{ svc *service.Service }

func (r *Relay) Do(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	var rsp EchoResponse
	if err := r.svc.Client().Call(ctx, "back", "Echo.Say", req, &rsp); err != nil {
		return nil, err
	}
	if err := r.svc.Broker().Publish(ctx, "orders", &broker.Message{Body: []byte(rsp.Text)}); err != nil {
		return nil, err
	}
	return &rsp, nil
}

// ended signals when a span of a given name ends.
type ended struct {
	sdktrace.SpanProcessor
	name string
	ch   chan struct{}
}

func (e *ended) OnEnd(s sdktrace.ReadOnlySpan) {
	e.SpanProcessor.OnEnd(s)
	if s.Name() == e.name {
		e.ch <- struct{}{}
	}
}

func startTelemetryService(t *testing.T, name string, reg registry.Registry, b broker.Broker, tel *telemetry.Telemetry, h any) *service.Service {
	t.Helper()
	svc := service.New(name, service.Registry(reg), service.Broker(b), service.HandleSignals(false), service.Telemetry(tel))
	if h == nil {
		h = &Relay{svc: svc}
	}
	if err := svc.Handle(h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()
	return svc
}

func TestTelemetrySpansAndMetrics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	consumed := &ended{SpanProcessor: rec, name: "process orders", ch: make(chan struct{}, 1)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(consumed))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	promReg := prometheus.NewRegistry()
	tel := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithRegisterer(promReg))

	reg := registry.NewMemory()
	b := broker.NewMemory()
	t.Cleanup(func() { b.Close() })
	startTelemetryService(t, "back", reg, b, tel, &Echo{instance: "b1"})
	front := startTelemetryService(t, "front", reg, b, tel, nil)
	back := service.New("consumer", service.Broker(b), service.Telemetry(tel))
	if _, err := back.Broker().Subscribe(context.Background(), "orders", func(ctx context.Context, d broker.Delivery) error {
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	cli := client.New(client.Registry(reg), client.Telemetry(tel.For("caller")))
	t.Cleanup(func() { cli.Close() })
	var rsp EchoResponse
	if err := cli.Call(context.Background(), "front", "Relay.Do", &EchoRequest{Text: "hi"}, &rsp); err != nil || rsp.Text != "hi" {
		t.Fatalf("call: %+v %v", rsp, err)
	}
	if err := cli.Call(context.Background(), "front", "Relay.Nope", &EchoRequest{}, &rsp); err == nil {
		t.Fatal("an unknown endpoint answered")
	}
	<-consumed.ch
	_ = front

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer && s.Name() == "POST unknown" {
			if code := intAttr(s, "http.response.status_code"); code != 404 {
				t.Errorf("unknown endpoint span status %d", code)
			}
			continue
		}
		spans[s.SpanKind().String()+" "+s.Name()] = s
	}
	chain := []struct{ span, parent string }{
		{"client POST Relay.Do", ""},
		{"server POST Relay.Do", "client POST Relay.Do"},
		{"client POST Echo.Say", "server POST Relay.Do"},
		{"server POST Echo.Say", "client POST Echo.Say"},
		{"producer publish orders", "server POST Relay.Do"},
		{"consumer process orders", "producer publish orders"},
	}
	root := spans["client POST Relay.Do"]
	if root == nil {
		t.Fatalf("no client span; got %v", keys(spans))
	}
	for _, c := range chain {
		s := spans[c.span]
		if s == nil {
			t.Errorf("span %q missing; got %v", c.span, keys(spans))
			continue
		}
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("%s is in another trace", c.span)
		}
		if c.parent != "" && spans[c.parent] != nil && s.Parent().SpanID() != spans[c.parent].SpanContext().SpanID() {
			t.Errorf("%s: parent is not %s", c.span, c.parent)
		}
	}
	if s := spans["server POST Echo.Say"]; s != nil {
		if got := strAttr(s, "http.route"); got != "Echo.Say" {
			t.Errorf("http.route = %q", got)
		}
		if got := intAttr(s, "http.response.status_code"); got != 200 {
			t.Errorf("status = %d", got)
		}
		if got := strAttr(s, "micro.service"); got != "back" {
			t.Errorf("micro.service = %q", got)
		}
	}
	if s := spans["client POST Echo.Say"]; s != nil && strAttr(s, "server.address") != "127.0.0.1" {
		t.Errorf("server.address = %q", strAttr(s, "server.address"))
	}

	families, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"http_server_request_duration_seconds":    {"service": "back", "http_route": "Echo.Say", "http_response_status_code": "200", "http_request_method": "POST"},
		"http_client_request_duration_seconds":    {"service": "front", "rpc_service": "back", "rpc_method": "Echo.Say", "http_response_status_code": "200"},
		"micro_broker_published_total":            {"service": "front", "broker": "memory", "result": "ok"},
		"micro_broker_deliveries_total":           {"service": "consumer", "broker": "memory", "result": "ok"},
		"micro_registry_cache_misses_total":       {"service": "front"},
		"micro_registry_cache_watch_events_total": {"service": "back"},
	}
	for name, labels := range want {
		if !hasMetric(families, name, labels) {
			t.Errorf("no %s with %v", name, labels)
		}
	}
	if !hasMetric(families, "http_server_request_duration_seconds", map[string]string{"service": "front", "http_route": "unknown", "http_response_status_code": "404"}) {
		t.Error("the unknown endpoint is not labelled unknown")
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func strAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if a.Key == attribute.Key(key) {
			return a.Value.Emit()
		}
	}
	return ""
}

func intAttr(s sdktrace.ReadOnlySpan, key string) int64 {
	for _, a := range s.Attributes() {
		if a.Key == attribute.Key(key) {
			return a.Value.AsInt64()
		}
	}
	return 0
}

// hasMetric reports whether a metric of family name has all of labels.
func hasMetric(families []*dto.MetricFamily, name string, labels map[string]string) bool {
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return true
		}
	}
	return false
}

// TestTraceContextPassesThroughUntracedService checks a service with tracing
// off still hands the caller's trace context on: the back service's span
// joins the caller's trace across a relay that records no spans.
func TestTraceContextPassesThroughUntracedService(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	traced := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithRegisterer(prometheus.NewRegistry()))
	untraced := telemetry.New(telemetry.WithRegisterer(prometheus.NewRegistry()))

	reg := registry.NewMemory()
	b := broker.NewMemory()
	t.Cleanup(func() { b.Close() })
	startTelemetryService(t, "back", reg, b, traced, &Echo{instance: "b1"})
	startTelemetryService(t, "front", reg, b, untraced, nil)

	cli := client.New(client.Registry(reg), client.Telemetry(traced.For("caller")))
	t.Cleanup(func() { cli.Close() })
	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	var rsp EchoResponse
	if err := cli.Call(ctx, "front", "Relay.Do", &EchoRequest{Text: "hi"}, &rsp); err != nil {
		t.Fatal(err)
	}
	root.End()
	want := root.SpanContext().TraceID()
	var backSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			if backSpan != nil {
				t.Fatalf("two SERVER spans (%q and %q): the untraced front recorded one", backSpan.Name(), s.Name())
			}
			backSpan = s
		}
	}
	if backSpan == nil {
		t.Fatal("the back service recorded no SERVER span")
	}
	if got := backSpan.SpanContext().TraceID(); got != want {
		t.Fatalf("back's span is in trace %s, want the caller's %s: the untraced front dropped the trace context", got, want)
	}
}
