package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// pluginSpanInterval is how often the spans plugins finished are collected
// into the host's export pipeline.
const pluginSpanInterval = time.Second

// hostTelemetry is one host's observability: the Prometheus registry every
// component registers with (plus the plugins' own metrics at scrape time), the
// tracer provider and its exporter, and the optional metrics listener.
type hostTelemetry struct {
	cfg      config.Telemetry
	log      hclog.Logger
	registry prometheus.Registerer // nil when metrics are disabled
	gatherer prometheus.Gatherer
	tp       *sdktrace.TracerProvider // nil when tracing is off
	spans    *telemetry.Batcher       // the provider's span processor
	tel      *telemetry.Telemetry     // nil when metrics and tracing are off
	manager  *plugins.Manager         // set once plugins can start

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	stop chan struct{}
	done chan struct{}
}

// newHostTelemetry builds the registry and tracer provider from cfg. reg is a
// registry shared across reloads (nil: a new one); exporter, when set,
// replaces the configured span exporter and turns tracing on.
func newHostTelemetry(ctx context.Context, cfg config.Telemetry, reg *prometheus.Registry, exporter sdktrace.SpanExporter, log hclog.Logger) (*hostTelemetry, error) {
	ht := &hostTelemetry{cfg: cfg, log: log}
	var opts []telemetry.Option
	if !cfg.Metrics.Disabled {
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		for _, c := range []prometheus.Collector{
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			telemetry.BuildInfo(buildVersion(), runtime.Version()),
		} {
			if _, err := telemetry.Register[prometheus.Collector](reg, c); err != nil {
				return nil, err
			}
		}
		ht.registry = reg
		ht.gatherer = &hostGatherer{reg: reg, ht: ht}
		opts = append(opts, telemetry.WithRegisterer(reg))
	}
	tracing := cfg.Tracing
	if tracing == nil && exporter != nil {
		tracing = &config.Tracing{ServiceName: config.DefaultServiceName, Sampler: config.DefaultTraceSampler, Ratio: 1}
	}
	if tracing != nil {
		if exporter == nil {
			var err error
			if exporter, err = newSpanExporter(ctx, tracing); err != nil {
				return nil, fmt.Errorf("%s: tracing exporter %s: %w", rangeString(tracing.Range), tracing.Exporter, err)
			}
		}
		ht.spans = telemetry.NewBatcher(exporter, telemetry.BatchConfig{OnError: func(err error) {
			log.Warn("spans are not exported", "error", err.Error())
		}})
		ht.tp = sdktrace.NewTracerProvider(
			sdktrace.WithResource(newResource(tracing)),
			sdktrace.WithSampler(newSampler(tracing)),
			sdktrace.WithSpanProcessor(ht.spans),
		)
		opts = append(opts, telemetry.WithTracerProvider(ht.tp))
	}
	if len(opts) > 0 {
		ht.tel = telemetry.New(append(opts, telemetry.WithLogger(log))...)
	}
	return ht, nil
}

// register adds collectors of this host's components, replacing those of a
// host it replaced.
func (ht *hostTelemetry) register(cs ...prometheus.Collector) {
	if ht.registry == nil {
		return
	}
	for _, c := range cs {
		if err := telemetry.Replace(ht.registry, c); err != nil {
			ht.log.Warn("a metric is not exported", "error", err.Error())
		}
	}
}

// watch registers the collectors of the shared components: the plugins'
// state and the transport's pools. (Registry caches are each service's and
// the gateway's own.)
func (ht *hostTelemetry) watch(m *plugins.Manager, tr transport.Transport) {
	ht.manager = m
	ht.register(m.Collector())
	if ps, ok := tr.(telemetry.PoolStatser); ok {
		ht.register(telemetry.PoolCollector(tr.Name(), ps))
	}
}

// start serves metrics on telemetry.metrics.listen, if set, and collects the
// plugins' spans while tracing is on.
func (ht *hostTelemetry) start(ctx context.Context) error {
	ht.mu.Lock()
	defer ht.mu.Unlock()
	if ht.cfg.Metrics.Listen != "" && ht.gatherer != nil && ht.srv == nil {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", ht.cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("%s: metrics: %w", rangeString(ht.cfg.Metrics.ListenRange), err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET "+ht.cfg.Metrics.Path, ht.handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		ht.srv, ht.ln = srv, ln
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				ht.log.Error("metrics listener stopped", "error", err.Error())
			}
		}()
		ht.log.Info("metrics ready", "address", "http://"+ln.Addr().String()+ht.cfg.Metrics.Path)
	}
	if ht.tp != nil && ht.manager != nil && ht.stop == nil {
		ht.stop, ht.done = make(chan struct{}), make(chan struct{})
		go ht.collectPluginSpans(ht.stop, ht.done)
	}
	return nil
}

// handler serves the host's metrics in the Prometheus exposition formats.
func (ht *hostTelemetry) handler() http.Handler {
	return promhttp.HandlerFor(ht.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// metricsAddr is the metrics listener's address, "" when there is none.
func (ht *hostTelemetry) metricsAddr() string {
	ht.mu.Lock()
	defer ht.mu.Unlock()
	if ht.ln == nil {
		return ""
	}
	return ht.ln.Addr().String()
}

func (ht *hostTelemetry) collectPluginSpans(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(pluginSpanInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ht.pluginSpans(context.Background())
		}
	}
}

// pluginSpans moves the spans the plugins finished into the host's pipeline.
func (ht *hostTelemetry) pluginSpans(ctx context.Context) {
	if ht.tp == nil || ht.manager == nil {
		return
	}
	ht.manager.CollectSpans(ctx, ht.spans.OnEnd)
}

// flush exports every span finished so far, the plugins' included.
func (ht *hostTelemetry) flush(ctx context.Context) error {
	if ht.tp == nil {
		return nil
	}
	ht.pluginSpans(ctx)
	return ht.tp.ForceFlush(ctx)
}

// close stops the listener and span collection, then flushes and shuts down
// the tracer provider. Plugins must still run, so their last spans count.
func (ht *hostTelemetry) close() {
	if ht == nil {
		return
	}
	ht.mu.Lock()
	srv, stop, done := ht.srv, ht.stop, ht.done
	ht.srv, ht.stop = nil, nil
	ht.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	if stop != nil {
		close(stop)
		<-done
	}
	if ht.tp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ht.pluginSpans(ctx)
		if err := ht.tp.Shutdown(ctx); err != nil {
			ht.log.Warn("spans may be lost: the exporter did not finish", "error", err.Error())
		}
	}
}

// hostGatherer gathers the host's registry and, at the same scrape, the
// plugins' own metrics labelled by plugin.
type hostGatherer struct {
	reg prometheus.Gatherer
	ht  *hostTelemetry
}

// Gather merges the families by name. A plugin family whose type disagrees
// with the host's of the same name is left out; help texts keep the first
// seen.
func (g *hostGatherer) Gather() ([]*dto.MetricFamily, error) {
	families, err := g.reg.Gather()
	m := g.ht.manager
	if m == nil {
		return families, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byName := make(map[string]*dto.MetricFamily, len(families))
	for _, f := range families {
		byName[f.GetName()] = f
	}
	for _, f := range m.Gather(ctx) {
		have, ok := byName[f.GetName()]
		switch {
		case !ok:
			byName[f.GetName()] = f
			families = append(families, f)
		case have.GetType() == f.GetType():
			have.Metric = append(have.Metric, f.Metric...)
		}
	}
	sort.Slice(families, func(i, j int) bool { return families[i].GetName() < families[j].GetName() })
	return families, err
}

// gatewayTelemetry are the gateway's options for tracing, its request log and
// the host's metrics: its collectors labelled service="gateway", and the
// host's whole registry (plugins included) at its /metrics.
func (h *Host) gatewayTelemetry() []gateway.Option {
	ht := h.tel
	opts := []gateway.Option{gateway.Telemetry(ht.tel.Logged(h.logger("gateway")))}
	if ht.gatherer != nil {
		opts = append(opts, gateway.Metrics(prometheus.WrapRegistererWith(prometheus.Labels{"service": "gateway"}, ht.registry), ht.gatherer))
	}
	return opts
}

// FlushTelemetry exports every span finished so far, those the plugins
// finished included, before it returns.
func (h *Host) FlushTelemetry(ctx context.Context) error { return h.tel.flush(ctx) }

// Metrics returns what /metrics serves: the host's registry and the plugins'
// own metrics; nil when telemetry.metrics is disabled.
func (h *Host) Metrics() prometheus.Gatherer { return h.tel.gatherer }

// MetricsAddr is the address of the telemetry.metrics.listen listener once
// Run serves it, "" otherwise.
func (h *Host) MetricsAddr() string { return h.tel.metricsAddr() }
