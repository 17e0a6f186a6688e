package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// CacheCollectors are the micro_registry_cache_* counters of c, read from its
// Stats when scraped.
func CacheCollectors(c *registry.Cache) []prometheus.Collector {
	counter := func(name, help string, v func(registry.CacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(c.Stats())) })
	}
	return []prometheus.Collector{
		counter("micro_registry_cache_misses_total", "Lookups the registry cache could not answer from memory.",
			func(s registry.CacheStats) uint64 { return s.Misses }),
		counter("micro_registry_cache_fetches_total", "GetService calls the registry cache made to the registry.",
			func(s registry.CacheStats) uint64 { return s.Fetches }),
		counter("micro_registry_cache_watch_events_total", "Watch events the registry cache applied.",
			func(s registry.CacheStats) uint64 { return s.Events }),
		counter("micro_registry_cache_watch_failures_total", "Registry watches that could not be opened, ended or failed to resync.",
			func(s registry.CacheStats) uint64 { return s.WatchFailures }),
	}
}

// PoolStatser is a transport that reports its connection pools, such as the
// built-in http transport: each pool now, and the waits of every pool it has
// had.
type PoolStatser interface {
	Stats() []transport.PoolStats
	WaitTotals() transport.PoolWaits
}

// PoolCollector exports micro_transport_pool_* for the transport called name,
// summed over the addresses it calls so that node addresses never become
// labels.
func PoolCollector(name string, t PoolStatser) prometheus.Collector {
	l := prometheus.Labels{"transport": name}
	return &poolCollector{t: t,
		conns:       prometheus.NewDesc("micro_transport_pool_connections", "Connections of the transport's pools by state: open, idle, or calls in_use.", []string{"state"}, l),
		maxOpen:     prometheus.NewDesc("micro_transport_pool_max_open", "The configured cap of open connections, summed over addresses.", nil, l),
		unhealthy:   prometheus.NewDesc("micro_transport_pool_unhealthy_addresses", "Addresses whose last background health check failed.", nil, l),
		waits:       prometheus.NewDesc("micro_transport_pool_waits_total", "Calls that waited for a free pool slot.", nil, l),
		waitSeconds: prometheus.NewDesc("micro_transport_pool_wait_seconds_total", "Time calls spent waiting for a free pool slot.", nil, l),
		timeouts:    prometheus.NewDesc("micro_transport_pool_wait_timeouts_total", "Calls that gave up waiting for a free pool slot.", nil, l),
	}
}

type poolCollector struct {
	t                            PoolStatser
	conns, maxOpen, unhealthy    *prometheus.Desc
	waits, waitSeconds, timeouts *prometheus.Desc
}

// Describe sends the descriptors.
func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.conns, p.maxOpen, p.unhealthy, p.waits, p.waitSeconds, p.timeouts} {
		ch <- d
	}
}

// Collect sums the pools' stats. The wait counters come from the transport's
// totals, which keep the counts of pools it has forgotten: summed over the
// pools there are now, a counter would go down.
func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	var open, idle, inUse, maxOpen, unhealthy int
	for _, s := range p.t.Stats() {
		open += s.Open
		idle += s.Idle
		inUse += s.InUse
		maxOpen += s.MaxOpen
		if !s.Healthy {
			unhealthy++
		}
	}
	w := p.t.WaitTotals()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
		if m, err := prometheus.NewConstMetric(d, t, v, lv...); err == nil {
			ch <- m
		}
	}
	send(p.conns, prometheus.GaugeValue, float64(open), "open")
	send(p.conns, prometheus.GaugeValue, float64(idle), "idle")
	send(p.conns, prometheus.GaugeValue, float64(inUse), "in_use")
	send(p.maxOpen, prometheus.GaugeValue, float64(maxOpen))
	send(p.unhealthy, prometheus.GaugeValue, float64(unhealthy))
	send(p.waits, prometheus.CounterValue, float64(w.Waits))
	send(p.waitSeconds, prometheus.CounterValue, w.WaitTime.Seconds())
	send(p.timeouts, prometheus.CounterValue, float64(w.Timeouts))
}
