package main

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/microhost/micro/sdk/metadata"
)

// traceHeaders are the W3C trace context names copied from a publisher's
// outgoing metadata when its message carries no Traceparent of its own.
var traceHeaders = [...]string{metadata.TraceParent, metadata.TraceState, metadata.Baggage}

// toNATSHeader turns a message header into NATS headers, keys as given, adding
// trace context from ctx's outgoing metadata when h has no Traceparent.
func toNATSHeader(ctx context.Context, h map[string]string) nats.Header {
	var trace metadata.MD
	if out, ok := metadata.FromOutgoingContext(ctx); ok && out[metadata.TraceParent] != "" && !hasKeyFold(h, metadata.TraceParent) {
		trace = out
	}
	if len(h) == 0 && trace == nil {
		return nil
	}
	nh := make(nats.Header, len(h)+len(traceHeaders))
	for k, v := range h {
		nh[k] = []string{v}
	}
	for _, k := range traceHeaders {
		if v, ok := trace[k]; ok && !hasKeyFold(h, k) {
			nh[k] = []string{v}
		}
	}
	return nh
}

// fromNATSHeader turns NATS headers into a message header (first value of each
// key) and the handler's incoming metadata (canonical keys). JetStream's own
// Nats-* headers stay in the header but not in the metadata.
func fromNATSHeader(nh nats.Header) (map[string]string, metadata.MD) {
	if len(nh) == 0 {
		return nil, metadata.MD{}
	}
	h := make(map[string]string, len(nh))
	md := make(metadata.MD, len(nh))
	for k, vs := range nh {
		if len(vs) == 0 {
			continue
		}
		h[k] = vs[0]
		if !strings.HasPrefix(k, "Nats-") {
			md[metadata.Canonical(k)] = vs[0]
		}
	}
	return h, md
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
