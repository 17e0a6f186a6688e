package telemetry_test

import (
	"testing"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

func TestHeaderCarrierGet(t *testing.T) {
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tests := []struct {
		name   string
		header map[string]string
		key    string
		want   string
	}{
		{"canonical traceparent", map[string]string{metadata.TraceParent: tp}, "traceparent", tp},
		{"lower-case traceparent", map[string]string{"traceparent": tp}, "traceparent", tp},
		{"canonical wins over lower case", map[string]string{metadata.TraceParent: tp, "traceparent": "other"}, "traceparent", tp},
		{"tracestate", map[string]string{metadata.TraceState: "k=v"}, "tracestate", "k=v"},
		{"baggage", map[string]string{"baggage": "user=1"}, "baggage", "user=1"},
		{"absent", map[string]string{metadata.TraceParent: tp}, "tracestate", ""},
		{"other key in another case", map[string]string{"X-Vendor-Id": "7"}, "x-vendor-id", "7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := telemetry.HeaderCarrier(tc.header).Get(tc.key); got != tc.want {
				t.Fatalf("Get(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestHeaderCarrierSetCanonicalises(t *testing.T) {
	h := map[string]string{}
	c := telemetry.HeaderCarrier(h)
	c.Set("traceparent", "tp")
	c.Set("x-vendor-id", "7")
	if h[metadata.TraceParent] != "tp" || h["X-Vendor-Id"] != "7" || len(h) != 2 {
		t.Fatalf("header = %v, want canonical keys", h)
	}
}

// A request without tracestate or baggage is the common case: looking them up
// must not allocate.
func TestHeaderCarrierMissDoesNotAllocate(t *testing.T) {
	c := telemetry.HeaderCarrier{metadata.TraceParent: "tp", metadata.Endpoint: "Echo.Say"}
	if n := testing.AllocsPerRun(100, func() {
		_ = c.Get("tracestate")
		_ = c.Get("baggage")
	}); n != 0 {
		t.Fatalf("a miss allocates %.0f times, want 0", n)
	}
}
