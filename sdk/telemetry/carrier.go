package telemetry

import (
	"context"

	"github.com/microhost/micro/sdk/metadata"
)

// HeaderCarrier carries trace context in Microhost metadata (a header map with
// canonical keys, such as a transport or broker message header), so the
// propagator reads and writes Traceparent, Tracestate and Baggage there.
type HeaderCarrier map[string]string

// Get returns the value of key in any letter case. The propagators' own keys
// are looked up under their canonical and lower-case names without
// canonicalising: most requests carry no tracestate or baggage, and a miss
// should cost two map lookups.
func (c HeaderCarrier) Get(key string) string {
	if k := canonical(key); k != "" {
		if v, ok := c[k]; ok {
			return v
		}
		return c[key]
	}
	v, _ := metadata.MD(c).Get(key)
	return v
}

// Set stores value under the canonical form of key.
func (c HeaderCarrier) Set(key, value string) {
	if k := canonical(key); k != "" {
		c[k] = value
		return
	}
	metadata.MD(c).Set(key, value)
}

// canonical maps the propagators' lower-case names to the metadata table's
// without allocating; "" for other names.
func canonical(key string) string {
	switch key {
	case "traceparent":
		return metadata.TraceParent
	case "tracestate":
		return metadata.TraceState
	case "baggage":
		return metadata.Baggage
	}
	return ""
}

// Keys lists the keys present.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's span context and baggage into header.
func (t *Telemetry) Inject(ctx context.Context, header map[string]string) {
	t.Propagator().Inject(ctx, HeaderCarrier(header))
}

// Extract returns ctx with the remote span context and baggage header carries.
func (t *Telemetry) Extract(ctx context.Context, header map[string]string) context.Context {
	return t.Propagator().Extract(ctx, HeaderCarrier(header))
}
