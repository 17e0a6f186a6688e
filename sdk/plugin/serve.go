package plugin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// Info describes a plugin; Describe answers with it.
type Info struct {
	Name         string   // short name, e.g. "consul"
	Kind         string   // KindRegistry, KindBroker, KindTransport or KindCodec
	Version      string   // the plugin's semver, e.g. "1.2.0"
	Capabilities []string // optional features, e.g. "watch", "queue"
	// ConfigSchema is the JSON Schema of the plugin's config block; the host
	// validates config against it before Configure. Empty accepts any object.
	ConfigSchema string
}

// Configurer is implemented by plugins that take configuration; config is the
// plugin's config block as JSON, already validated against ConfigSchema.
type Configurer interface {
	Configure(ctx context.Context, config json.RawMessage) error
}

// HealthChecker is implemented by plugins that can tell whether they work (e.g.
// their backend answers); the host pings it.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Drainer is implemented by plugins with in-flight work to finish before exit.
type Drainer interface {
	Drain(ctx context.Context) error
}

// ServeOption tunes Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	logger     hclog.Logger
	protocols  []int
	collectors []prometheus.Collector
	noDataPath bool
}

// WithoutDataPath serves a transport plugin's unary calls and requests over the
// gRPC channel only, as plugins built before the data path do; the host falls
// back to that by itself. For tests and for debugging the wire.
func WithoutDataPath() ServeOption { return func(o *serveOptions) { o.noDataPath = true } }

// WithMetrics adds the plugin's own Prometheus collectors to the registry the
// host gathers through the protocol's Metrics call; the host exposes them
// labelled plugin="<kind>-<name>", beside the SDK's call metrics and the Go
// runtime's.
func WithMetrics(cs ...prometheus.Collector) ServeOption {
	return func(o *serveOptions) { o.collectors = append(o.collectors, cs...) }
}

// WithLogger sets the logger handed to go-plugin (default: JSON on stderr).
func WithLogger(l hclog.Logger) ServeOption { return func(o *serveOptions) { o.logger = l } }

// WithProtocolVersions declares which protocol versions the plugin speaks
// (default: ProtocolVersion). Only for plugins built against several versions.
func WithProtocolVersions(v ...int) ServeOption {
	return func(o *serveOptions) { o.protocols = v }
}

// Logger returns the logger a plugin should write to: hclog JSON on stderr,
// which the host collects and tags with the plugin's name and version.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
}

// Serve runs impl as a plugin and exits the process when the host stops it or
// goes away. impl must implement the contract of info.Kind (registry.Registry,
// broker.Broker, transport.Transport or codec.Codec), and may implement
// Configurer, HealthChecker and Drainer.
func Serve(info Info, impl any, opts ...ServeOption) {
	o := serveOptions{protocols: []int{ProtocolVersion}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = Logger(info.Name)
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "micro-%s-%s is a Microhost plugin: install it with `micro plugin install` and let the host start it.\n", info.Kind, info.Name)
		os.Exit(1)
	}
	pt, err := newPluginTelemetry(info, o.collectors)
	if err != nil {
		o.logger.Error("cannot serve plugin: its metrics", "error", err)
		os.Exit(1)
	}
	// One TLS configuration for the gRPC channel and the data path: both accept
	// only the host's client certificate.
	serverTLS, tlsErr := serverTLSFromEnv(takeEnv(EnvTLS))
	var dataTLS *tls.Config
	if tlsErr == nil && !o.noDataPath {
		dataTLS = serverTLS.Clone()
	}
	gp, err := newGRPCPlugin(info, impl, pt, dataTLS)
	if err != nil {
		o.logger.Error("cannot serve plugin", "error", err)
		os.Exit(1)
	}
	go exitWhenOrphaned(o.logger)

	versioned := map[int]goplugin.PluginSet{}
	for _, v := range o.protocols {
		versioned[v] = goplugin.PluginSet{info.Kind: gp}
	}
	if handshakeOut != nil {
		os.Stdout = handshakeOut
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versioned,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, pt.serverOptions()...)...)
		},
		TLSProvider: func() (*tls.Config, error) { return serverTLS, tlsErr },
		Logger:      o.logger,
	})
	os.Exit(0)
}

// takeEnv reads and removes an environment variable, so secrets do not linger
// for child processes.
func takeEnv(key string) string {
	v := os.Getenv(key)
	os.Unsetenv(key)
	return v
}

// exitWhenOrphaned ends the plugin when the host process is gone, so a host
// killed with SIGKILL leaves no plugin behind.
func exitWhenOrphaned(log hclog.Logger) {
	parent := os.Getppid()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			log.Warn("host process is gone; exiting", "host_pid", parent)
			os.Exit(2)
		}
	}
}

// grpcPlugin is the go-plugin glue: it registers the Plugin service and the
// kind's service on the plugin side, and hands the host the connection.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	info     Info
	impl     any
	tel      *pluginTelemetry
	register func(*grpc.Server)
}

// newGRPCPlugin checks impl against info.Kind. With pt, what the plugin serves
// is traced and measured: a broker's publishes and deliveries continue the
// host's trace in the plugin. With dataTLS, a transport offers its data path.
func newGRPCPlugin(info Info, impl any, pt *pluginTelemetry, dataTLS *tls.Config) (*grpcPlugin, error) {
	g := &grpcPlugin{info: info, impl: impl, tel: pt}
	switch info.Kind {
	case KindRegistry:
		r, ok := impl.(registry.Registry)
		if !ok {
			return nil, fmt.Errorf("plugin %s is of kind registry but %T does not implement registry.Registry", info.Name, impl)
		}
		g.register = func(s *grpc.Server) { pluginv1.RegisterRegistryServer(s, NewRegistryServer(r)) }
	case KindBroker:
		b, ok := impl.(broker.Broker)
		if !ok {
			return nil, fmt.Errorf("plugin %s is of kind broker but %T does not implement broker.Broker", info.Name, impl)
		}
		if pt != nil {
			b = broker.Instrument(b, pt.tel)
		}
		g.register = func(s *grpc.Server) { pluginv1.RegisterBrokerServer(s, NewBrokerServer(b)) }
	case KindTransport:
		t, ok := impl.(transport.Transport)
		if !ok {
			return nil, fmt.Errorf("plugin %s is of kind transport but %T does not implement transport.Transport", info.Name, impl)
		}
		g.register = func(s *grpc.Server) {
			pluginv1.RegisterTransportServer(s, NewTransportServer(t, WithDataPath(dataTLS)))
		}
	case KindCodec:
		c, ok := impl.(codec.Codec)
		if !ok {
			return nil, fmt.Errorf("plugin %s is of kind codec but %T does not implement codec.Codec", info.Name, impl)
		}
		g.register = func(s *grpc.Server) { pluginv1.RegisterCodecServer(s, NewCodecServer(c)) }
	default:
		return nil, fmt.Errorf("plugin %s has unknown kind %q; use one of %v", info.Name, info.Kind, Kinds)
	}
	return g, nil
}

// GRPCServer registers the plugin's services.
func (g *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, &pluginServer{info: g.info, impl: g.impl, tel: g.tel})
	g.register(s)
	return nil
}

// GRPCClient hands the host the raw connection; the host wraps it.
func (g *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return cc, nil
}

// pluginServer answers the common Plugin service.
type pluginServer struct {
	pluginv1.UnimplementedPluginServer
	info Info
	impl any
	tel  *pluginTelemetry // nil in tests that serve without telemetry
}

func (p *pluginServer) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	resp := &pluginv1.DescribeResponse{
		Name:             p.info.Name,
		Kind:             p.info.Kind,
		Version:          p.info.Version,
		ProtocolVersions: []uint32{ProtocolVersion},
		Capabilities:     p.info.Capabilities,
		ConfigSchema:     p.info.ConfigSchema,
	}
	if c, ok := p.impl.(codec.Codec); ok {
		resp.ContentType = c.ContentType()
		if a, ok := c.(codec.Aliaser); ok {
			resp.Aliases = a.Aliases()
		}
	}
	return resp, nil
}

func (p *pluginServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if req.ProtocolVersion != ProtocolVersion {
		return nil, ToStatus(errors.BadRequest(p.info.Name, "protocol version %d is not spoken by plugin %s, which speaks %d", req.ProtocolVersion, p.info.Name, ProtocolVersion))
	}
	if c, ok := p.impl.(Configurer); ok {
		cfg := req.ConfigJson
		if len(cfg) == 0 {
			cfg = []byte("{}")
		}
		if err := c.Configure(ctx, cfg); err != nil {
			return nil, ToStatus(errors.BadRequest(p.info.Name, "plugin %s rejected its config: %v", p.info.Name, err))
		}
	}
	return &pluginv1.ConfigureResponse{}, nil
}

func (p *pluginServer) Health(ctx context.Context, _ *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	if h, ok := p.impl.(HealthChecker); ok {
		if err := h.Health(ctx); err != nil {
			return &pluginv1.HealthResponse{Serving: false, Detail: err.Error()}, nil
		}
	}
	return &pluginv1.HealthResponse{Serving: true}, nil
}

func (p *pluginServer) Shutdown(ctx context.Context, req *pluginv1.ShutdownRequest) (*pluginv1.ShutdownResponse, error) {
	if d, ok := p.impl.(Drainer); ok {
		dctx, cancel := context.WithTimeout(ctx, time.Duration(req.DrainTimeoutMs)*time.Millisecond)
		defer cancel()
		if err := d.Drain(dctx); err != nil {
			return nil, ToStatus(err)
		}
	}
	return &pluginv1.ShutdownResponse{}, nil
}

// Metrics answers with the plugin's own metric families.
func (p *pluginServer) Metrics(ctx context.Context, _ *pluginv1.MetricsRequest) (*pluginv1.MetricsResponse, error) {
	if p.tel == nil {
		return &pluginv1.MetricsResponse{}, nil
	}
	b, err := p.tel.metrics()
	if err != nil {
		return nil, ToStatus(errors.Internal(p.info.Name, "gathering the metrics of plugin %s: %v", p.info.Name, err))
	}
	return &pluginv1.MetricsResponse{Families: b}, nil
}

// CollectSpans hands over the spans finished since the last call.
func (p *pluginServer) CollectSpans(ctx context.Context, _ *pluginv1.CollectSpansRequest) (*pluginv1.CollectSpansResponse, error) {
	if p.tel == nil {
		return &pluginv1.CollectSpansResponse{}, nil
	}
	resp, err := p.tel.collect()
	if err != nil {
		return nil, ToStatus(errors.Internal(p.info.Name, "encoding the spans of plugin %s: %v", p.info.Name, err))
	}
	return resp, nil
}
