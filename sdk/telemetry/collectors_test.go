package telemetry_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// forgettingPools is a transport whose one pool, with its waits, is forgotten
// after the first scrape, as the http transport forgets idle pools.
type forgettingPools struct{ scraped bool }

func (f *forgettingPools) Stats() []transport.PoolStats {
	if f.scraped {
		return nil
	}
	f.scraped = true
	return []transport.PoolStats{{Addr: "10.0.0.1:80", Open: 1, Idle: 1, MaxOpen: 4, Healthy: true,
		PoolWaits: transport.PoolWaits{Waits: 3, WaitTime: 2 * time.Second, Timeouts: 1}}}
}

func (f *forgettingPools) WaitTotals() transport.PoolWaits {
	return transport.PoolWaits{Waits: 3, WaitTime: 2 * time.Second, Timeouts: 1}
}

// TestPoolCountersDoNotGoDown scrapes the pool collector before and after the
// transport forgets its pool: the connection gauges drop to zero, the wait
// counters keep their values.
func TestPoolCountersDoNotGoDown(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.PoolCollector("http", &forgettingPools{}))
	for _, scrape := range []struct {
		name string
		open float64
	}{
		{"with the pool", 1},
		{"after the pool was forgotten", 0},
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch {
				case m.GetCounter() != nil:
					got[mf.GetName()] = m.GetCounter().GetValue()
				case mf.GetName() == "micro_transport_pool_connections" && m.GetLabel()[0].GetValue() == "open":
					got["open"] = m.GetGauge().GetValue()
				}
			}
		}
		want := map[string]float64{
			"open":                             scrape.open,
			"micro_transport_pool_waits_total": 3,
			"micro_transport_pool_wait_seconds_total":  2,
			"micro_transport_pool_wait_timeouts_total": 1,
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s: %s = %v, want %v", scrape.name, name, got[name], v)
			}
		}
	}
}
