package metadata_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/microhost/micro/sdk/metadata"
)

func TestMissingTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	full := metadata.MD{metadata.TraceParent: tp, metadata.TraceState: "k=v", metadata.Baggage: "user=1", "X-Other": "no"}
	for _, tc := range []struct {
		name   string
		out    metadata.MD // nil: no outgoing metadata
		header map[string]string
		want   metadata.MD
	}{
		{"no outgoing metadata", nil, nil, nil},
		{"no traceparent", metadata.MD{metadata.Baggage: "user=1"}, nil, nil},
		{"all three added, nothing else", full, map[string]string{"Content-Type": "application/json"},
			metadata.MD{metadata.TraceParent: tp, metadata.TraceState: "k=v", metadata.Baggage: "user=1"}},
		{"the message's own traceparent wins, any case", full, map[string]string{"traceparent": "mine"}, nil},
		{"a field the header has is left out", full, map[string]string{"BAGGAGE": "mine"},
			metadata.MD{metadata.TraceParent: tp, metadata.TraceState: "k=v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.out != nil {
				ctx = metadata.NewOutgoingContext(ctx, tc.out)
			}
			if got := metadata.MissingTraceContext(ctx, tc.header); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MissingTraceContext = %v, want %v", got, tc.want)
			}
		})
	}
}
