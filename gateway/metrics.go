package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus collectors, named as OpenTelemetry's
// HTTP conventions say, and micro_* for the rest. Routes are labelled by
// template, never by raw path.
type metrics struct {
	server    *prometheus.HistogramVec // http_server_request_duration_seconds
	client    *prometheus.HistogramVec // http_client_request_duration_seconds
	breaker   *prometheus.GaugeVec     // micro_gateway_breaker_state
	rejected  *prometheus.CounterVec   // micro_gateway_breaker_rejections_total
	retries   *prometheus.CounterVec   // micro_gateway_retries_total
	partFails *prometheus.CounterVec   // micro_gateway_aggregate_part_failures_total
}

// Breaker states as the micro_gateway_breaker_state gauge reports them.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// newMetrics creates the collectors and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	m := &metrics{
		server: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP requests the gateway served, by method, route template and status.",
			Buckets: buckets,
		}, []string{"http_request_method", "http_route", "http_response_status_code"}),
		client: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_client_request_duration_seconds",
			Help:    "Duration of each try of a backend call, by service, endpoint and status.",
			Buckets: buckets,
		}, []string{"rpc_service", "rpc_method", "http_response_status_code"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "micro_gateway_breaker_state",
			Help: "Circuit breaker state per backend service: 0 closed, 1 half-open, 2 open.",
		}, []string{"backend"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_gateway_breaker_rejections_total",
			Help: "Calls refused because the backend's circuit breaker was open.",
		}, []string{"backend"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_gateway_retries_total",
			Help: "Backend calls tried again after a failure.",
		}, []string{"backend"}),
		partFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_gateway_aggregate_part_failures_total",
			Help: "Aggregation parts that failed, by route template and part.",
		}, []string{"http_route", "part"}),
	}
	for _, c := range []prometheus.Collector{m.server, m.client, m.breaker, m.rejected, m.retries, m.partFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newRegistry is the registry a Gateway exposes when given none: the gateway's
// own collectors plus the Go runtime and process ones.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
