package host_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/microhost/micro/host"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/internal/syncbuf"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/service"
)

type TracedRequest struct {
	Name string `json:"name"`
}

type TracedResponse struct {
	Text string `json:"text"`
}

// TracedFront asks Back for the text of an order, then publishes it.
type TracedFront struct{ svc *service.Service }

func (f *TracedFront) Order(ctx context.Context, req *TracedRequest) (*TracedResponse, error) {
	var rsp TracedResponse
	if err := f.svc.Client().Call(ctx, "back", "TracedBack.Echo", req, &rsp); err != nil {
		return nil, err
	}
	if err := f.svc.Broker().Publish(ctx, "orders", &broker.Message{Body: []byte(rsp.Text)}); err != nil {
		return nil, err
	}
	return &rsp, nil
}

type TracedBack struct{}

func (TracedBack) Echo(ctx context.Context, req *TracedRequest) (*TracedResponse, error) {
	return &TracedResponse{Text: "order " + req.Name}, nil
}

// brokerPluginDir installs the test memory broker plugin as "broker-mem" in
// a micro.lock.hcl of a new directory, which it returns.
func brokerPluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "micro-broker-mem")
	if out, err := exec.Command("go", "build", "-o", bin, "./plugins/testdata/broker-memory").CombinedOutput(); err != nil {
		t.Fatalf("building the broker plugin: %v\n%s", err, out)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	lock := &plugins.Lock{}
	lock.Put(&plugins.LockedPlugin{ID: "broker-mem", Version: "0.0.1", SHA256: sum, Path: bin})
	if err := lock.Write(filepath.Join(dir, plugins.LockFileName)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func serviceNamed(t *testing.T, h *host.Host, name string) *service.Service {
	t.Helper()
	for _, s := range h.Services() {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no service %s", name)
	return nil
}

const e2eConfig = `
service "front" {}
service "back" {}
broker "mem" {}
plugin "broker-mem" { version = "0.0.1" }
gateway {
  route "GET /orders/{name}" {
    service  = "front"
    endpoint = "TracedFront.Order"
  }
}
telemetry {
  metrics { listen = "127.0.0.1:0" }
  tracing { service_name = "shop" }
}
`

// TestTelemetryEndToEnd sends one request through the gateway to service
// front, which calls back and publishes through a broker plugin to a
// subscriber of back: one trace with every hop in order, a span recorded
// inside the plugin process, request logs carrying the trace id, and
// /metrics with every part of the system, the plugin's own metrics labelled
// by plugin.
func TestTelemetryEndToEnd(t *testing.T) {
	dir := brokerPluginDir(t)
	cfgPath := filepath.Join(dir, "micro.hcl")
	if err := os.WriteFile(cfgPath, []byte(e2eConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	var logs syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug, JSONFormat: true})
	front := &TracedFront{}
	ready := make(chan struct{}, 1)
	h, err := host.New(context.Background(), host.WithConfigFile(cfgPath), host.WithLogger(log),
		host.WithSpanExporter(spans), host.GatewayListen("127.0.0.1:0"),
		host.WithServiceHandler("front", front), host.WithServiceHandler("back", TracedBack{}),
		host.OnReady(func(*host.Host) { ready <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	front.svc = serviceNamed(t, h, "front")
	consumed := make(chan string, 1)
	back := serviceNamed(t, h, "back")
	if _, err := back.Broker().Subscribe(context.Background(), "orders", func(ctx context.Context, d broker.Delivery) error {
		consumed <- string(d.Message().Body)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, h, ready)

	// The client's own trace context: the gateway continues it.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.Gateway().Addr()+"/orders/ada", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "order ada") {
		t.Fatalf("gateway answered %d %s", resp.StatusCode, body)
	}
	if got := <-consumed; got != "order ada" {
		t.Fatalf("consumed %q", got)
	}

	// The consumer's span ends just after its handler returned.
	// Each span and its parent's index in the list (-1: the client's span).
	want := []struct {
		kind, name, service string
		parent              int
	}{
		{"server", "GET /orders/{name}", "shop", -1},
		{"client", "POST TracedFront.Order", "shop", 0},
		{"server", "POST TracedFront.Order", "shop", 1},
		{"client", "POST TracedBack.Echo", "shop", 2},
		{"server", "POST TracedBack.Echo", "shop", 3},
		{"producer", "publish orders", "shop", 2},
		{"producer", "publish orders", "micro-broker-memory", 5}, // inside the plugin
		{"consumer", "process orders", "shop", 5},
	}
	var got tracetest.SpanStubs
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := h.FlushTelemetry(context.Background()); err != nil {
			t.Fatal(err)
		}
		got = spans.GetSpans()
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	clientSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	found := make([]*tracetest.SpanStub, len(want))
	for i, w := range want {
		parent := clientSpan
		if w.parent >= 0 {
			parent = found[w.parent].SpanContext.SpanID()
		}
		for j := range got {
			s := &got[j]
			if s.SpanKind.String() == w.kind && s.Name == w.name && resourceService(s) == w.service && s.Parent.SpanID() == parent {
				found[i] = s
			}
		}
		if found[i] == nil {
			t.Fatalf("no %s span %q of %s under span %d; spans:\n%s", w.kind, w.name, w.service, w.parent, describe(got))
		}
		if id := found[i].SpanContext.TraceID().String(); id != clientTrace {
			t.Errorf("%s %q is in trace %s, not the client's", w.kind, w.name, id)
		}
	}
	if s := found[0]; attr(s, "http.route") != "/orders/{name}" || attr(s, "http.response.status_code") != "200" {
		t.Errorf("gateway span attributes: %v", s.Attributes)
	}
	if s := found[4]; attr(s, "micro.service") != "back" || attr(s, "http.route") != "TracedBack.Echo" {
		t.Errorf("back span attributes: %v", s.Attributes)
	}
	if s := found[7]; attr(s, "messaging.destination.name") != "orders" {
		t.Errorf("consumer span attributes: %v", s.Attributes)
	}

	// Request logs carry the trace and span ids.
	if l := logs.String(); !strings.Contains(l, `"trace_id":"`+clientTrace+`"`) || !strings.Contains(l, `"route":"TracedBack.Echo"`) {
		t.Errorf("no request log with the trace id:\n%s", l)
	}

	// /metrics, at the gateway and at telemetry.metrics.listen.
	for _, addr := range []string{h.Gateway().Addr(), h.MetricsAddr()} {
		families := scrape(t, "http://"+addr+"/metrics")
		for _, m := range []struct {
			name   string
			labels map[string]string
		}{
			{"http_server_request_duration_seconds", map[string]string{"service": "gateway", "http_route": "/orders/{name}", "http_request_method": "GET", "http_response_status_code": "200"}},
			{"http_server_request_duration_seconds", map[string]string{"service": "front", "http_route": "TracedFront.Order", "http_request_method": "POST", "http_response_status_code": "200"}},
			{"http_client_request_duration_seconds", map[string]string{"service": "gateway", "rpc_service": "front", "rpc_method": "TracedFront.Order", "http_response_status_code": "200"}},
			{"http_client_request_duration_seconds", map[string]string{"service": "front", "rpc_service": "back", "rpc_method": "TracedBack.Echo"}},
			{"micro_gateway_breaker_state", map[string]string{"service": "gateway", "backend": "front"}},
			{"micro_broker_published_total", map[string]string{"service": "front", "broker": "broker-mem", "result": "ok"}},
			{"micro_broker_deliveries_total", map[string]string{"service": "back", "result": "ok"}},
			{"micro_registry_cache_misses_total", map[string]string{"service": "front"}},
			{"micro_transport_pool_connections", map[string]string{"transport": "http", "state": "open"}},
			{"micro_plugin_up", map[string]string{"plugin": "broker-mem"}},
			{"micro_plugin_restarts_total", map[string]string{"plugin": "broker-mem"}},
			{"micro_plugin_calls_total", map[string]string{"plugin": "broker-mem", "method": "micro.plugin.v1.Broker/PublishStream"}},
			{"micro_plugin_call_duration_seconds", map[string]string{"plugin": "broker-mem"}},
			{"micro_build_info", nil},
			{"go_goroutines", map[string]string{"plugin": "broker-mem"}},
			{"micro_plugin_server_calls_total", map[string]string{"plugin": "broker-mem"}},
			{"broker_memory_messages_published_total", map[string]string{"plugin": "broker-mem"}},
			{"micro_broker_published_total", map[string]string{"plugin": "broker-mem", "broker": "memory"}},
		} {
			if !hasSample(families, m.name, m.labels) {
				t.Errorf("%s: no %s with %v", addr, m.name, m.labels)
			}
		}
		if f := families["micro_plugin_up"]; f == nil || f.Metric[0].GetGauge().GetValue() != 1 {
			t.Errorf("micro_plugin_up: %v", f)
		}
		// No raw path becomes a label value.
		for name, f := range families {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if strings.Contains(l.GetValue(), "/orders/ada") {
						t.Errorf("%s has the raw path in %s=%q", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
}

func resourceService(s *tracetest.SpanStub) string {
	if s.Resource == nil {
		return ""
	}
	for _, kv := range s.Resource.Attributes() {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

func attr(s *tracetest.SpanStub, key string) string {
	if s == nil {
		return ""
	}
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func describe(spans tracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString(s.SpanKind.String() + " " + s.Name + " [" + resourceService(&s) + "] " + s.SpanContext.SpanID().String() + " parent " + s.Parent.SpanID().String() + "\n")
	}
	return b.String()
}

// scrape reads a /metrics page in the text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return families
}

// hasSample reports whether family name has a sample with all of labels.
func hasSample(families map[string]*dto.MetricFamily, name string, labels map[string]string) bool {
	f := families[name]
	if f == nil {
		return false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

// TestTelemetryOTLPHTTP exports the host's spans to an OTLP/HTTP receiver,
// which decodes the protobuf payload.
func TestTelemetryOTLPHTTP(t *testing.T) {
	received := make(chan *collectortrace.ExportTraceServiceRequest, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			t.Errorf("OTLP request %s %s %q: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Api-Key") != "k1" {
			t.Errorf("headers: %v", r.Header)
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("decoding the OTLP payload: %v", err)
		}
		received <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(receiver.Close)

	src := `
service "back" { version = "2.0.0" }
telemetry {
  tracing {
    exporter        = "otlp_http"
    endpoint        = "` + receiver.URL + `/v1/traces"
    insecure        = true
    headers         = { "x-api-key" = "k1" }
    sampler         = "always_on"
    service_name    = "orders"
    service_version = "3.1.0"
    attributes      = { "deployment.environment" = "test" }
  }
}
`
	traceOneCall(t, src)
	req := <-received
	if len(req.ResourceSpans) == 0 {
		t.Fatal("no resource spans")
	}
	rs := req.ResourceSpans[0]
	res := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		res[kv.Key] = kv.GetValue().GetStringValue()
	}
	host, _ := os.Hostname()
	if res["service.name"] != "orders" || res["service.version"] != "3.1.0" || res["deployment.environment"] != "test" || res["host.name"] != host {
		t.Errorf("resource: %v", res)
	}
	var names []string
	for _, ss := range rs.ScopeSpans {
		for _, s := range ss.Spans {
			names = append(names, s.Kind.String()+" "+s.Name)
		}
	}
	if !strings.Contains(strings.Join(names, ","), "SPAN_KIND_SERVER POST TracedBack.Echo") {
		t.Errorf("spans received: %v", names)
	}
}

// traceCollector is an OTLP/gRPC trace receiver for tests.
type traceCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	received chan *collectortrace.ExportTraceServiceRequest
}

func (c *traceCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.received <- req
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTelemetryOTLPGRPC exports over OTLP/gRPC to a test receiver, the
// endpoint given as a URL the way OTEL_EXPORTER_OTLP_ENDPOINT takes it.
func TestTelemetryOTLPGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	collector := &traceCollector{received: make(chan *collectortrace.ExportTraceServiceRequest, 16)}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, collector)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	src := `
service "back" {}
telemetry {
  tracing {
    exporter = "otlp_grpc"
    endpoint = "http://` + lis.Addr().String() + `"
    insecure = true
    sampler  = "always_on"
  }
}
`
	traceOneCall(t, src)
	select {
	case req := <-collector.received:
		if len(req.ResourceSpans) == 0 {
			t.Fatal("an export without spans")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing exported over OTLP/gRPC within 20s")
	}
}

// traceOneCall runs a host on the config src with a traced service, makes one
// call to it and flushes the spans to the configured exporter.
func traceOneCall(t *testing.T, src string) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "micro.hcl")
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHost(t, host.WithConfigFile(cfgPath), host.WithLogger(hclog.NewNullLogger()), host.WithServiceHandler("back", TracedBack{}))
	var rsp TracedResponse
	if err := h.Client().Call(context.Background(), "back", "TracedBack.Echo", &TracedRequest{Name: "x"}, &rsp); err != nil {
		t.Fatal(err)
	}
	if err := h.FlushTelemetry(context.Background()); err != nil {
		t.Fatal(err)
	}
}
