package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/microhost/micro/sdk/telemetry"
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
	m := &metrics{
		server: telemetry.NewServerDuration(),
		client: telemetry.NewClientDuration(),
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
	// Registered idempotently: a gateway rebuilt on the same registry (a
	// reloaded host) keeps counting in the same collectors.
	var err error
	for _, c := range []**prometheus.HistogramVec{&m.server, &m.client} {
		if *c, err = telemetry.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.breaker, err = telemetry.Register(reg, m.breaker); err != nil {
		return nil, err
	}
	for _, c := range []**prometheus.CounterVec{&m.rejected, &m.retries, &m.partFails} {
		if *c, err = telemetry.Register(reg, *c); err != nil {
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
