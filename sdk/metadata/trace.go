package metadata

import (
	"context"
	"strings"
)

// traceKeys are the W3C trace context names, Traceparent first.
var traceKeys = [...]string{TraceParent, TraceState, Baggage}

// MissingTraceContext returns the W3C trace context (Traceparent, Tracestate,
// Baggage) of ctx's outgoing metadata that header does not carry in any letter
// case, or nil when ctx has no Traceparent or header has one of its own: what a
// broker adds to a message it publishes, so the consumer continues the trace.
func MissingTraceContext(ctx context.Context, header map[string]string) MD {
	out, ok := FromOutgoingContext(ctx)
	if !ok || out[TraceParent] == "" || hasKeyFold(header, TraceParent) {
		return nil
	}
	md := make(MD, len(traceKeys))
	for _, k := range traceKeys {
		if v, ok := out[k]; ok && !hasKeyFold(header, k) {
			md[k] = v
		}
	}
	return md
}

// hasKeyFold reports whether h holds key in any letter case.
func hasKeyFold(h map[string]string, key string) bool {
	if _, ok := h[key]; ok {
		return true
	}
	for k := range h {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
