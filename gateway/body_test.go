package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
)

// A body's declared length is only a claim until the bytes arrive: a client
// that announces a large body and sends a byte of it must not make the
// gateway hold a buffer of the announced size.
func TestDeclaredBodyLengthIsNotAllocatedUpFront(t *testing.T) {
	const declared = 64 << 20
	g, err := gateway.New(gateway.Config{MaxBody: declared, Routes: []*gateway.Route{
		{Pattern: "POST /say", Service: "echo", Endpoint: "Echo.Say"},
	}}, gateway.Registry(registry.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	// What the server's body reader does when the connection ends early.
	cut := io.MultiReader(strings.NewReader("{"), iotest.ErrReader(io.ErrUnexpectedEOF))
	r := httptest.NewRequest("POST", "/say", io.NopCloser(cut))
	r.ContentLength = declared
	r.Header.Set("Content-Type", "application/json")

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)

	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 for a body cut short: %s", w.Code, w.Body)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n >= declared/4 {
		t.Fatalf("answering a 1-byte body that claimed %d bytes allocated %d bytes", declared, n)
	}
}
