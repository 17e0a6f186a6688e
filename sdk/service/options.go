package service

import (
	"time"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Option configures a Service.
type Option func(*options)

type options struct {
	version      string
	address      string
	advertise    string
	metadata     map[string]string
	registry     registry.Registry
	transport    transport.Transport
	broker       broker.Broker
	codecs       *codec.Set
	ttl          time.Duration
	drainTimeout time.Duration
	signals      bool
	serverOpts   []server.Option
	clientOpts   []client.Option
	logf         func(msg string, args ...any)
	tel          *telemetry.Telemetry
}

func defaultOptions() options {
	return options{
		version:      "latest",
		address:      "127.0.0.1:0",
		ttl:          30 * time.Second,
		drainTimeout: 10 * time.Second,
		signals:      true,
		logf:         func(string, ...any) {},
	}
}

// Version sets the version registered for this instance (default "latest").
func Version(v string) Option { return func(o *options) { o.version = v } }

// Address sets where to listen (default "127.0.0.1:0": loopback, a free port).
func Address(addr string) Option { return func(o *options) { o.address = addr } }

// Advertise sets the address registered for callers, when it differs from the
// listening one (behind NAT, in a pod).
func Advertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// Metadata adds key=value to the registered node.
func Metadata(key, value string) Option {
	return func(o *options) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		o.metadata[key] = value
	}
}

// Registry sets where the service registers (default: a new in-process memory
// registry, visible only inside this process).
func Registry(r registry.Registry) Option { return func(o *options) { o.registry = r } }

// Transport sets the transport (default: the built-in http).
func Transport(t transport.Transport) Option { return func(o *options) { o.transport = t } }

// Broker sets the broker the service publishes and subscribes with (default: a
// new in-process memory broker).
func Broker(b broker.Broker) Option { return func(o *options) { o.broker = b } }

// Codecs sets the codecs served and used by the service's client.
func Codecs(s *codec.Set) Option { return func(o *options) { o.codecs = s } }

// TTL sets how long a registration lives without a heartbeat (default 30s); the
// service re-registers every third of it.
func TTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// DrainTimeout bounds how long in-flight calls may take to finish on shutdown
// (default 10s).
func DrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// HandleSignals turns SIGINT/SIGTERM handling on or off (default on).
func HandleSignals(on bool) Option { return func(o *options) { o.signals = on } }

// ServerOptions passes options to the service's server (middleware, codecs).
func ServerOptions(opts ...server.Option) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// ClientOptions passes options to the service's client.
func ClientOptions(opts ...client.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// Logger receives lifecycle messages as a message and key/value pairs (hclog style).
func Logger(f func(msg string, args ...any)) Option { return func(o *options) { o.logf = f } }

// Telemetry traces and measures the service: SERVER spans and request metrics
// for its handlers, CLIENT spans and metrics for its calls, PRODUCER and
// CONSUMER spans for its broker, and its registry cache's counters. Metrics
// carry the label service=<name>. Nil (the default) records nothing.
func Telemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }
