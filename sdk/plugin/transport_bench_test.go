package plugin_test

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// benchMsg is a small request-sized struct.
type benchMsg struct {
	ID    int64    `json:"id"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Tags  []string `json:"tags"`
	Score float64  `json:"score"`
	OK    bool     `json:"ok"`
}

func benchCodecRoundTrip(b *testing.B, c codec.Codec) {
	in := benchMsg{ID: 12345, Name: "Ada Lovelace", Email: "ada@example.com", Tags: []string{"math", "engines"}, Score: 99.5, OK: true}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var out benchMsg
		for pb.Next() {
			data, err := c.Marshal(in)
			if err != nil {
				b.Error(err)
				return
			}
			if err := c.Unmarshal(data, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCodecPlugin is Marshal+Unmarshal through NewCodecClient over a
// loopback gRPC server serving NewCodecServer(codec.Msgpack()); compare with
// BenchmarkCodecBuiltin for the cost of the boundary.
func BenchmarkCodecPlugin(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	pluginv1.RegisterCodecServer(srv, plugin.NewCodecServer(codec.Msgpack()))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	b.Cleanup(func() {
		srv.Stop()
		<-served
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	c := plugin.NewCodecClient(&pluginv1.DescribeResponse{Name: "msgpack", ContentType: "application/msgpack"}, plugin.StaticConn(cc))
	benchCodecRoundTrip(b, c)
}

// BenchmarkCodecBuiltin is the reference: the built-in msgpack codec in process.
func BenchmarkCodecBuiltin(b *testing.B) {
	benchCodecRoundTrip(b, codec.Msgpack())
}
