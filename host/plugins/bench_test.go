package plugins_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
	"github.com/microhost/micro/sdk/transport"
)

type benchMsg struct {
	ID    int               `json:"id"`
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Score float64           `json:"score"`
}

var benchValue = benchMsg{ID: 42, Name: "the quick brown fox", Tags: []string{"a", "b", "c"}, Attrs: map[string]string{"k": "v"}, Score: 3.5}

func benchCodec(b *testing.B, c codec.Codec) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			data, err := c.Marshal(&benchValue)
			if err != nil {
				b.Error(err)
				return
			}
			var out benchMsg
			if err := c.Unmarshal(data, &out); err != nil || out.Name != benchValue.Name {
				b.Errorf("round trip: %v %+v", err, out)
				return
			}
		}
	})
}

// BenchmarkCodecBuiltin is the reference: the built-in msgpack codec in-process.
func BenchmarkCodecBuiltin(b *testing.B) { benchCodec(b, codec.Msgpack()) }

// BenchmarkCodecPlugin is the same codec served by a plugin process.
func BenchmarkCodecPlugin(b *testing.B) {
	m, _ := newManager(b)
	inst, err := m.Start(context.Background(), spec(b, "codec-msgpack"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	benchCodec(b, inst.Codec())
}

type Echo struct{}

type EchoRequest struct {
	Text string `json:"text"`
}

type EchoResponse struct {
	Text string `json:"text"`
}

func (Echo) Say(ctx context.Context, req *EchoRequest) (*EchoResponse, error) {
	return &EchoResponse{Text: req.Text}, nil
}

func benchRPC(b *testing.B, serverTransport, clientTransport transport.Transport) {
	reg := registry.NewMemory()
	svc := service.New("echo", service.Registry(reg), service.Transport(serverTransport), service.HandleSignals(false))
	if err := svc.Handle(Echo{}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()
	cli := client.New(client.Registry(reg), client.Transport(clientTransport), client.Timeout(10*time.Second))
	b.Cleanup(func() { cli.Close() })
	req := &EchoRequest{Text: "the quick brown fox jumps over the lazy dog"}
	// Many callers per core, as a busy service has: this measures throughput, not
	// the latency of one caller.
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var rsp EchoResponse
			if err := cli.Call(context.Background(), "echo", "Echo.Say", req, &rsp); err != nil || rsp.Text != req.Text {
				b.Errorf("call: %v %+v", err, rsp)
				return
			}
		}
	})
}

// BenchmarkRPC is the reference: the built-in http transport in-process.
func BenchmarkRPC(b *testing.B) {
	srv, cli := transport.NewHTTP(), transport.NewHTTP()
	b.Cleanup(func() { srv.Close(); cli.Close() })
	benchRPC(b, srv, cli)
}

// BenchmarkRPCPluginTransport is the same call with the http transport served by
// a plugin process on both the server and the client side.
func BenchmarkRPCPluginTransport(b *testing.B) {
	m, _ := newManager(b)
	inst, err := m.Start(context.Background(), spec(b, "transport-http"))
	if err != nil {
		b.Fatal(err)
	}
	benchRPC(b, inst.Transport(), inst.Transport())
}

// BenchmarkPluginStart measures a plugin's launch until Describe answers (with
// mutual TLS), and reports its resident memory.
func BenchmarkPluginStart(b *testing.B) {
	m, _ := newManager(b)
	s := spec(b, "codec-msgpack")
	var total time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		inst, err := m.Start(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		total += inst.StartupTime()
		rss = rssKiB(inst.Pid())
		inst.Stop()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-launch-to-describe")
	b.ReportMetric(float64(rss), "KiB-rss")
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

var _ = plugins.Spec{}
