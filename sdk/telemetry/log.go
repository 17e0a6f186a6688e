package telemetry

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"
)

// LoggerFrom returns l with trace_id and span_id of ctx's active span, so log
// lines written while serving a traced request can be found from the trace; l
// itself when ctx has no valid span.
func LoggerFrom(ctx context.Context, l hclog.Logger) hclog.Logger {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return l
	}
	return l.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
}
