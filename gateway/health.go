package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/microhost/micro/sdk/metadata"
)

// handleBuiltins registers what the gateway serves itself: /health (liveness),
// /ready (readiness), /metrics, and unless disabled the API docs.
func (st *state) handleBuiltins() {
	st.handle("GET /health", "/health", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	}))
	st.handle("GET /ready", "/ready", nil, http.HandlerFunc(st.serveReady))
	st.handle("GET /metrics", "/metrics", nil, promhttp.HandlerFor(st.g.gatherer, promhttp.HandlerOpts{}))
	if !st.cfg.Docs.Disabled {
		st.handle("GET /api/docs", "/api/docs", nil, http.HandlerFunc(st.serveDocsPage))
		st.handle("GET /api/docs/{file}", "/api/docs/{file}", nil, http.HandlerFunc(st.serveDocsFile))
	}
}

// serveReady answers 200 when the gateway should get traffic, else 503 naming why.
func (st *state) serveReady(w http.ResponseWriter, r *http.Request) {
	switch {
	case st.g.draining.Load():
		writeProblem(w, r, http.StatusServiceUnavailable, "gateway", "draining: the gateway is shutting down")
	case !st.cache.Ready():
		writeProblem(w, r, http.StatusServiceUnavailable, "gateway", "not ready: the registry cache has not synced yet")
	default:
		writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set(metadata.ContentType, "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
