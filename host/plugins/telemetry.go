package plugins

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/telemetry"
)

// collectTimeout bounds one Metrics or CollectSpans call to a plugin, so a
// stuck plugin cannot stall a scrape or the host's span export.
const collectTimeout = 2 * time.Second

// callMetrics count and time the host's calls into its plugins.
type callMetrics struct {
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newCallMetrics(reg prometheus.Registerer) (*callMetrics, error) {
	var m callMetrics
	var err error
	if m.calls, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "micro_plugin_calls_total",
		Help: "Calls the host made to plugins, by plugin, protocol method and gRPC code (streams count when opened).",
	}, []string{"plugin", "method", "code"})); err != nil {
		return nil, err
	}
	if m.errors, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "micro_plugin_call_errors_total",
		Help: "Calls to plugins that failed, by plugin and protocol method.",
	}, []string{"plugin", "method"})); err != nil {
		return nil, err
	}
	if m.duration, err = telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "micro_plugin_call_duration_seconds",
		Help:    "Duration of unary calls to plugins, by plugin and protocol method.",
		Buckets: telemetry.DurationBuckets,
	}, []string{"plugin", "method"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// observer reports the calls of the plugin called id.
func (m *callMetrics) observer(id string) plugin.CallObserver {
	if m == nil {
		return nil
	}
	return func(method string, err error, d time.Duration) {
		m.calls.WithLabelValues(id, method, status.Code(err).String()).Inc()
		if err != nil {
			m.errors.WithLabelValues(id, method).Inc()
		}
		if d > 0 {
			m.duration.WithLabelValues(id, method).Observe(d.Seconds())
		}
	}
}

// snapshot returns the running instances.
func (m *Manager) snapshot() []*Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Instance(nil), m.instances...)
}

// Collector exports micro_plugin_up and micro_plugin_restarts_total for
// every plugin the manager runs.
func (m *Manager) Collector() prometheus.Collector { return &stateCollector{m: m} }

var (
	upDesc       = prometheus.NewDesc("micro_plugin_up", "1 while the plugin's process serves, 0 while it is down or restarting.", []string{"plugin"}, nil)
	restartsDesc = prometheus.NewDesc("micro_plugin_restarts_total", "Restarts of the plugin after crashes or failed health checks.", []string{"plugin"}, nil)
)

type stateCollector struct{ m *Manager }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- upDesc; ch <- restartsDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, inst := range c.m.snapshot() {
		up := 0.0
		if inst.Pid() != 0 {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, inst.ID())
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(inst.Restarts()), inst.ID())
	}
}

// Gather returns the plugins' own metric families, each metric labelled
// plugin="<kind>-<name>". A plugin that is down or does not answer in time
// is left out; its micro_plugin_up says why.
func (m *Manager) Gather(ctx context.Context) []*dto.MetricFamily {
	insts := m.snapshot()
	results := make([][]*dto.MetricFamily, len(insts))
	var wg sync.WaitGroup
	for i, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, err := inst.Current()
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, collectTimeout)
			defer cancel()
			fams, err := plugin.Metrics(cctx, cc)
			if err != nil {
				inst.log.Debug("cannot gather the plugin's metrics", "error", err.Error())
			}
			for _, f := range fams {
				for _, mt := range f.Metric {
					mt.Label = withPluginLabel(mt.Label, inst.ID())
				}
			}
			results[i] = fams
		}()
	}
	wg.Wait()
	var out []*dto.MetricFamily
	for _, fams := range results {
		out = append(out, fams...)
	}
	return out
}

// withPluginLabel sets plugin=id, replacing a plugin label the plugin set
// itself, and keeps the labels sorted as the exposition format expects.
func withPluginLabel(labels []*dto.LabelPair, id string) []*dto.LabelPair {
	name := "plugin"
	out := make([]*dto.LabelPair, 0, len(labels)+1)
	for _, l := range labels {
		if l.GetName() != name {
			out = append(out, l)
		}
	}
	out = append(out, &dto.LabelPair{Name: &name, Value: &id})
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// CollectSpans takes the spans every plugin finished since the last call and
// hands each to export, e.g. the host's span processor.
func (m *Manager) CollectSpans(ctx context.Context, export func(sdktrace.ReadOnlySpan)) {
	for _, inst := range m.snapshot() {
		cc, err := inst.Current()
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, collectTimeout)
		spans, dropped, err := plugin.CollectSpans(cctx, cc)
		cancel()
		if err != nil {
			inst.log.Debug("cannot collect the plugin's spans", "error", err.Error())
			continue
		}
		if dropped > 0 {
			inst.log.Warn("the plugin dropped spans the host did not collect in time", "dropped", dropped)
		}
		for _, s := range spans {
			export(s)
		}
	}
}
