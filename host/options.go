package host

import (
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/sdk/server"
)

// Option configures a Host.
type Option func(*options)

type options struct {
	configFile string
	config     *config.Config
	configOpts []config.Option
	handlers   []handler
	logger     hclog.Logger
	lockFile   string
	pluginDir  string
	onReady    func(*Host)
	watch      bool
	// gatewayListen overrides the gateway block's listen address.
	gatewayListen string
	// metricsRegistry is shared by the hosts a reload builds in turn.
	metricsRegistry *prometheus.Registry
	spanExporter    sdktrace.SpanExporter
}

// handler is a handler to register on an embedded service.
type handler struct {
	service  string // "" means the only embedded service
	h        any
	opts     []server.HandleOption
	optional bool // skip it when the config does not declare the service
}

// WithConfigFile reads micro.hcl from path.
func WithConfigFile(path string, opts ...config.Option) Option {
	return func(o *options) { o.configFile, o.configOpts = path, opts }
}

// WithConfig uses an already loaded config.
func WithConfig(c *config.Config) Option { return func(o *options) { o.config = c } }

// WithHandler registers h on the config's only embedded service.
func WithHandler(h any, opts ...server.HandleOption) Option {
	return func(o *options) { o.handlers = append(o.handlers, handler{h: h, opts: opts}) }
}

// WithServiceHandler registers h on the embedded service called name.
func WithServiceHandler(name string, h any, opts ...server.HandleOption) Option {
	return func(o *options) { o.handlers = append(o.handlers, handler{service: name, h: h, opts: opts}) }
}

// WithDefaultHandler registers h on the embedded service called name when the
// config declares one, and is ignored otherwise (micro run uses it for its demo
// service, which a reloaded config may drop).
func WithDefaultHandler(name string, h any, opts ...server.HandleOption) Option {
	return func(o *options) {
		o.handlers = append(o.handlers, handler{service: name, h: h, opts: opts, optional: true})
	}
}

// Watch makes the host rebuild and restart child services whose Go sources
// change.
func Watch(on bool) Option { return func(o *options) { o.watch = on } }

// WithLogger sets the host's logger (default: from the config's telemetry.log).
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.logger = l } }

// WithLockFile sets micro.lock.hcl's path (default: beside the config file).
func WithLockFile(path string) Option { return func(o *options) { o.lockFile = path } }

// WithPluginDir sets where installed plugins live (default plugins.DefaultDir()).
func WithPluginDir(dir string) Option { return func(o *options) { o.pluginDir = dir } }

// OnReady is called once every service listens and is registered.
func OnReady(f func(*Host)) Option { return func(o *options) { o.onReady = f } }

// GatewayListen makes the gateway listen on addr instead of its configured
// address ("127.0.0.1:0" picks a free port); see Host.Gateway for the address.
func GatewayListen(addr string) Option { return func(o *options) { o.gatewayListen = addr } }

// WithMetricsRegistry registers the host's metrics with reg instead of a
// registry of its own, so hosts that replace one another (a reload) keep one
// set of counters.
func WithMetricsRegistry(reg *prometheus.Registry) Option {
	return func(o *options) { o.metricsRegistry = reg }
}

// WithSpanExporter exports spans to e instead of the exporter
// telemetry.tracing configures, and turns tracing on without a tracing block
// (the other tracing settings still apply when there is one).
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.spanExporter = e }
}
