package config

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of the telemetry block.
const (
	DefaultMetricsPath    = "/metrics"              // where metrics are served
	DefaultTraceExporter  = "otlp_grpc"             // a tracing block without exporter
	DefaultTraceSampler   = "parentbased_always_on" // follow the caller, sample new traces
	DefaultTraceTimeout   = 10 * time.Second        // per export
	DefaultServiceName    = "microhost"             // service.name of the host's spans
	traceExporterOTLPGRPC = "otlp_grpc"
	traceExporterOTLPHTTP = "otlp_http"
)

// The choices of the telemetry block.
var (
	traceExporters = []string{traceExporterOTLPGRPC, traceExporterOTLPHTTP, "stdout"}
	traceSamplers  = []string{
		"always_on", "always_off", "traceidratio",
		"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
	}
)

// The schemas of the telemetry block and what nests in it.
var (
	telemetrySchema = bodySchema{blocks: []blockSpec{{typ: "log"}, {typ: "metrics"}, {typ: "tracing"}}}
	logSchema       = bodySchema{attrs: []string{"level", "format", "levels"}}
	metricsSchema   = bodySchema{attrs: []string{"disabled", "listen", "path"}}
	tracingSchema   = bodySchema{attrs: []string{
		"disabled", "exporter", "endpoint", "insecure", "headers", "timeout",
		"sampler", "ratio", "service_name", "service_version", "attributes",
	}}
)

// Telemetry is the `telemetry {...}` block.
type Telemetry struct {
	// Log configures the host's logs.
	Log Log `json:"log"`
	// Metrics configures the host's Prometheus metrics (on by default).
	Metrics Metrics `json:"metrics"`
	// Tracing configures OpenTelemetry tracing; nil when there is no tracing
	// block (or it is disabled): no spans are recorded.
	Tracing *Tracing `json:"tracing,omitempty"`
	// Range is the block header, or the zero Range when defaulted.
	Range hcl.Range `json:"-"`
}

// Log is telemetry's `log {...}` block.
type Log struct {
	// Level is trace, debug, info (default), warn or error.
	Level string `json:"level"`
	// Format is auto (default: text on a terminal, JSON otherwise), text or json.
	Format string `json:"format"`
	// Levels overrides Level per component: "gateway", "plugin", or a
	// service's name.
	Levels map[string]string `json:"levels,omitempty"`
}

// LevelOf returns the log level of the component called name.
func (l Log) LevelOf(name string) string {
	if v, ok := l.Levels[name]; ok {
		return v
	}
	return l.Level
}

// Metrics is telemetry's `metrics {...}` block.
type Metrics struct {
	// Disabled turns metrics off: nothing is recorded or served.
	Disabled bool `json:"disabled,omitempty"`
	// Listen is an address of its own to serve metrics on, besides the
	// gateway's /metrics; "" for none.
	Listen string `json:"listen,omitempty"`
	// Path is where metrics are served on Listen (default /metrics).
	Path string `json:"path"`
	// ListenRange is the listen attribute, or the block when it has none.
	ListenRange hcl.Range `json:"-"`
}

// Tracing is telemetry's `tracing {...}` block.
type Tracing struct {
	// Exporter is otlp_grpc (default), otlp_http or stdout.
	Exporter string `json:"exporter"`
	// Endpoint is the collector: host:port for otlp_grpc, host:port or a URL
	// for otlp_http; "" uses the exporter's default (localhost).
	Endpoint string `json:"endpoint,omitempty"`
	// Insecure sends without TLS.
	Insecure bool `json:"insecure,omitempty"`
	// Headers are sent with every export, e.g. an API key.
	Headers map[string]string `json:"-"`
	// Timeout bounds one export (default 10s).
	Timeout time.Duration `json:"timeout"`
	// Sampler is one of the OTEL_TRACES_SAMPLER names (default
	// parentbased_always_on); Ratio is the traceidratio samplers' fraction.
	Sampler string  `json:"sampler"`
	Ratio   float64 `json:"ratio,omitempty"`
	// ServiceName and ServiceVersion are the service.name and
	// service.version resource attributes (defaults: microhost, the binary's
	// version); Attributes are more of them (host.name is always set).
	ServiceName    string            `json:"service_name"`
	ServiceVersion string            `json:"service_version,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	// Range is the block header.
	Range hcl.Range `json:"-"`
}

// decodeTelemetry decodes the telemetry block: log, metrics and tracing.
func (d *decoder) decodeTelemetry(b *hclsyntax.Block) Telemetry {
	t := Telemetry{Log: Log{Level: DefaultLogLevel, Format: DefaultLogFormat}, Metrics: Metrics{Path: DefaultMetricsPath}}
	if b == nil {
		return t
	}
	t.Range = b.DefRange()
	_, blocks := d.content(b.Body, telemetrySchema)
	all := byType(blocks)
	if lb := d.single(all["log"]); lb != nil {
		d.decodeLog(lb, &t.Log)
	}
	if mb := d.single(all["metrics"]); mb != nil {
		d.decodeMetrics(mb, &t.Metrics)
	}
	if tb := d.single(all["tracing"]); tb != nil {
		t.Tracing = d.decodeTracing(tb)
	}
	return t
}

func (d *decoder) decodeLog(b *hclsyntax.Block, l *Log) {
	attrs, _ := d.content(b.Body, logSchema)
	level := func(a *hclsyntax.Attribute, v string) bool {
		if isOneOf(v, logLevels) {
			return true
		}
		d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown log level %q", v), "expected one of: %s", quoteList(logLevels))
		return false
	}
	if a := attrs["level"]; a != nil {
		if v, ok := d.str(a); ok && level(a, v) {
			l.Level = v
		}
	}
	if a := attrs["format"]; a != nil {
		if v, ok := d.str(a); ok {
			if isOneOf(v, logFormats) {
				l.Format = v
			} else {
				d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown log format %q", v), "expected one of: %s", quoteList(logFormats))
			}
		}
	}
	if a := attrs["levels"]; a != nil {
		if m, ok := d.stringMap(a, nil); ok {
			for _, v := range m {
				if !level(a, v) {
					return
				}
			}
			l.Levels = m
		}
	}
}

func (d *decoder) decodeMetrics(b *hclsyntax.Block, m *Metrics) {
	attrs, _ := d.content(b.Body, metricsSchema)
	m.ListenRange = b.DefRange()
	if a := attrs["disabled"]; a != nil {
		m.Disabled, _ = d.boolean(a)
	}
	if a := attrs["listen"]; a != nil {
		m.ListenRange = a.SrcRange
		m.Listen, _ = d.address(a, listenAddr)
	}
	if a := attrs["path"]; a != nil {
		if v, ok := d.str(a); ok {
			if strings.HasPrefix(v, "/") && !strings.ContainsAny(v, " ?#") {
				m.Path = v
			} else {
				d.errorf(a.Expr.Range(), `Invalid value for "path"`, `expected a URL path starting with "/", such as "/metrics", got %q`, v)
			}
		}
	}
}

func (d *decoder) decodeTracing(b *hclsyntax.Block) *Tracing {
	attrs, _ := d.content(b.Body, tracingSchema)
	t := &Tracing{Exporter: DefaultTraceExporter, Sampler: DefaultTraceSampler, Timeout: DefaultTraceTimeout, ServiceName: DefaultServiceName, Ratio: 1, Range: b.DefRange()}
	if a := attrs["disabled"]; a != nil {
		if off, ok := d.boolean(a); ok && off {
			return nil
		}
	}
	oneOf := func(name string, choices []string, dst *string) {
		if a := attrs[name]; a != nil {
			if v, ok := d.str(a); ok {
				if isOneOf(v, choices) {
					*dst = v
				} else {
					d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown %s %q", strings.ReplaceAll(name, "_", " "), v), "expected one of: %s", quoteList(choices))
				}
			}
		}
	}
	oneOf("exporter", traceExporters, &t.Exporter)
	oneOf("sampler", traceSamplers, &t.Sampler)
	if a := attrs["endpoint"]; a != nil {
		if v, ok := d.str(a); ok {
			t.Endpoint = v
			if t.Exporter == "stdout" {
				d.errorf(a.Expr.Range(), `Unsupported argument "endpoint" for the stdout exporter`, `expected exporter = "otlp_grpc" or "otlp_http" to send spans to an endpoint`)
			} else if v == "" || strings.ContainsAny(v, " \t") {
				d.errorf(a.Expr.Range(), `Invalid value for "endpoint"`, `expected host:port such as "localhost:4317", or for otlp_http a URL such as "https://otel.example.com/v1/traces", got %q`, v)
			}
		}
	}
	if a := attrs["insecure"]; a != nil {
		t.Insecure, _ = d.boolean(a)
	}
	if a := attrs["headers"]; a != nil {
		t.Headers, _ = d.stringMap(a, nil)
	}
	if a := attrs["timeout"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			t.Timeout = v
		}
	}
	if a := attrs["ratio"]; a != nil {
		if v, ok := d.fraction(a); ok {
			t.Ratio = v
		}
		if !strings.HasSuffix(t.Sampler, "traceidratio") {
			d.errorf(a.Expr.Range(), `Unsupported argument "ratio" for sampler "`+t.Sampler+`"`, `expected sampler = "traceidratio" or "parentbased_traceidratio" with a ratio`)
		}
	}
	if a := attrs["service_name"]; a != nil {
		if v, ok := d.str(a); ok {
			if v == "" {
				d.errorf(a.Expr.Range(), `Invalid value for "service_name"`, `expected a non-empty name such as "shop"`)
			} else {
				t.ServiceName = v
			}
		}
	}
	if a := attrs["service_version"]; a != nil {
		t.ServiceVersion, _ = d.str(a)
	}
	if a := attrs["attributes"]; a != nil {
		t.Attributes, _ = d.stringMap(a, func(k string) string {
			if k == "" || strings.ContainsAny(k, " \t") {
				return `a resource attribute name such as "deployment.environment"`
			}
			return ""
		})
	}
	return t
}

// fraction decodes a number from 0 to 1.
func (d *decoder) fraction(a *hclsyntax.Attribute) (float64, bool) {
	const expected = "a number from 0 to 1, such as 0.25"
	v, ok := d.value(a, cty.Number, invalid(a), expected)
	if !ok {
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	if v.AsBigFloat().Cmp(big.NewFloat(0)) < 0 || f > 1 {
		d.errorf(a.Expr.Range(), invalid(a), "expected %s, got %s", expected, v.AsBigFloat().Text('g', 10))
		return 0, false
	}
	return f, true
}
