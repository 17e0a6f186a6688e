package metadata_test

import (
	"context"
	"testing"

	"github.com/microhost/micro/sdk/metadata"
)

func TestOutgoingCanonicalAndAppend(t *testing.T) {
	ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{"micro-tenant": "a"})
	ctx = metadata.AppendOutgoing(ctx, "x-other", "b")
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok || md["Micro-Tenant"] != "a" || md["X-Other"] != "b" {
		t.Fatalf("outgoing = %v", md)
	}
	if v, _ := md.Get("MICRO-TENANT"); v != "a" {
		t.Errorf("Get is not case-insensitive: %q", v)
	}
}

func TestForwardIncomingDropsPerHopNames(t *testing.T) {
	in := metadata.MD{
		metadata.Service: "a", metadata.Endpoint: "A.B", metadata.ContentType: "application/json",
		metadata.RequestID: "r1", metadata.TraceParent: "00-abc-def-01", metadata.Auth: "Bearer t",
		metadata.RetryAfter: "5",
	}
	ctx := metadata.ForwardIncoming(metadata.NewIncomingContext(context.Background(), in))
	out, _ := metadata.FromOutgoingContext(ctx)
	for _, k := range []string{metadata.Service, metadata.Endpoint, metadata.ContentType, metadata.RetryAfter} {
		if _, ok := out[k]; ok {
			t.Errorf("%s was forwarded", k)
		}
	}
	for _, k := range []string{metadata.RequestID, metadata.TraceParent, metadata.Auth} {
		if out[k] != in[k] {
			t.Errorf("%s not forwarded: %v", k, out)
		}
	}
}

func TestServerContextCollectsResponse(t *testing.T) {
	ctx, tr := metadata.NewServerContext(context.Background(), metadata.MD{"Micro-A": "1"})
	if !metadata.SetResponse(ctx, "micro-served-by", "x") || tr.MD()["Micro-Served-By"] != "x" {
		t.Fatalf("trailer = %v", tr.MD())
	}
	if md, ok := metadata.FromIncomingContext(ctx); !ok || md["Micro-A"] != "1" {
		t.Fatalf("incoming = %v", md)
	}
	if metadata.SetResponse(context.Background(), "k", "v") {
		t.Error("SetResponse outside a server call should report false")
	}
	for name, want := range map[string]bool{"Micro-Anything": true, "Traceparent": true, "Authorization": true, "Retry-After": true, "Cookie": false, "User-Agent": false} {
		if metadata.Propagated(name) != want {
			t.Errorf("Propagated(%s) != %v", name, want)
		}
	}
}
