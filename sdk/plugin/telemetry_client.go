package plugin

import (
	"bytes"
	"context"
	stderrors "errors"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/telemetry"
)

// Metrics asks the plugin behind cc for its own metric families. A plugin
// built before the call existed has none.
func Metrics(ctx context.Context, cc grpc.ClientConnInterface) ([]*dto.MetricFamily, error) {
	resp, err := pluginv1.NewPluginClient(cc).Metrics(ctx, &pluginv1.MetricsRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := expfmt.NewDecoder(bytes.NewReader(resp.Families), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if stderrors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, mf)
	}
}

// CollectSpans takes the spans the plugin behind cc finished since the last
// call, and how many it had to drop meanwhile. A plugin built before the call
// existed has none.
func CollectSpans(ctx context.Context, cc grpc.ClientConnInterface) ([]sdktrace.ReadOnlySpan, uint64, error) {
	resp, err := pluginv1.NewPluginClient(cc).CollectSpans(ctx, &pluginv1.CollectSpansRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	spans, err := decodeSpans(resp.Traces)
	return spans, resp.Dropped, err
}

// CallObserver is told about every call the host makes to a plugin: the
// protocol method ("micro.plugin.v1.Broker/Publish"), its outcome and, for
// unary calls, how long it took (0 for streams).
type CallObserver func(method string, err error, d time.Duration)

// DialOptions make the host's connection to a plugin carry ctx's W3C trace
// context and baggage in the gRPC metadata of every call, so the plugin
// continues the host's trace, and report each call to observe (may be nil).
// A host that does not trace sends none: it would not collect the plugin's
// spans, so they are not worth recording.
func DialOptions(tel *telemetry.Telemetry, observe CallObserver) []grpc.DialOption {
	if observe == nil {
		observe = func(string, error, time.Duration) {}
	}
	inject := func(ctx context.Context) context.Context {
		if !tel.Tracing() || !trace.SpanContextFromContext(ctx).IsValid() {
			return ctx
		}
		md, _ := grpcmd.FromOutgoingContext(ctx)
		md = md.Copy()
		tel.Propagator().Inject(ctx, grpcCarrier(md))
		return grpcmd.NewOutgoingContext(ctx, md)
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(inject(ctx), method, req, reply, cc, opts...)
		observe(trimSlash(method), err, time.Since(start))
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(inject(ctx), desc, cc, method, opts...)
		observe(trimSlash(method), err, 0)
		return s, err
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

func trimSlash(method string) string {
	if len(method) > 0 && method[0] == '/' {
		return method[1:]
	}
	return method
}
