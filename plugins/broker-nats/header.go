package main

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/microhost/micro/sdk/metadata"
)

// toNATSHeader turns a message header into NATS headers, keys as given, adding
// trace context from ctx's outgoing metadata when h has no Traceparent.
func toNATSHeader(ctx context.Context, h map[string]string) nats.Header {
	trace := metadata.MissingTraceContext(ctx, h)
	if len(h) == 0 && len(trace) == 0 {
		return nil
	}
	nh := make(nats.Header, len(h)+len(trace))
	for k, v := range h {
		nh[k] = []string{v}
	}
	for k, v := range trace {
		nh[k] = []string{v}
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
