package telemetry

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The names and labels of the request duration histograms, as OpenTelemetry's
// HTTP conventions spell them for Prometheus. The gateway, every service and
// every client use these, so one registry holds them all.
const (
	ServerDurationName = "http_server_request_duration_seconds"
	ClientDurationName = "http_client_request_duration_seconds"

	LabelMethod  = "http_request_method"       // POST for RPCs, the HTTP method at the gateway
	LabelRoute   = "http_route"                // endpoint name or route template, never a raw path
	LabelStatus  = "http_response_status_code" // the status the caller saw
	LabelService = "rpc_service"               // the called service (client side)
	LabelRPC     = "rpc_method"                // the called endpoint (client side)
)

// DurationBuckets are the histogram buckets of request durations, in seconds.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewServerDuration returns http_server_request_duration_seconds by method,
// route and status.
func NewServerDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ServerDurationName,
		Help:    "Duration of requests served, by method, route template or endpoint, and status.",
		Buckets: DurationBuckets,
	}, []string{LabelMethod, LabelRoute, LabelStatus})
}

// NewClientDuration returns http_client_request_duration_seconds by called
// service, endpoint and status; each try of a call is one observation.
func NewClientDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ClientDurationName,
		Help:    "Duration of each try of an outgoing call, by service, endpoint and status.",
		Buckets: DurationBuckets,
	}, []string{LabelService, LabelRPC, LabelStatus})
}

// Register registers c with reg and returns it, or the equal collector already
// registered there, so a component built twice (a reloaded config) keeps
// counting where it left off.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("telemetry: registering metrics: %w", err)
}

// RPCMetrics are a server's and a client's request histograms.
type RPCMetrics struct {
	Server *prometheus.HistogramVec
	Client *prometheus.HistogramVec
}

// NewRPCMetrics registers the request histograms with t's registerer; nil when
// metrics are off.
func (t *Telemetry) NewRPCMetrics() (*RPCMetrics, error) {
	reg := t.Registerer()
	if reg == nil {
		return nil, nil
	}
	s, err := Register(reg, NewServerDuration())
	if err != nil {
		return nil, err
	}
	c, err := Register(reg, NewClientDuration())
	if err != nil {
		return nil, err
	}
	return &RPCMetrics{Server: s, Client: c}, nil
}

// BuildInfo returns micro_build_info, a gauge of 1 labelled with the version
// and the Go version the binary was built with.
func BuildInfo(version, goVersion string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "micro_build_info",
		Help:        "Always 1; labelled with the Microhost version and the Go version of this binary.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

// Replace registers c with reg in place of an equal collector registered
// before, for collectors that read the state of one component instance (a
// cache, a pool): a rebuilt component's collector takes over its metrics.
func Replace(reg prometheus.Registerer, c prometheus.Collector) error {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	if err != nil {
		return fmt.Errorf("telemetry: registering metrics: %w", err)
	}
	return nil
}
