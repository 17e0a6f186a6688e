package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
)

// benchPayload is a small event, the size most services publish.
var benchPayload = []byte(`{"order_id":"o-123456","customer":"c-42","total_cents":1999,"currency":"EUR"}`)

// BenchmarkPublish measures publish throughput to a live subscriber: each
// sub-benchmark publishes b.N messages from parallel publishers and stops when a
// plain nats.go subscriber has received them all, so every figure counts
// messages that crossed the server. "raw" is nats.go alone (Publish returns
// once the message is in the connection's buffer), "raw-flushed" nats.go waiting
// for the server after each publish, "in-process" the broker without the plugin
// boundary, "plugin" the broker-nats plugin process the host calls over gRPC
// (Publish returns once the plugin's connection has the message, or, with
// JetStream, once the stream stored it). Compare plugin to raw in the same run.
func BenchmarkPublish(b *testing.B) {
	s := startServer(b, b.TempDir(), server.RANDOM_PORT)
	core := map[string]any{"url": s.ClientURL()}
	js := map[string]any{"url": s.ClientURL(), "jetstream": map[string]any{"enabled": true, "subjects": []string{"benchjs.>"}}}
	inProcessCore := openBroker(b, s.ClientURL(), nil, nil)
	inProcessJS := openBroker(b, s.ClientURL(), map[string]any{"jetstream": js["jetstream"]}, nil)
	pluginCoreInst, pluginJSInst := startPlugin(b, core), startPlugin(b, js)
	pluginCore, pluginJS := pluginCoreInst.Broker(), pluginJSInst.Broker()

	rawConn := connect(b, s.ClientURL())
	rawJS, err := jetstream.New(rawConn)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("core/raw", func(b *testing.B) {
		measure(b, s.ClientURL(), "bench.raw", func(ctx context.Context, subject string) error {
			return rawConn.Publish(subject, benchPayload)
		}, rawConn.Flush)
	})
	b.Run("core/raw-flushed", func(b *testing.B) {
		measure(b, s.ClientURL(), "bench.rawflushed", func(ctx context.Context, subject string) error {
			if err := rawConn.Publish(subject, benchPayload); err != nil {
				return err
			}
			return rawConn.FlushTimeout(10 * time.Second)
		}, nil)
	})
	b.Run("core/in-process", func(b *testing.B) {
		measure(b, s.ClientURL(), "bench.inproc", brokerPublish(inProcessCore), nil)
	})
	b.Run("core/plugin", func(b *testing.B) {
		defer reportCPU(b, pluginCoreInst.Pid())()
		measure(b, s.ClientURL(), "bench.plugin", brokerPublish(pluginCore), nil)
	})
	b.Run("jetstream/raw", func(b *testing.B) {
		measure(b, s.ClientURL(), "benchjs.raw", func(ctx context.Context, subject string) error {
			_, err := rawJS.Publish(ctx, subject, benchPayload)
			return err
		}, nil)
	})
	b.Run("jetstream/in-process", func(b *testing.B) {
		measure(b, s.ClientURL(), "benchjs.inproc", brokerPublish(inProcessJS), nil)
	})
	b.Run("jetstream/plugin", func(b *testing.B) {
		defer reportCPU(b, pluginJSInst.Pid())()
		measure(b, s.ClientURL(), "benchjs.plugin", brokerPublish(pluginJS), nil)
	})
}

// brokerPublish adapts a broker to measure's publish function.
func brokerPublish(br broker.Broker) func(context.Context, string) error {
	return func(ctx context.Context, subject string) error {
		return br.Publish(ctx, subject, &broker.Message{Body: benchPayload})
	}
}

// measure publishes b.N messages to subject from parallel publishers, calls
// flush (when not nil) and waits until a plain subscriber received them all.
func measure(b *testing.B, url, subject string, publish func(context.Context, string) error, flush func() error) {
	sub := connect(b, url)
	var got atomic.Int64
	all := make(chan struct{})
	want := int64(b.N)
	s, err := sub.Subscribe(subject, func(*nats.Msg) {
		if got.Add(1) == want {
			close(all)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Unsubscribe() })

	ctx := context.Background()
	b.SetParallelism(256)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := publish(ctx, subject); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if flush != nil {
		if err := flush(); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("the subscriber received %d of %d messages within a minute", got.Load(), want)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// connect opens a plain nats.go connection closed when tb ends.
func connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("bench-%s", tb.Name())))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// reportCPU reports, when the returned function runs, the CPU time the process
// pid spent per operation since reportCPU was called (Linux only; nothing
// elsewhere): where the plugin's share of the work goes.
func reportCPU(b *testing.B, pid int) func() {
	start, ok := processCPU(pid)
	return func() {
		end, ok2 := processCPU(pid)
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "plugin-cpu-ns/op")
		}
	}
}

// processCPU is the user+system CPU time of process pid, from /proc.
func processCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, true
}
