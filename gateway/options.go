package gateway

import (
	"reflect"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Option configures a Gateway. Registry, Transport, Codecs, Selector, Types and
// Auth take effect at New and at every Reload; Logger and Metrics at New only.
type Option func(*options)

type options struct {
	registry  registry.Registry
	transport transport.Transport
	codecs    *codec.Set
	selector  registry.Selector
	types     map[string]endpointTypes // "service endpoint" → Go types
	auth      AuthOptions
	logf      func(msg string, args ...any)
	metrics   prometheus.Registerer
	gatherer  prometheus.Gatherer
	telemetry *telemetry.Telemetry
}

// endpointTypes are Go types given for one endpoint's docs.
type endpointTypes struct{ request, response reflect.Type }

// Registry sets where services are looked up. A *registry.Cache is used as is;
// any other registry gets a cache the gateway owns. Required.
func Registry(r registry.Registry) Option { return func(o *options) { o.registry = r } }

// Transport sets the transport backend calls go over (default: a built-in
// http transport the gateway owns).
func Transport(t transport.Transport) Option { return func(o *options) { o.transport = t } }

// Codecs sets the codecs request and response bodies may use (default json + msgpack).
func Codecs(s *codec.Set) Option { return func(o *options) { o.codecs = s } }

// Selector sets how a node is chosen among a service's nodes (default round robin).
func Selector(s registry.Selector) Option { return func(o *options) { o.selector = s } }

// Types documents service's endpoint with the Go types of its request and
// response (values or pointers), for the OpenAPI document. They take
// precedence over the JSON Schemas the service published in the registry,
// which is what documents an endpoint otherwise.
func Types(service, endpoint string, request, response any) Option {
	return func(o *options) {
		if o.types == nil {
			o.types = map[string]endpointTypes{}
		}
		o.types[service+" "+endpoint] = endpointTypes{reflect.TypeOf(request), reflect.TypeOf(response)}
	}
}

// Logger receives what has no caller to go to, such as a listener failure.
func Logger(f func(msg string, args ...any)) Option { return func(o *options) { o.logf = f } }

// Telemetry traces requests: a SERVER span "{method} {route template}" per
// request, continuing the client's W3C trace context, a CLIENT span per
// backend try whose context the backend receives, and a debug request log
// with the trace and span ids. At New only; nil (the default) traces nothing.
func Telemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.telemetry = t } }

// Metrics registers the gateway's collectors with reg and serves g at
// /metrics (default: a registry of the gateway's own plus Go and process
// collectors).
func Metrics(reg prometheus.Registerer, g prometheus.Gatherer) Option {
	return func(o *options) { o.metrics, o.gatherer = reg, g }
}
