package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// benchRequest is the small JSON body both benchmarks send (~60 bytes).
var benchRequest = EchoRequest{Text: "the quick brown fox jumps over the lazy dog"}

// BenchmarkRawHTTP is the reference: a bare net/http JSON echo handler called by a
// tuned net/http client, no framework in between.
func BenchmarkRawHTTP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req EchoRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(&EchoResponse{Text: req.Text})
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/Echo.Say"

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, _ := json.Marshal(&benchRequest)
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			var rsp EchoResponse
			err = json.NewDecoder(resp.Body).Decode(&rsp)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || rsp.Text != benchRequest.Text {
				b.Errorf("bad answer %+v %v", rsp, err)
				return
			}
		}
	})
}

// BenchmarkRPC is the same echo through the SDK: client → registry cache →
// selector → built-in http transport → server → reflection-dispatched handler.
func BenchmarkRPC(b *testing.B) { benchRPC(b, nil) }

// BenchmarkRPCTelemetry is BenchmarkRPC with tracing and metrics on: every
// call sampled, a CLIENT and a SERVER span exported in batches to an exporter
// that drops them, both request histograms observed. Its ratio to
// BenchmarkRPC is the cost of telemetry.
func BenchmarkRPCTelemetry(b *testing.B) {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(telemetry.NewBatcher(tracetest.NewNoopExporter(), telemetry.BatchConfig{})),
	)
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	benchRPC(b, telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithRegisterer(prometheus.NewRegistry())))
}

// BenchmarkRPCMetrics is BenchmarkRPC with metrics on and tracing off (trace
// context still passes through).
func BenchmarkRPCMetrics(b *testing.B) {
	benchRPC(b, telemetry.New(telemetry.WithRegisterer(prometheus.NewRegistry())))
}

// BenchmarkRPCTelemetrySampled is BenchmarkRPCTelemetry with the sampler most
// deployments run, parent-based with 10% of new traces recorded.
func BenchmarkRPCTelemetrySampled(b *testing.B) {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
		sdktrace.WithSpanProcessor(telemetry.NewBatcher(tracetest.NewNoopExporter(), telemetry.BatchConfig{})),
	)
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	benchRPC(b, telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithRegisterer(prometheus.NewRegistry())))
}

func benchRPC(b *testing.B, tel *telemetry.Telemetry) {
	reg := registry.NewMemory()
	svc := service.New("echo", service.Registry(reg), service.HandleSignals(false), service.Telemetry(tel))
	if err := svc.Handle(new(BenchEcho)); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()

	tr := transport.NewHTTP()
	b.Cleanup(func() { tr.Close() })
	cli := client.New(client.Registry(reg), client.Transport(tr), client.Timeout(10*time.Second), client.Telemetry(tel.For("caller")))
	b.Cleanup(func() { cli.Close() })

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var rsp EchoResponse
			if err := cli.Call(context.Background(), "echo", "BenchEcho.Say", &benchRequest, &rsp); err != nil || rsp.Text != benchRequest.Text {
				b.Errorf("bad answer %+v %v", rsp, err)
				return
			}
		}
	})
}

// BenchEcho does what the raw handler does: decode, answer with the text.
type BenchEcho struct{}

func (BenchEcho) Say(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	return &EchoResponse{Text: req.Text}, nil
}
